"""The one owner of device resolution: what `--device auto|cpu|cuda|cuda:N` means here.

Training, every backend and the metrics ask `resolve_device`; nobody else reads
`torch.cuda.is_available()` to decide where work runs. What the machine has (an NVIDIA GPU,
the CPU's model and bf16 support) is read without importing torch (`nvidia_gpu_present`,
`cpu_model`, `cpu_has_native_bf16`), so that runs which need no torch import none.
"""

from __future__ import annotations

import glob
import os

from cyclegan_tool.errors import ConfigError


def resolve_device(name: str, local_rank: int = 0):
    """`auto` -> cuda:LOCAL_RANK when CUDA is present, else cpu. Asking for CUDA without it fails.
    Returns a `torch.device` (imports torch)."""
    import torch

    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device '{name}' is not a device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
        if device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    return device


CPUINFO = "/proc/cpuinfo"


def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where it cannot be read)."""
    fields: dict[str, str] = {}
    try:
        with open(CPUINFO, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The CPU's model name with its family, model and stepping numbers ("AMD EPYC (25/17/1)"):
    virtual machines often show only a brand name, and the numbers tell its generations apart;
    "cpu" where /proc/cpuinfo cannot be read."""
    info = _cpuinfo_fields()
    name = info.get("model name", "cpu")
    ids = [info[k] for k in ("cpu family", "model", "stepping") if info.get(k)]
    return f"{name} ({'/'.join(ids)})" if ids else name


def nvidia_gpu_present() -> bool:
    """Whether the NVIDIA driver shows a GPU to this machine (read from the driver's files, without
    importing a CUDA library; CUDA_VISIBLE_DEVICES="" or "-1" hides them, as CUDA would)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/proc/driver/nvidia/gpus/*") or glob.glob("/dev/nvidia[0-9]*"))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX), where bf16 autocast pays
    (1.78x per ResNet-9 training step on an AMD EPYC with AVX512-BF16; on CPUs without it,
    bf16 is emulated and slower)."""
    flags = _cpuinfo_fields().get("flags", "").split()
    if flags:
        return "avx512_bf16" in flags or "amx_bf16" in flags
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def cpu_has_native_int8() -> bool:
    """Whether this CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX), where
    an int8 graph outruns the float one; elsewhere int8 convolutions are emulated with widening
    multiplies and gain little."""
    flags = _cpuinfo_fields().get("flags", "").split()
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def resolve_amp(amp: str, device) -> str:
    """`--amp auto`: bf16 on a CPU with native bf16, otherwise none (FP32; GPUs keep FP32 until
    measured); other values as given."""
    if amp != "auto":
        return amp
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "none"


def cuda_gpu() -> dict | None:
    """The CUDA GPU this process's torch sees (name, compute capability), or None (imports torch)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability()
        return {"name": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}"}
    except Exception:
        return None


def cuda_count() -> int:
    """How many CUDA devices this process's torch sees (0 without CUDA; imports torch)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
