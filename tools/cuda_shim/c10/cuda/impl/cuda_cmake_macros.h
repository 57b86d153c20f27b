#pragma once
// Stand-in for the header that CUDA builds of PyTorch generate at build time and CPU wheels
// do not ship. Used only by tools/compile_cuda.py to compile-check csrc/*.cu against a CPU
// torch; real builds (setup.py on a CUDA torch) use the wheel's own header.
#define C10_CUDA_BUILD_SHARED_LIBS
