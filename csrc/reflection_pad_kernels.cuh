// Reflection pad 2d CUDA kernels, forward and backward, NCHW and channels-last.
// One thread per output element (forward) or input element (backward: a gather, no atomics),
// grid-stride loops. Kernels only: no launches and no torch host code, so the same source
// compiles with nvcc (reflection_pad_cuda.cu) and for the CPU emulator (tests/cuda_emulator/).
// Launch shapes: launch_config.h.
#pragma once

#include <ATen/OpMathType.h>

#include "reflect.h"

namespace cyclegan_tool {

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

}  // namespace cyclegan_tool
