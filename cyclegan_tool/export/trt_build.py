"""ONNX -> serialized TensorRT engine (`.plan`) with one optimization profile, plus its sidecar."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cyclegan_tool.errors import ExportError
from cyclegan_tool import sidecar, trt_libs
from cyclegan_tool.fileio import atomic_write, sha256_file

Shape = tuple[int, int, int, int]
# The optimisation profile when none is given (C becomes the model's input channels).
DEFAULT_PROFILE: dict[str, Shape] = {"min": (1, 3, 64, 64), "opt": (4, 3, 256, 256), "max": (8, 3, 1024, 1024)}


def parse_shape(text: str) -> Shape:
    """'1x3x256x256' -> (1, 3, 256, 256)."""
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise ExportError(f"shape '{text}' is not NxCxHxW with positive numbers")
    return dims  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    min_shape: Shape = DEFAULT_PROFILE["min"]
    opt_shape: Shape = DEFAULT_PROFILE["opt"]
    max_shape: Shape = DEFAULT_PROFILE["max"]
    workspace_mib: int = 4096
    library: str = "auto"
    compute_capabilities: tuple[str, ...] = ()

    def validate(self, pad: int, channels: int = 3) -> None:
        for a, b in ((self.min_shape, self.opt_shape), (self.opt_shape, self.max_shape)):
            if any(x > y for x, y in zip(a, b)):
                raise ExportError(f"profile shapes must grow: {a} > {b} somewhere")
        for s in (self.min_shape, self.opt_shape, self.max_shape):
            if s[1] != channels:
                raise ExportError(f"profile shape {'x'.join(map(str, s))}: the model takes {channels} channel(s)")
            if s[2] % pad or s[3] % pad:
                raise ExportError(f"profile shape {'x'.join(map(str, s))}: height and width must be "
                                  f"multiples of {pad} for this generator")


def build_engine(onnx_path: Path, plan_path: Path, meta: dict, cfg: EngineConfig) -> dict:
    """Parse `onnx_path`, build with `cfg`, write the plan and `<plan>.json` atomically.

    Raises ExportError if parsing or building fails, or if the built network's precision is
    not what the ONNX graph (and so the user) asked for. Returns the sidecar.
    """
    lib = trt_libs.load(cfg.library)
    trt = lib.module
    cfg.validate(int(meta["pad_multiple"]), int(meta["generator"].get("input_nc", 3)))
    t0 = time.perf_counter()
    logger = lib.logger()
    builder = trt.Builder(logger)
    network = builder.create_network(trt_libs.network_flags(lib))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{onnx_path}: {lib.name} cannot parse it: {errors}")
    inp, out = network.get_input(0), network.get_output(0)
    want = meta["io"]["dtype"]
    got = trt_libs.dtype_name(lib, inp.dtype)
    if got != want:
        raise ExportError(f"{onnx_path}: network input is {got} but {want} was asked; refusing to build "
                          f"a {got} engine")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, cfg.workspace_mib << 20)
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, cfg.min_shape, cfg.opt_shape, cfg.max_shape)
    config.add_optimization_profile(profile)
    targets = trt_libs.compute_capabilities(lib, config, list(cfg.compute_capabilities))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"{lib.name} {lib.version} failed to build an engine from {onnx_path} "
                          "(run with -v for the builder log)")
    data = bytes(serialized)
    atomic_write(plan_path, lambda f: f.write(data))
    from cyclegan_tool.devices import cuda_gpu

    gpu = cuda_gpu()
    info = sidecar.make(
        meta=meta, lib=lib, io={"input": inp.name, "output": out.name, "dtype": got,
                                "output_dtype": trt_libs.dtype_name(lib, out.dtype)},
        profile={"min": list(cfg.min_shape), "opt": list(cfg.opt_shape), "max": list(cfg.max_shape)},
        targets=targets if lib.is_rtx else ([gpu["compute_capability"]] if gpu else []),
        gpu=gpu, onnx_sha256=sha256_file(onnx_path), plan_sha256=sha256_file(plan_path),
        build_seconds=round(time.perf_counter() - t0, 2), workspace_mib=cfg.workspace_mib)
    sidecar.write(plan_path, info)
    return info
