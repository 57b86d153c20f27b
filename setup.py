"""Builds the C++/CUDA extension `cyclegan_tool._C` from csrc/ (the rest is in pyproject.toml).

The CPU kernels are always built when torch is importable at build time; the CUDA kernels
too when torch is a CUDA build and nvcc is found (CUDA_HOME). Without the extension the
package still works: `cyclegan_tool.ops` falls back to plain PyTorch.

    pip install torch && pip install --no-build-isolation -e .
    CYCLEGAN_TOOL_NO_EXT=1 ...    skip the extension
"""

import glob
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def extensions():
    if os.environ.get("CYCLEGAN_TOOL_NO_EXT") == "1":
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        print("cyclegan-tool: torch is not importable at build time; building without csrc/ (pure PyTorch ops)")
        return [], {}
    sources = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "csrc", "*.cpp")))
    cuda = torch.version.cuda is not None and CUDA_HOME is not None
    args = {"cxx": ["-O3"]}
    if cuda:
        sources += sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "csrc", "*.cu")))
        args["nvcc"] = ["-O3", "--expt-relaxed-constexpr"]
        ext = CUDAExtension("cyclegan_tool._C", sources, extra_compile_args=args)
    else:
        ext = CppExtension("cyclegan_tool._C", sources, extra_compile_args=args)
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
