// Instance norm CUDA kernels with optional fused ReLU and residual add, forward and backward.
// NCHW: one block per (n, c) plane. Channels-last: one block per (n, 32 channels), threads
// along channels for coalesced loads. Statistics accumulate in float32 (float64 for double),
// shifted by the plane's first value so that E[x^2] - E[x]^2 does not cancel.
// Kernels only: no launches and no torch host code, so the same source compiles with nvcc
// (instance_norm_cuda.cu) and for the CPU emulator (tests/cuda_emulator/). Launch shapes and
// the block sizes the kernels assume: launch_config.h.
#pragma once

#include <ATen/OpMathType.h>

#include "launch_config.h"

namespace cyclegan_tool {

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sums a and b over the block; every thread gets the totals. `shared` holds 64 values.
template <typename T>
__device__ void block_sum2(T& a, T& b, T* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  a = warp_sum(a);
  b = warp_sum(b);
  __syncthreads();
  if (lane == 0) { shared[warp] = a; shared[32 + warp] = b; }
  __syncthreads();
  if (warp == 0) {
    a = lane < warps ? shared[lane] : T(0);
    b = lane < warps ? shared[32 + lane] : T(0);
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) { shared[0] = a; shared[32] = b; }
  }
  __syncthreads();
  a = shared[0];
  b = shared[32];
}

// Sums a and b over threadIdx.y of a (kTileC x kTileRows) block, per threadIdx.x.
template <typename T>
__device__ void column_sum2(T& a, T& b, T (*sa)[kTileC], T (*sb)[kTileC]) {
  __syncthreads();
  sa[threadIdx.y][threadIdx.x] = a;
  sb[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  a = 0;
  b = 0;
  for (int r = 0; r < kTileRows; ++r) { a += sa[r][threadIdx.x]; b += sb[r][threadIdx.x]; }
}

// (x - mean) * scale + bias: no cancellation when 1 / sqrt(var + eps) is large.
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ acc_t norm_out(acc_t v, acc_t mean, acc_t scale, acc_t bias, bool relu) {
  acc_t y = (v - mean) * scale + bias;
  return (relu && y < acc_t(0)) ? acc_t(0) : y;
}

// ---- forward -------------------------------------------------------------------------------

template <typename scalar_t>
__global__ void norm_forward_nchw(const scalar_t* __restrict__ x, const scalar_t* __restrict__ res,
                                  scalar_t* __restrict__ out, at::opmath_type<scalar_t>* __restrict__ mean,
                                  at::opmath_type<scalar_t>* __restrict__ rstd,
                                  const at::opmath_type<scalar_t>* __restrict__ w,
                                  const at::opmath_type<scalar_t>* __restrict__ b, int64_t c, int64_t hw,
                                  double eps, bool relu) {
  using acc_t = at::opmath_type<scalar_t>;
  __shared__ acc_t shared[64];
  const int64_t plane = blockIdx.x, base = plane * hw;
  const acc_t shift0 = static_cast<acc_t>(x[base]);
  acc_t s1 = 0, s2 = 0;
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
    const acc_t d = static_cast<acc_t>(x[base + i]) - shift0;
    s1 += d;
    s2 += d * d;
  }
  block_sum2(s1, s2, shared);
  const acc_t m1 = s1 / hw, var = s2 / hw - m1 * m1;
  const acc_t mu = shift0 + m1, rs = acc_t(1) / sqrt((var > acc_t(0) ? var : acc_t(0)) + static_cast<acc_t>(eps));
  if (threadIdx.x == 0) { mean[plane] = mu; rstd[plane] = rs; }
  const int64_t ch = plane % c;
  const acc_t scale = rs * w[ch], bias = b[ch];
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
    acc_t y = norm_out<scalar_t>(static_cast<acc_t>(x[base + i]), mu, scale, bias, relu);
    if (res) y += static_cast<acc_t>(res[base + i]);
    out[base + i] = static_cast<scalar_t>(y);
  }
}

template <typename scalar_t>
__global__ void norm_forward_nhwc(const scalar_t* __restrict__ x, const scalar_t* __restrict__ res,
                                  scalar_t* __restrict__ out, at::opmath_type<scalar_t>* __restrict__ mean,
                                  at::opmath_type<scalar_t>* __restrict__ rstd,
                                  const at::opmath_type<scalar_t>* __restrict__ w,
                                  const at::opmath_type<scalar_t>* __restrict__ b, int64_t c, int64_t hw,
                                  double eps, bool relu) {
  using acc_t = at::opmath_type<scalar_t>;
  __shared__ acc_t sa[kTileRows][kTileC], sb[kTileRows][kTileC];
  const int64_t n = blockIdx.y, ch = int64_t(blockIdx.x) * kTileC + threadIdx.x;
  const bool active = ch < c;
  const int64_t base = n * hw * c + ch;
  const acc_t shift0 = active ? static_cast<acc_t>(x[base]) : acc_t(0);
  acc_t s1 = 0, s2 = 0;
  if (active) {
    for (int64_t i = threadIdx.y; i < hw; i += kTileRows) {
      const acc_t d = static_cast<acc_t>(x[base + i * c]) - shift0;
      s1 += d;
      s2 += d * d;
    }
  }
  column_sum2(s1, s2, sa, sb);
  if (!active) return;
  const acc_t m1 = s1 / hw, var = s2 / hw - m1 * m1;
  const acc_t mu = shift0 + m1, rs = acc_t(1) / sqrt((var > acc_t(0) ? var : acc_t(0)) + static_cast<acc_t>(eps));
  if (threadIdx.y == 0) { mean[n * c + ch] = mu; rstd[n * c + ch] = rs; }
  const acc_t scale = rs * w[ch], bias = b[ch];
  for (int64_t i = threadIdx.y; i < hw; i += kTileRows) {
    const int64_t k = base + i * c;
    acc_t y = norm_out<scalar_t>(static_cast<acc_t>(x[k]), mu, scale, bias, relu);
    if (res) y += static_cast<acc_t>(res[k]);
    out[k] = static_cast<scalar_t>(y);
  }
}

// ---- backward ------------------------------------------------------------------------------

template <typename acc_t>
__device__ __forceinline__ acc_t relu_grad(acc_t go, acc_t xhat, acc_t wc, acc_t bc, bool relu) {
  return (relu && xhat * wc + bc <= acc_t(0)) ? acc_t(0) : go;
}

// The two passes over one plane's elements, shared by the NCHW and channels-last kernels:
// element i of the plane is at base + i * stride; this thread takes i = first, first + step, ...
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ void plane_grad_sums(const scalar_t* g, const scalar_t* x, int64_t base, int64_t stride,
                                                int64_t first, int64_t step, int64_t hw, acc_t mu, acc_t rs,
                                                acc_t wc, acc_t bc, bool relu, acc_t& sg, acc_t& sgx) {
  for (int64_t i = first; i < hw; i += step) {
    const int64_t k = base + i * stride;
    const acc_t xhat = (static_cast<acc_t>(x[k]) - mu) * rs;
    const acc_t gv = relu_grad(static_cast<acc_t>(g[k]), xhat, wc, bc, relu);
    sg += gv;
    sgx += gv * xhat;
  }
}

// dx = rstd * w * (g' - mean(g') - xhat * mean(g' * xhat)), g' the gradient after the ReLU.
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ void plane_grad_input(const scalar_t* g, const scalar_t* x, scalar_t* dx, int64_t base,
                                                 int64_t stride, int64_t first, int64_t step, int64_t hw, acc_t mu,
                                                 acc_t rs, acc_t wc, acc_t bc, bool relu, acc_t sg, acc_t sgx) {
  const acc_t mg = sg / hw, mgx = sgx / hw;
  for (int64_t i = first; i < hw; i += step) {
    const int64_t k = base + i * stride;
    const acc_t xhat = (static_cast<acc_t>(x[k]) - mu) * rs;
    const acc_t gv = relu_grad(static_cast<acc_t>(g[k]), xhat, wc, bc, relu);
    dx[k] = static_cast<scalar_t>(rs * wc * (gv - mg - xhat * mgx));
  }
}

// One block per (sample, channel) plane.
template <typename scalar_t>
__global__ void norm_backward_nchw(const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
                                   scalar_t* __restrict__ dx, const at::opmath_type<scalar_t>* __restrict__ mean,
                                   const at::opmath_type<scalar_t>* __restrict__ rstd,
                                   const at::opmath_type<scalar_t>* __restrict__ w,
                                   const at::opmath_type<scalar_t>* __restrict__ b,
                                   at::opmath_type<scalar_t>* __restrict__ gw, at::opmath_type<scalar_t>* __restrict__ gb,
                                   int64_t c, int64_t hw, bool relu) {
  using acc_t = at::opmath_type<scalar_t>;
  __shared__ acc_t shared[64];
  const int64_t plane = blockIdx.x, base = plane * hw, ch = plane % c;
  const acc_t mu = mean[plane], rs = rstd[plane], wc = w[ch], bc = b[ch];
  acc_t sg = 0, sgx = 0;
  plane_grad_sums(g, x, base, int64_t(1), int64_t(threadIdx.x), int64_t(blockDim.x), hw, mu, rs, wc, bc, relu, sg, sgx);
  block_sum2(sg, sgx, shared);
  if (threadIdx.x == 0) { gw[plane] = sgx; gb[plane] = sg; }
  plane_grad_input(g, x, dx, base, int64_t(1), int64_t(threadIdx.x), int64_t(blockDim.x), hw, mu, rs, wc, bc, relu,
                   sg, sgx);
}

// Channels-last: a block takes kTileC neighbouring channels of one sample, kTileRows threads each.
template <typename scalar_t>
__global__ void norm_backward_nhwc(const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
                                   scalar_t* __restrict__ dx, const at::opmath_type<scalar_t>* __restrict__ mean,
                                   const at::opmath_type<scalar_t>* __restrict__ rstd,
                                   const at::opmath_type<scalar_t>* __restrict__ w,
                                   const at::opmath_type<scalar_t>* __restrict__ b,
                                   at::opmath_type<scalar_t>* __restrict__ gw, at::opmath_type<scalar_t>* __restrict__ gb,
                                   int64_t c, int64_t hw, bool relu) {
  using acc_t = at::opmath_type<scalar_t>;
  __shared__ acc_t sa[kTileRows][kTileC], sb[kTileRows][kTileC];
  const int64_t n = blockIdx.y, ch = int64_t(blockIdx.x) * kTileC + threadIdx.x;
  const bool active = ch < c;
  const int64_t base = n * hw * c + ch;
  acc_t mu = 0, rs = 0, wc = 0, bc = 0, sg = 0, sgx = 0;
  if (active) {
    mu = mean[n * c + ch]; rs = rstd[n * c + ch]; wc = w[ch]; bc = b[ch];
    plane_grad_sums(g, x, base, c, int64_t(threadIdx.y), int64_t(kTileRows), hw, mu, rs, wc, bc, relu, sg, sgx);
  }
  column_sum2(sg, sgx, sa, sb);
  if (!active) return;
  if (threadIdx.y == 0) { gw[n * c + ch] = sgx; gb[n * c + ch] = sg; }
  plane_grad_input(g, x, dx, base, c, int64_t(threadIdx.y), int64_t(kTileRows), hw, mu, rs, wc, bc, relu, sg, sgx);
}

}  // namespace cyclegan_tool
