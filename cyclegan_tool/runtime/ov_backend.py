"""OpenVINO backend for exported `.onnx` models on the CPU (`pip install ".[openvino]"`).

It reads the same ONNX file and metadata as ONNX Runtime. It computes at the graph's precision
unless asked for bf16 (`compute="bf16"`, which `--backend auto` picks where it measured faster
within its fidelity bar): OpenVINO's CPU plugin would otherwise choose bf16 by itself on CPUs
that have it, so the precision is always set explicitly (`INFERENCE_PRECISION_HINT`).
Compiled models are kept in the user cache (`$XDG_CACHE_HOME/cyclegan-tool/openvino`; OpenVINO
keys each by the graph, its weights and the settings), so later runs skip compilation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from cyclegan_tool.conventions import value_range_of
from cyclegan_tool.errors import BackendError, MissingDependencyError
from cyclegan_tool.models import GeneratorSpec
from cyclegan_tool.runtime.base import Backend, ModelInfo


def onnx_metadata(path: Path) -> dict:
    """Our metadata of an ONNX file (its graph not parsed: OpenVINO reads that itself)."""
    from cyclegan_tool.onnx_metadata import read_metadata_file, require

    return require(read_metadata_file(path), path)


def _compiled_cache() -> Path | None:
    """OpenVINO's folder for compiled models in the user cache, or None where it cannot be made."""
    from cyclegan_tool.fileio import user_cache_dir

    folder = user_cache_dir() / "openvino"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


class OpenVINOBackend(Backend):
    name = "openvino"

    def __init__(self, path: str | Path, *, device: str = "auto", threads: int = 0, compute: str = "graph"):
        super().__init__()
        if compute not in ("graph", "bf16"):
            raise BackendError(f"OpenVINO compute precision must be 'graph' or 'bf16', not '{compute}'")
        self.path, self.device_name, self.threads, self.compute = Path(path), device, threads, compute

    def _open(self) -> ModelInfo:
        try:
            import openvino as ov
        except ImportError:
            raise MissingDependencyError("openvino", "--backend openvino") from None
        if self.device_name not in ("auto", "cpu"):
            raise BackendError(f"--backend openvino runs on the CPU, not --device {self.device_name}")
        if not self.path.is_file():
            raise BackendError(f"{self.path}: no such file")
        meta = onnx_metadata(self.path)
        precision = meta.get("precision", "fp32")
        config = {"PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "bf16" if self.compute == "bf16" else
                  "f16" if precision == "fp16" else "f32"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        try:
            core = ov.Core()
            cache = _compiled_cache()
            if cache:  # a model compiled before loads from its blob (~150 ms less per run for horse2zebra)
                core.set_property({"CACHE_DIR": str(cache)})
            # From the read model, not the path: OpenVINO then keys the blob by the graph and its
            # weights, never by a path whose file may have been replaced.
            self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
        except Exception as e:
            raise BackendError(f"{self.path}: OpenVINO cannot load it ({str(e).splitlines()[0]})") from None
        self.request = self.compiled.create_infer_request()
        port = self.compiled.input(0)
        self.np_dtype = np.float16 if port.get_element_type().get_type_name() == "f16" else np.float32
        self.version = ov.__version__.split("-")[0]
        return ModelInfo(spec=GeneratorSpec.from_dict(meta["generator"]), direction=meta["direction"],
                         precision=precision, pad_multiple=int(meta["pad_multiple"]), source=str(self.path),
                         input_dtype="float16" if self.np_dtype == np.float16 else "float32",
                         value_range=value_range_of(meta.get("conventions")),
                         extra={"runtime": f"OpenVINO {self.version}", "metadata": meta,
                                "compute": "bf16" if self.compute == "bf16" else precision})

    def _infer_impl(self, x: torch.Tensor) -> torch.Tensor:
        feed = np.ascontiguousarray(x.detach().cpu().numpy().astype(self.np_dtype, copy=False))
        out = self.request.infer({0: feed})[self.compiled.output(0)]
        return torch.from_numpy(np.asarray(out, dtype=np.float32).copy())

    def _close(self) -> None:
        self.request = None
        self.compiled = None

    def describe(self) -> str:
        if not self.info:
            return super().describe()
        compute = self.info.extra["compute"]
        graph = "" if compute == self.info.precision else f" graph computed in {compute}"
        return f"openvino {self.info.precision}{graph} on cpu"
