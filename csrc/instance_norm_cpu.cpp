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
  const auto a = norm_forward_args(input, weight, bias, residual);
  const auto &x = a.x, &res = a.residual, &out = a.out, &mean = a.mean, &rstd = a.rstd, &w = a.weight, &bb = a.bias;
  const bool has_res = res.defined(), cl = a.fmt == at::MemoryFormat::ChannelsLast;
  const int64_t n = a.n, c = a.c, hw = a.hw;
  if (x.numel() == 0) return {out, mean, rstd};
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
  const auto a = norm_backward_args(grad_output, input, mean, rstd, weight, bias);
  const auto &x = a.x, &g = a.grad, &grad_input = a.out, &mean_c = a.mean, &rstd_c = a.rstd, &w = a.weight,
             &bb = a.bias, &gw_part = a.gw_part, &gb_part = a.gb_part;
  const bool cl = a.fmt == at::MemoryFormat::ChannelsLast;
  const int64_t n = a.n, c = a.c, hw = a.hw;
  if (x.numel() == 0) return {grad_input, gw_part.sum(0), gb_part.sum(0)};
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
