// Launch configuration of every CUDA kernel in csrc/, in one place: the .cu host files and the
// CPU-emulator harness (tests/cuda_emulator/) both launch with these shapes. Needs `dim3`
// (from the CUDA runtime, or the emulator's shim) when used for launches.
#pragma once

#include <algorithm>
#include <cstdint>

namespace cyclegan_tool {

// Reflection pad: 1-D grid-stride launch, kPadThreads threads per block, at most 2^20 blocks.
constexpr int kPadThreads = 256;
inline int64_t pad_blocks(int64_t total) {
  return std::min<int64_t>((total + kPadThreads - 1) / kPadThreads, int64_t{1} << 20);
}

// Instance norm NCHW: one block of kPlaneThreads per (n, c) plane (a multiple of 32, at most
// 32 warps: block_sum2 keeps one partial sum per warp in 32 shared slots).
constexpr int kPlaneThreads = 512;
inline int64_t norm_nchw_grid(int64_t n, int64_t c) { return n * c; }

// Instance norm channels-last: blocks of kTileC channels x kTileRows rows, grid (ceil(C / 32), N).
constexpr int kTileC = 32, kTileRows = 8;
static_assert(kPlaneThreads % 32 == 0 && kPlaneThreads <= 1024, "whole warps, at most 32 of them");

#if defined(__CUDACC__) || defined(CUDA_LAUNCH)  // nvcc, or the CPU emulator's shim: dim3 exists
inline dim3 norm_nhwc_grid(int64_t n, int64_t c) {
  return dim3(static_cast<unsigned>((c + kTileC - 1) / kTileC), static_cast<unsigned>(n));
}
inline dim3 norm_nhwc_block() { return dim3(kTileC, kTileRows); }
#endif

}  // namespace cyclegan_tool
