"""The backend interface: open, infer a batch, close.

    with load_model("h2z.onnx") as backend:
        y = backend.infer(x)   # float32 [N, 3, H, W] in [-1, 1] -> same shape, float32

Arrays are NumPy's, so that a run on ONNX Runtime or OpenVINO imports no torch; a torch
tensor given to `infer` comes back as a torch tensor. The public `infer` checks the input
against what the model accepts; subclasses fill `_open`, `_infer_impl` (NumPy in and out) and
`_close`, importing their libraries lazily, and are given only resolved settings (the
planner, runtime/plan.py, decides what runs where).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from cyclegan_tool.errors import BackendError
from cyclegan_tool.specs import GeneratorSpec


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What a model file says about itself, the same for every backend."""

    spec: GeneratorSpec
    direction: str
    precision: str
    pad_multiple: int
    source: str
    min_side: int = 8  # the smallest H and W the generator runs at
    # Peak memory this runtime takes per input pixel in one pass (measured for ResNet generators,
    # bench/memory_bench.py; scales with ngf): what bounds the size translated in one pass.
    bytes_per_pixel: float = 1500.0
    norm_stats: str | None = None  # a batch-norm generator's: "batch" or "running" (models/norm_stats.py)
    # What the backend accepts (an engine's profile); None = unlimited. The pipeline plans
    # every batch and tile within these, so `infer` never sees a shape outside them.
    min_batch: int = 1
    max_batch: int | None = None
    min_hw: tuple[int, int] | None = None
    max_hw: tuple[int, int] | None = None
    input_dtype: str = "float32"  # what the model itself takes; `infer` converts
    layout: str = "NCHW"
    value_range: tuple[float, float] = (-1.0, 1.0)  # of its input and output pixels (conventions.py)
    extra: dict = field(default_factory=dict)

    def batch_for(self, wanted: int) -> int:
        """`wanted` clamped to the accepted batch range."""
        return max(self.min_batch, min(wanted, self.max_batch or wanted))

    def summary(self) -> str:
        s = self.spec
        channels = "" if (s.input_nc, s.output_nc) == (3, 3) else f", {s.input_nc} -> {s.output_nc} channels"
        stats = {"batch": "; batch norm with each image's own statistics (test.py's default; --norm-stats running "
                           "for test.py --eval)",
                 "running": "; batch norm with its running statistics (as test.py --eval)"}.get(self.norm_stats, "")
        return (f"{s.name} ngf={s.ngf} norm={s.norm}{channels}, direction {self.direction}, {self.precision}, "
                f"pad multiple {self.pad_multiple}{stats}")


class Backend(ABC):
    """One inference backend. Use as a context manager or call `open()`/`close()`."""

    name = "backend"

    def __init__(self) -> None:
        self._opened = False
        self.info: ModelInfo | None = None
        self.device = "cpu"  # where it runs: "cpu" or "cuda:N"
        self._known: list[tuple[np.ndarray, np.ndarray]] = []  # `remember`

    def open(self) -> Backend:
        if not self._opened:
            self.info = self._open()
            self._opened = True
        return self

    def close(self) -> None:
        self._known = []
        if self._opened:
            self._close()
            self._opened = False

    def remember(self, x: np.ndarray, y: np.ndarray) -> None:
        """Keep `y`, this backend's own output for the input `x` (the fidelity check's on its
        sample, runner.py): the next `infer` of an equal input returns it instead of computing it
        again, once (a run whose first image is the sample translates that image once)."""
        self._known.append((x, y))

    def __enter__(self) -> Backend:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.name} on {self.device}"

    def infer(self, x):
        """float `[N, input_nc, H, W]` in `info.value_range`, H and W multiples of
        `info.pad_multiple` -> float32 `[N, output_nc, H, W]` in that range: a NumPy array, or a
        CPU torch tensor where `x` is a torch tensor."""
        if type(x).__module__.startswith("torch"):
            import torch

            return torch.from_numpy(self.infer(x.detach().float().cpu().numpy()))
        if not self._opened:
            raise BackendError(f"{self.name}: infer() before open()")
        info = self.info
        if x.ndim != 4 or x.shape[1] != info.spec.input_nc:
            raise BackendError(f"{self.name}: expected [N, {info.spec.input_nc}, H, W], got {list(x.shape)}")
        h, w = x.shape[-2:]
        if h % info.pad_multiple or w % info.pad_multiple:
            raise BackendError(f"{self.name}: {h}x{w} is not a multiple of {info.pad_multiple}")
        n = x.shape[0]
        if n < info.min_batch or (info.max_batch and n > info.max_batch):
            raise BackendError(f"{self.name}: batch {n} is outside the model's range {info.min_batch}.."
                               f"{info.max_batch or 'any'}")
        if info.max_hw and (h > info.max_hw[0] or w > info.max_hw[1]):
            raise BackendError(f"{self.name}: {h}x{w} is over the engine profile's maximum "
                               f"{info.max_hw[0]}x{info.max_hw[1]} (use --tile)")
        if info.min_hw and (h < info.min_hw[0] or w < info.min_hw[1]):
            raise BackendError(f"{self.name}: {h}x{w} is under the engine profile's minimum "
                               f"{info.min_hw[0]}x{info.min_hw[1]}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        for i, (known, y) in enumerate(self._known):
            if known.shape == x.shape and np.array_equal(known, x):
                del self._known[i]
                return y
        return self._infer_impl(x)

    @abstractmethod
    def _open(self) -> ModelInfo: ...

    @abstractmethod
    def _infer_impl(self, x: np.ndarray) -> np.ndarray: ...

    def _close(self) -> None:
        pass
