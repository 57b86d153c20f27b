// Reflection index maths, shared by the CPU kernels, the CUDA kernels and the emulator harness.
#pragma once

#include <cstdint>

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

}  // namespace cyclegan_tool
