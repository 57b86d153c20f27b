// Instance norm on the CPU with optional fused ReLU and residual add, forward and backward,
// NCHW and channels-last, float32 accumulation for half types (float64 for float64).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "common.h"

namespace cyclegan_tool {
namespace {

constexpr int64_t kChunk = 1024;  // partial sums per chunk keep long float32 sums accurate

// Per-(n, c) mean and rstd; `at(b, ch, i)` reads element i of plane (b, ch) as acc_t.
template <typename acc_t, typename Reader>
void plane_stats(int64_t hw, double eps, Reader at_, acc_t& mean, acc_t& rstd) {
  acc_t total = 0;
  for (int64_t s = 0; s < hw; s += kChunk) {
    acc_t part = 0;
    for (int64_t i = s, e = std::min(hw, s + kChunk); i < e; ++i) part += at_(i);
    total += part;
  }
  mean = total / static_cast<acc_t>(hw);
  acc_t sq = 0;
  for (int64_t s = 0; s < hw; s += kChunk) {
    acc_t part = 0;
    for (int64_t i = s, e = std::min(hw, s + kChunk); i < e; ++i) {
      const acc_t d = at_(i) - mean;
      part += d * d;
    }
    sq += part;
  }
  rstd = acc_t(1) / std::sqrt(sq / static_cast<acc_t>(hw) + static_cast<acc_t>(eps));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_cpu(
    const at::Tensor& input, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& residual, double eps, bool relu) {
  check_norm_args(input, weight, bias, residual, "instance_norm");
  const auto fmt = layout_of(input);
  const auto x = input.contiguous(fmt);
  const bool has_res = residual.has_value() && residual->defined();
  const auto res = has_res ? residual->contiguous(fmt) : at::Tensor();
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  auto out = at::empty_like(x, x.options().memory_format(fmt));
  auto mean = at::empty({n, c}, x.options().dtype(stat_type(x)));
  auto rstd = at::empty({n, c}, x.options().dtype(stat_type(x)));
  if (x.numel() == 0) return {out, mean, rstd};
  const auto w = affine_or(weight, x, 1.0), bb = affine_or(bias, x, 0.0);
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "instance_norm_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* src = x.const_data_ptr<scalar_t>();
    const scalar_t* rsrc = has_res ? res.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    acc_t* m = mean.mutable_data_ptr<acc_t>();
    acc_t* r = rstd.mutable_data_ptr<acc_t>();
    const acc_t* wp = w.const_data_ptr<acc_t>();
    const acc_t* bp = bb.const_data_ptr<acc_t>();
    at::parallel_for(0, n * c, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / c, ch = p % c;
        // element i of plane (b, ch): contiguous in NCHW, stride c in channels-last
        const int64_t base = cl ? b * hw * c + ch : p * hw, stride = cl ? c : 1;
        plane_stats<acc_t>(hw, eps, [&](int64_t i) { return static_cast<acc_t>(src[base + i * stride]); }, m[p], r[p]);
        // (x - mean) * scale + bias, not x * scale + shift: the latter cancels badly when the
        // variance is tiny and 1 / sqrt(var + eps) is large.
        const acc_t mu = m[p], scale = r[p] * wp[ch], shift = bp[ch];
        for (int64_t i = 0; i < hw; ++i) {
          const int64_t k = base + i * stride;
          acc_t y = (static_cast<acc_t>(src[k]) - mu) * scale + shift;
          if (relu && y < 0) y = 0;
          if (rsrc) y += static_cast<acc_t>(rsrc[k]);
          dst[k] = static_cast<scalar_t>(y);
        }
      }
    });
  });
  return {out, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& mean, const at::Tensor& rstd,
    const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias, bool relu) {
  check_norm_args(input, weight, bias, std::nullopt, "instance_norm_backward");
  TORCH_CHECK(grad_output.sizes() == input.sizes(), "instance_norm_backward: grad_out ", grad_output.sizes(),
              " does not match the input ", input.sizes());
  const auto fmt = layout_of(input);
  const auto x = input.contiguous(fmt);
  const auto g = grad_output.contiguous(fmt);
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  auto grad_input = at::empty_like(x, x.options().memory_format(fmt));
  auto gw_part = at::zeros({n, c}, x.options().dtype(stat_type(x)));
  auto gb_part = at::zeros({n, c}, x.options().dtype(stat_type(x)));
  if (x.numel() == 0) return {grad_input, gw_part.sum(0), gb_part.sum(0)};
  const auto w = affine_or(weight, x, 1.0), bb = affine_or(bias, x, 0.0);
  const auto mean_c = mean.to(stat_type(x)).contiguous(), rstd_c = rstd.to(stat_type(x)).contiguous();
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "instance_norm_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xs = x.const_data_ptr<scalar_t>();
    const scalar_t* gs = g.const_data_ptr<scalar_t>();
    scalar_t* dx = grad_input.mutable_data_ptr<scalar_t>();
    const acc_t* m = mean_c.const_data_ptr<acc_t>();
    const acc_t* r = rstd_c.const_data_ptr<acc_t>();
    const acc_t* wp = w.const_data_ptr<acc_t>();
    const acc_t* bp = bb.const_data_ptr<acc_t>();
    acc_t* gwp = gw_part.mutable_data_ptr<acc_t>();
    acc_t* gbp = gb_part.mutable_data_ptr<acc_t>();
    at::parallel_for(0, n * c, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / c, ch = p % c;
        const int64_t base = cl ? b * hw * c + ch : p * hw, stride = cl ? c : 1;
        const acc_t mu = m[p], rs = r[p], wc = wp[ch], bc = bp[ch];
        auto grad_at = [&](int64_t k, acc_t xhat) {
          const acc_t go = static_cast<acc_t>(gs[k]);
          return (relu && xhat * wc + bc <= 0) ? acc_t(0) : go;  // ReLU passes where its input > 0
        };
        acc_t sum_g = 0, sum_gx = 0;
        for (int64_t s = 0; s < hw; s += kChunk) {
          acc_t pg = 0, pgx = 0;
          for (int64_t i = s, e = std::min(hw, s + kChunk); i < e; ++i) {
            const int64_t k = base + i * stride;
            const acc_t xhat = (static_cast<acc_t>(xs[k]) - mu) * rs;
            const acc_t gv = grad_at(k, xhat);
            pg += gv;
            pgx += gv * xhat;
          }
          sum_g += pg;
          sum_gx += pgx;
        }
        gwp[p] = sum_gx;
        gbp[p] = sum_g;
        const acc_t inv = acc_t(1) / static_cast<acc_t>(hw);
        const acc_t mg = sum_g * inv, mgx = sum_gx * inv;
        for (int64_t i = 0; i < hw; ++i) {
          const int64_t k = base + i * stride;
          const acc_t xhat = (static_cast<acc_t>(xs[k]) - mu) * rs;
          dx[k] = static_cast<scalar_t>(rs * wc * (grad_at(k, xhat) - mg - xhat * mgx));
        }
      }
    });
  });
  return {grad_input, gw_part.sum(0), gb_part.sum(0)};
}

}  // namespace

TORCH_LIBRARY_IMPL(cyclegan_tool, CPU, m) {
  m.impl("instance_norm", &instance_norm_cpu);
  m.impl("instance_norm_backward", &instance_norm_backward_cpu);
}

}  // namespace cyclegan_tool
