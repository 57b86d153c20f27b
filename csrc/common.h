// Shared helpers for the cyclegan_tool ops: argument checks and reflection index maths.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/macros/Macros.h>

namespace cyclegan_tool {

// The input index that output index `o` reads when a side of length `size` is reflect-padded
// by `before` elements in front (the edge itself is not repeated: ...2 1 [0 1 2 ...]).
inline C10_HOST_DEVICE int64_t reflect_index(int64_t o, int64_t before, int64_t size) {
  int64_t i = o - before;
  if (i < 0) i = -i;
  if (i >= size) i = 2 * (size - 1) - i;
  return i;
}

// The output indices that read input index `i` (at most 3): the copy itself and up to one
// reflection from each padded side. Writes them to `out`, returns how many.
inline C10_HOST_DEVICE int reflect_sources(int64_t i, int64_t before, int64_t after, int64_t size, int64_t out[3]) {
  int n = 0;
  out[n++] = i + before;
  if (i >= 1 && i <= before) out[n++] = before - i;
  if (i <= size - 2 && i >= size - 1 - after) out[n++] = before + 2 * (size - 1) - i;
  return n;
}

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
