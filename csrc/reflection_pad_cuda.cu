// Reflection pad 2d on CUDA, forward and backward, NCHW and channels-last.
// One thread per output element (forward) or input element (backward, a gather: no atomics).
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common.h"

namespace cyclegan_tool {
namespace {

constexpr int kThreads = 256;

inline int64_t blocks_for(int64_t n) {
  return std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t{1} << 20);
}

template <typename scalar_t, bool kChannelsLast>
__global__ void pad_forward_kernel(const scalar_t* __restrict__ src, scalar_t* __restrict__ dst, int64_t total,
                                   int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t left, int64_t top) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(blockDim.x) * gridDim.x) {
    int64_t ch, ox, oy, b;
    if (kChannelsLast) {
      ch = k % c; ox = (k / c) % wo; oy = (k / (c * wo)) % ho; b = k / (c * wo * ho);
      dst[k] = src[((b * h + reflect_index(oy, top, h)) * w + reflect_index(ox, left, w)) * c + ch];
    } else {
      ox = k % wo; oy = (k / wo) % ho; const int64_t plane = k / (wo * ho);
      dst[k] = src[(plane * h + reflect_index(oy, top, h)) * w + reflect_index(ox, left, w)];
      (void)ch; (void)b;
    }
  }
}

template <typename scalar_t, bool kChannelsLast>
__global__ void pad_backward_kernel(const scalar_t* __restrict__ src, scalar_t* __restrict__ dst, int64_t total,
                                    int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t left,
                                    int64_t right, int64_t top, int64_t bottom) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(blockDim.x) * gridDim.x) {
    int64_t ch, ix, iy, b;
    if (kChannelsLast) {
      ch = k % c; ix = (k / c) % w; iy = (k / (c * w)) % h; b = k / (c * w * h);
    } else {
      ix = k % w; iy = (k / w) % h; const int64_t plane = k / (w * h);
      b = plane / c; ch = plane % c;
    }
    int64_t ys[3], xs[3];
    const int ny = reflect_sources(iy, top, bottom, h, ys);
    const int nx = reflect_sources(ix, left, right, w, xs);
    acc_t sum = 0;
    for (int a = 0; a < ny; ++a) {
      for (int q = 0; q < nx; ++q) {
        const int64_t o = kChannelsLast ? ((b * ho + ys[a]) * wo + xs[q]) * c + ch
                                        : ((b * c + ch) * ho + ys[a]) * wo + xs[q];
        sum += static_cast<acc_t>(src[o]);
      }
    }
    dst[k] = static_cast<scalar_t>(sum);
  }
}

at::Tensor reflection_pad2d_cuda(const at::Tensor& input, at::IntArrayRef pad) {
  const c10::cuda::CUDAGuard guard(input.device());
  const auto a = pad_forward_args(input, pad);
  const auto &x = a.src, &out = a.dst;
  const auto fmt = a.fmt;
  const int64_t c = a.c, h = a.h, w = a.w, ho = a.ho, wo = a.wo;
  if (out.numel() == 0) return out;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "reflection_pad2d_cuda", [&] {
    const auto total = out.numel();
    if (fmt == at::MemoryFormat::ChannelsLast) {
      pad_forward_kernel<scalar_t, true><<<blocks_for(total), kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), total, c, h, w, ho, wo, pad[0], pad[2]);
    } else {
      pad_forward_kernel<scalar_t, false><<<blocks_for(total), kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), total, c, h, w, ho, wo, pad[0], pad[2]);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor reflection_pad2d_backward_cuda(const at::Tensor& grad_output, at::IntArrayRef pad, int64_t h, int64_t w) {
  const c10::cuda::CUDAGuard guard(grad_output.device());
  const auto a = pad_backward_args(grad_output, pad, h, w);
  const auto &g = a.src, &grad_input = a.dst;
  const auto fmt = a.fmt;
  const int64_t c = a.c, ho = a.ho, wo = a.wo;
  if (grad_input.numel() == 0) return grad_input;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "reflection_pad2d_backward_cuda", [&] {
    const auto total = grad_input.numel();
    if (fmt == at::MemoryFormat::ChannelsLast) {
      pad_backward_kernel<scalar_t, true><<<blocks_for(total), kThreads, 0, stream>>>(
          g.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(), total, c, h, w, ho, wo,
          pad[0], pad[1], pad[2], pad[3]);
    } else {
      pad_backward_kernel<scalar_t, false><<<blocks_for(total), kThreads, 0, stream>>>(
          g.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(), total, c, h, w, ho, wo,
          pad[0], pad[1], pad[2], pad[3]);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(cyclegan_tool, CUDA, m) {
  m.impl("reflection_pad2d", &reflection_pad2d_cuda);
  m.impl("reflection_pad2d_backward", &reflection_pad2d_backward_cuda);
}

}  // namespace cyclegan_tool
