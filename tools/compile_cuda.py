"""Compile every csrc/*.cu with nvcc (compile only, no GPU needed), so a broken CUDA kernel
cannot land unseen on a machine whose torch is a CPU build.

    python tools/compile_cuda.py [--arch sm_90]      exit status 1 if any file fails
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="sm_90", help="GPU architecture to compile for (H100: sm_90)")
    args = ap.parse_args()
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        print("nvcc not found: cannot compile the CUDA sources", file=sys.stderr)
        return 1
    includes = [f"-I{p}" for p in cpp_extension.include_paths()] + [f"-I{sysconfig.get_paths()['include']}",
                                                                      f"-I{ROOT / 'csrc'}"]
    if not (Path(cpp_extension.include_paths()[0]) / "c10/cuda/impl/cuda_cmake_macros.h").exists():
        includes.append(f"-I{ROOT / 'tools' / 'cuda_shim'}")  # a CPU wheel lacks this generated header
    abi = int(getattr(__import__("torch")._C, "_GLIBCXX_USE_CXX11_ABI", True))
    flags = [*cpp_extension.COMMON_NVCC_FLAGS, "-std=c++17", f"-arch={args.arch}", "-O3", "--expt-relaxed-constexpr",
             "-Xcompiler", "-fPIC", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", "-DTORCH_EXTENSION_NAME=_C"]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted((ROOT / "csrc").glob("*.cu")):
            cmd = [nvcc, "-c", str(src), "-o", str(Path(tmp) / (src.stem + ".o")), *flags, *includes]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            status = "ok" if proc.returncode == 0 else "FAILED"
            print(f"nvcc {args.arch} {src.relative_to(ROOT)}: {status}", flush=True)
            if proc.returncode:
                failed += 1
                print(proc.stderr[-4000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
