"""One thin layer over the two NVIDIA engine libraries.

`tensorrt` (TensorRT 10/11, datacenter GPUs) and `tensorrt_rtx` (TensorRT for RTX, desktop
RTX GPUs, builds engines without a GPU) share their Python API closely; the differences
live here and nowhere else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from cyclegan_tool.errors import ConfigError, MissingDependencyError

LIBRARIES = {"tensorrt": "tensorrt", "rtx": "tensorrt_rtx"}
INSTALL = {"tensorrt": "pip install tensorrt (needs NVIDIA's package index and a GPU driver)",
           "rtx": "pip install tensorrt-rtx-cu13"}


@dataclass(frozen=True)
class TrtLib:
    """An imported engine library: `key` is 'tensorrt' or 'rtx'."""

    key: str
    module: ModuleType

    @property
    def name(self) -> str:
        return LIBRARIES[self.key]

    @property
    def version(self) -> str:
        return self.module.__version__

    @property
    def is_rtx(self) -> bool:
        return self.key == "rtx"

    def logger(self):
        trt = self.module
        return trt.Logger(trt.Logger.WARNING)


def _try_import(key: str) -> TrtLib | None:
    try:
        module = importlib.import_module(LIBRARIES[key])
        module.Builder  # the PyPI stub packages import but carry no API  # noqa: B018
    except Exception:  # ImportError, or the stub's own error on import
        return None
    return TrtLib(key, module)


def load(choice: str = "auto", what: str = "--trt") -> TrtLib:
    """`auto`: TensorRT where it is installed and working, else TensorRT for RTX. `what` names
    where `choice` came from in an error (the option, or an engine's sidecar)."""
    if choice not in ("auto", *LIBRARIES):
        raise ConfigError(f"{what} must be auto, tensorrt or rtx, not '{choice}'")
    order = ["tensorrt", "rtx"] if choice == "auto" else [choice]
    for key in order:
        lib = _try_import(key)
        if lib is not None:
            return lib
    if choice == "auto":
        raise MissingDependencyError("tensorrt-rtx-cu13", "Building a TensorRT engine",
                                     f"{INSTALL['rtx']}, or full TensorRT: {INSTALL['tensorrt']}")
    raise MissingDependencyError(LIBRARIES[choice], f"{what} {choice}", INSTALL[choice])


def network_flags(lib: TrtLib) -> int:
    """Strongly typed: precisions come from the ONNX graph's types, never guessed by the builder."""
    trt = lib.module
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def dtype_name(lib: TrtLib, dtype) -> str:
    trt = lib.module
    return {trt.DataType.FLOAT: "float32", trt.DataType.HALF: "float16"}.get(dtype, str(dtype))


def compute_capabilities(lib: TrtLib, config, wanted: list[str]) -> list[str]:
    """Set (RTX) target compute capabilities, e.g. ['8.6', '8.9']; returns what the engine targets."""
    trt = lib.module
    if not lib.is_rtx:
        if wanted:
            raise ConfigError("--compute-capability applies to TensorRT for RTX; full TensorRT builds for "
                              "the GPU it runs on")
        return []
    if not wanted:
        return ["default (8.0+ portable: 8.0, 8.6, 8.9, 12.0 and later)"]
    members = {m.replace("SM", ""): getattr(trt.ComputeCapability, m)
               for m in trt.ComputeCapability.__members__ if m.startswith("SM")}
    config.num_compute_capabilities = len(wanted)
    for i, cc in enumerate(wanted):
        key = cc.replace(".", "")
        if key not in members:
            raise ConfigError(f"--compute-capability {cc}: choose from "
                              f"{', '.join(k[:-1] + '.' + k[-1] for k in members)}")
        config.set_compute_capability(members[key], i)
    return wanted
