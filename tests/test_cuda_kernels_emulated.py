"""The CUDA kernels of csrc/ executed on the CPU: tests/cuda_emulator/kernel_harness.cpp is
built against the kernel headers (`csrc/*_kernels.cuh`, `csrc/launch_config.h`) with the
cuda-on-cpu emulator (HIP-CPU + a CUDA shim, in ../shared/tools/cuda-on-cpu), once normally
and once under AddressSanitizer, and run: every kernel over float32/float64/float16/bfloat16,
NCHW and channels-last, odd shapes, against double-precision loops.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "cuda_emulator" / "kernel_harness.cpp"
KERNELS = 8  # 2 pad kernels x 2 layouts, 2 norm kernels x 2 layouts
EMULATOR = Path(os.environ.get("CUDA_ON_CPU", SHARED.parent / "tools" / "cuda-on-cpu"))


def _why_not() -> str | None:
    if not (EMULATOR / "shim" / "cuda_hipcpu_shim.h").is_file():
        return f"the cuda-on-cpu emulator is not at {EMULATOR} (../shared/tools, or set CUDA_ON_CPU)"
    if shutil.which("g++") is None:
        return "g++ is not installed"
    if not any(Path(p, "tbb", "tbb.h").is_file() or Path(p, "oneapi", "tbb.h").is_file()
               for p in ("/usr/include", "/usr/local/include")):
        return "TBB headers are missing (apt-get install libtbb-dev; .ci/run installs it)"
    return None


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory) -> dict[str, Path]:
    """Build the plain and the AddressSanitizer harness side by side (about a minute on 2 cores)."""
    why = _why_not()
    if why:
        pytest.skip(why)
    from torch.utils import cpp_extension

    out = tmp_path_factory.mktemp("cuda_emulator")
    base = ["g++", "-std=c++17", "-O1", *(f"-I{p}" for p in cpp_extension.include_paths()), f"-I{ROOT / 'csrc'}",
            f"-I{EMULATOR / 'shim'}", f"-I{EMULATOR / 'hip-cpu' / 'include'}", "-x", "c++", str(HARNESS)]
    variants = {"plain": [], "asan": ["-O0", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]}  # -O0: 5x faster to build
    procs = {name: subprocess.Popen([*base, *flags, "-o", str(out / name), "-ltbb", "-lpthread"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, flags in variants.items()}
    for name, proc in procs.items():
        log = proc.communicate()[0]
        assert proc.returncode == 0, f"building the {name} harness failed:\n{log[-3000:]}"
    return {name: out / name for name in variants}


@pytest.mark.parametrize("variant", ["plain", "asan"])
def test_kernels_match_the_reference_on_the_emulator(harnesses, variant, kernel_report):
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0"}
    proc = subprocess.run([str(harnesses[variant])], capture_output=True, text=True, env=env, timeout=300)
    summary = re.search(r"kernels (\d+), cases (\d+), checks (\d+), failed (\d+)", proc.stdout)
    assert summary, f"no summary line (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    kernels, cases, checks, failed = map(int, summary.groups())
    kernel_report.append(f"CUDA kernels executed on the CPU emulator ({variant}): {kernels} kernels, {cases} cases, "
                         f"{checks} checks, {failed} failed")
    assert "AddressSanitizer" not in proc.stderr, proc.stderr[-3000:]
    assert failed == 0 and proc.returncode == 0, proc.stdout[-3000:]
    assert kernels == KERNELS and cases >= 300
