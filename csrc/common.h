// Shared helpers for the cyclegan_tool ops: argument checks and reflection index maths.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/macros/Macros.h>

#include "reflect.h"

namespace cyclegan_tool {

inline void check_pad(const at::Tensor& x, at::IntArrayRef pad, const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": expected a 4-D tensor [N, C, H, W], got ", x.dim(), "-D");
  TORCH_CHECK(pad.size() == 4, op, ": pad must be (left, right, top, bottom), got ", pad.size(), " values");
  for (auto p : pad) {
    TORCH_CHECK(p >= 0, op, ": pads must be non-negative, got ", pad);
  }
}

inline void check_pad_fits(int64_t h, int64_t w, at::IntArrayRef pad, const char* op) {
  TORCH_CHECK(pad[0] < w && pad[1] < w, op, ": width pads ", pad[0], ", ", pad[1],
              " must be smaller than the input width ", w);
  TORCH_CHECK(pad[2] < h && pad[3] < h, op, ": height pads ", pad[2], ", ", pad[3],
              " must be smaller than the input height ", h);
}

// The layout outputs take: channels-last only when the input is laid out that way and not also
// plainly contiguous (size-1 dimensions make both true). cyclegan_tool/ops/functional.py mirrors it.
inline at::MemoryFormat layout_of(const at::Tensor& x) {
  if (x.is_contiguous()) return at::MemoryFormat::Contiguous;
  if (x.dim() == 4 && (x.is_contiguous(at::MemoryFormat::ChannelsLast) || x.stride(1) == 1)) {
    return at::MemoryFormat::ChannelsLast;
  }
  return at::MemoryFormat::Contiguous;
}

inline at::ScalarType stat_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

inline void check_norm_args(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                            const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                            const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": expected a 4-D tensor [N, C, H, W], got ", x.dim(), "-D");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": expected a floating-point tensor, got ", x.scalar_type());
  const auto c = x.size(1);
  for (const auto* p : {&weight, &bias}) {
    if (p->has_value() && (*p)->defined()) {
      TORCH_CHECK((*p)->dim() == 1 && (*p)->size(0) == c, op, ": weight and bias must have shape [", c,
                  "], got ", (*p)->sizes());
      TORCH_CHECK((*p)->device() == x.device(), op, ": weight and bias must be on ", x.device());
    }
  }
  if (residual.has_value() && residual->defined()) {
    TORCH_CHECK(residual->sizes() == x.sizes(), op, ": residual must have the input's shape ", x.sizes(),
                ", got ", residual->sizes());
    TORCH_CHECK(residual->device() == x.device(), op, ": residual must be on ", x.device());
    TORCH_CHECK(residual->scalar_type() == x.scalar_type(), op, ": residual must have the input's dtype ",
                x.scalar_type(), ", got ", residual->scalar_type());
  }
}

// Affine parameters as a contiguous [C] tensor in the statistics dtype (1 / 0 when absent).
inline at::Tensor affine_or(const std::optional<at::Tensor>& t, const at::Tensor& x, double fill) {
  if (t.has_value() && t->defined()) return t->to(stat_type(x)).contiguous();
  return at::full({x.size(1)}, fill, x.options().dtype(stat_type(x)));
}

}  // namespace cyclegan_tool

namespace cyclegan_tool {

// Host-side preparation shared by the CPU and CUDA kernels of each op: checked inputs in one
// layout, outputs allocated in that layout, sizes unpacked.

struct PadArgs {
  at::Tensor src, dst;  // src in `fmt`, dst allocated in `fmt`
  at::MemoryFormat fmt;
  int64_t n, c, h, w, ho, wo;  // h, w: unpadded; ho, wo: padded
};

// Forward: src = the input, dst = the padded output.
inline PadArgs pad_forward_args(const at::Tensor& input, at::IntArrayRef pad) {
  check_pad(input, pad, "reflection_pad2d");
  const auto fmt = layout_of(input);
  auto x = input.contiguous(fmt);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = h + pad[2] + pad[3], wo = w + pad[0] + pad[1];
  auto out = at::empty({n, c, ho, wo}, x.options().memory_format(fmt));
  if (out.numel() > 0) check_pad_fits(h, w, pad, "reflection_pad2d");
  return {x, out, fmt, n, c, h, w, ho, wo};
}

// Backward: src = the padded gradient, dst = the input gradient.
inline PadArgs pad_backward_args(const at::Tensor& grad_output, at::IntArrayRef pad, int64_t h, int64_t w) {
  check_pad(grad_output, pad, "reflection_pad2d_backward");
  const auto fmt = layout_of(grad_output);
  auto g = grad_output.contiguous(fmt);
  const int64_t n = g.size(0), c = g.size(1), ho = g.size(2), wo = g.size(3);
  TORCH_CHECK(ho == h + pad[2] + pad[3] && wo == w + pad[0] + pad[1], "reflection_pad2d_backward: grad_out ",
              g.sizes(), " does not match input ", h, "x", w, " and pad ", pad);
  auto grad_input = at::empty({n, c, h, w}, g.options().memory_format(fmt));
  if (grad_input.numel() > 0) check_pad_fits(h, w, pad, "reflection_pad2d_backward");
  return {g, grad_input, fmt, n, c, h, w, ho, wo};
}

struct NormArgs {
  at::Tensor x, grad, residual;  // in `fmt`; grad (backward) and residual may be undefined
  at::Tensor out;                // forward: the output; backward: grad_input
  at::Tensor mean, rstd;         // [N, C], statistics dtype
  at::Tensor weight, bias;       // [C], statistics dtype (1 and 0 when absent)
  at::Tensor gw_part, gb_part;   // backward: per-(n, c) partial sums of the weight and bias gradients
  at::MemoryFormat fmt;
  int64_t n, c, hw;
};

inline NormArgs norm_forward_args(const at::Tensor& input, const std::optional<at::Tensor>& weight,
                                  const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual) {
  check_norm_args(input, weight, bias, residual, "instance_norm");
  NormArgs a;
  a.fmt = layout_of(input);
  a.x = input.contiguous(a.fmt);
  if (residual.has_value() && residual->defined()) a.residual = residual->contiguous(a.fmt);
  a.n = a.x.size(0), a.c = a.x.size(1), a.hw = a.x.size(2) * a.x.size(3);
  a.out = at::empty_like(a.x, a.x.options().memory_format(a.fmt));
  a.mean = at::empty({a.n, a.c}, a.x.options().dtype(stat_type(a.x)));
  a.rstd = at::empty({a.n, a.c}, a.x.options().dtype(stat_type(a.x)));
  a.weight = affine_or(weight, a.x, 1.0);
  a.bias = affine_or(bias, a.x, 0.0);
  return a;
}

inline NormArgs norm_backward_args(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& mean,
                                   const at::Tensor& rstd, const std::optional<at::Tensor>& weight,
                                   const std::optional<at::Tensor>& bias) {
  check_norm_args(input, weight, bias, std::nullopt, "instance_norm_backward");
  TORCH_CHECK(grad_output.sizes() == input.sizes(), "instance_norm_backward: grad_out ", grad_output.sizes(),
              " does not match the input ", input.sizes());
  NormArgs a;
  a.fmt = layout_of(input);
  a.x = input.contiguous(a.fmt);
  a.grad = grad_output.contiguous(a.fmt);
  a.n = a.x.size(0), a.c = a.x.size(1), a.hw = a.x.size(2) * a.x.size(3);
  a.out = at::empty_like(a.x, a.x.options().memory_format(a.fmt));
  a.mean = mean.to(stat_type(a.x)).contiguous();
  a.rstd = rstd.to(stat_type(a.x)).contiguous();
  a.weight = affine_or(weight, a.x, 1.0);
  a.bias = affine_or(bias, a.x, 0.0);
  a.gw_part = at::zeros({a.n, a.c}, a.x.options().dtype(stat_type(a.x)));
  a.gb_part = at::zeros({a.n, a.c}, a.x.options().dtype(stat_type(a.x)));
  return a;
}

}  // namespace cyclegan_tool
