// Reflection pad 2d on the CPU, forward and backward, NCHW and channels-last.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "common.h"

namespace cyclegan_tool {
namespace {

at::Tensor reflection_pad2d_cpu(const at::Tensor& input, at::IntArrayRef pad) {
  const auto a = pad_forward_args(input, pad);
  const auto &x = a.src, &out = a.dst;
  const auto fmt = a.fmt;
  const int64_t n = a.n, c = a.c, h = a.h, w = a.w, ho = a.ho, wo = a.wo, left = pad[0], top = pad[2];
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "reflection_pad2d_cpu", [&] {
    const scalar_t* src = x.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    if (fmt == at::MemoryFormat::ChannelsLast) {
      at::parallel_for(0, n * ho, 1, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const int64_t b = row / ho, oy = row % ho, iy = reflect_index(oy, top, h);
          for (int64_t ox = 0; ox < wo; ++ox) {
            const scalar_t* s = src + ((b * h + iy) * w + reflect_index(ox, left, w)) * c;
            std::copy(s, s + c, dst + ((b * ho + oy) * wo + ox) * c);
          }
        }
      });
    } else {
      at::parallel_for(0, n * c * ho, 16, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const int64_t plane = row / ho, oy = row % ho;
          const scalar_t* s = src + (plane * h + reflect_index(oy, top, h)) * w;
          scalar_t* d = dst + row * wo;
          for (int64_t ox = 0; ox < wo; ++ox) d[ox] = s[reflect_index(ox, left, w)];
        }
      });
    }
  });
  return out;
}

at::Tensor reflection_pad2d_backward_cpu(const at::Tensor& grad_output, at::IntArrayRef pad, int64_t h, int64_t w) {
  const auto a = pad_backward_args(grad_output, pad, h, w);
  const auto &g = a.src, &grad_input = a.dst;
  const auto fmt = a.fmt;
  const int64_t n = a.n, c = a.c, ho = a.ho, wo = a.wo;
  if (grad_input.numel() == 0) return grad_input;
  const int64_t left = pad[0], right = pad[1], top = pad[2], bottom = pad[3];
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "reflection_pad2d_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* src = g.const_data_ptr<scalar_t>();
    scalar_t* dst = grad_input.mutable_data_ptr<scalar_t>();
    const bool cl = fmt == at::MemoryFormat::ChannelsLast;
    // Gather: every input position sums the (at most 3 x 3) output positions that read it.
    at::parallel_for(0, n * h, 1, [&](int64_t begin, int64_t end) {
      int64_t ys[3], xs[3];
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / h, iy = row % h;
        const int ny = reflect_sources(iy, top, bottom, h, ys);
        for (int64_t ix = 0; ix < w; ++ix) {
          const int nx = reflect_sources(ix, left, right, w, xs);
          for (int64_t ch = 0; ch < c; ++ch) {
            acc_t sum = 0;
            for (int a = 0; a < ny; ++a) {
              for (int k = 0; k < nx; ++k) {
                const int64_t o = cl ? ((b * ho + ys[a]) * wo + xs[k]) * c + ch : ((b * c + ch) * ho + ys[a]) * wo + xs[k];
                sum += static_cast<acc_t>(src[o]);
              }
            }
            const int64_t i = cl ? ((b * h + iy) * w + ix) * c + ch : ((b * c + ch) * h + iy) * w + ix;
            dst[i] = static_cast<scalar_t>(sum);
          }
        }
      }
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(cyclegan_tool, CPU, m) {
  m.impl("reflection_pad2d", &reflection_pad2d_cpu);
  m.impl("reflection_pad2d_backward", &reflection_pad2d_backward_cpu);
}

}  // namespace cyclegan_tool
