"""PyTorch generator -> ONNX: standard ops only (Pad reflect, InstanceNormalization), named
I/O `input`/`output`, dynamic batch/height/width, and metadata describing the model."""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from cyclegan_tool.checkpoints import LoadedGenerator
from cyclegan_tool.errors import ExportError, MissingDependencyError
from cyclegan_tool.models import min_side, pad_multiple, value_range
from cyclegan_tool.export.graph_edit import save_model
from cyclegan_tool.onnx_metadata import INPUT, OUTPUT, metadata_of, set_metadata

MIN_OPSET = 17


class _ReflectPad(torch.autograd.Function):
    """Reflection pad whose ONNX form is one `Pad(mode=reflect)` with constant pads."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
        return nn.functional.pad(x, pads, mode="reflect")

    @staticmethod
    def symbolic(g, x, pads):
        left, right, top, bottom = pads
        const = torch.tensor([0, 0, top, left, 0, 0, bottom, right], dtype=torch.int64)
        return g.op("Pad", x, g.op("Constant", value_t=const), mode_s="reflect")


class ExportReflectionPad(nn.Module):
    def __init__(self, padding: tuple[int, int, int, int]):
        super().__init__()
        self.padding = tuple(int(p) for p in padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReflectPad.apply(x, self.padding)


def exportable(net: nn.Module) -> nn.Module:
    """A copy of `net` in eval mode with every reflection pad (native or custom op) replaced
    by one that exports as a single standard `Pad` node."""
    net = copy.deepcopy(net).eval().float()
    for module in list(net.modules()):
        for name, child in module.named_children():
            padding = getattr(child, "padding", None)
            if isinstance(child, nn.ReflectionPad2d) or type(child).__name__ == "CustomReflectionPad2d":
                setattr(module, name, ExportReflectionPad(padding))
    return net


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    precision: str
    metadata: dict
    parity: dict


def model_metadata(loaded: LoadedGenerator, precision: str) -> dict:
    """What every exported artifact says about itself (ONNX metadata_props, engine sidecars)."""
    return metadata_of(spec=loaded.spec, direction=loaded.direction, precision=precision, source=loaded.source,
                       source_sha256=loaded.source_sha256, origin=loaded.origin, epoch=loaded.epoch,
                       norm_stats=loaded.norm_stats, value_range=value_range(loaded.spec),
                       pad_multiple=pad_multiple(loaded.spec), min_side=min_side(loaded.spec))


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx", "ONNX export") from None
    return onnx


def export_fp32(loaded: LoadedGenerator, opset: int = MIN_OPSET):
    """Trace the generator to an in-memory FP32 `onnx.ModelProto`."""
    onnx = _onnx()
    import io
    import warnings

    highest = max_opset()
    if not MIN_OPSET <= opset <= highest:
        raise ExportError(f"--opset {opset}: this torch exports opsets {MIN_OPSET} to {highest}")
    net = exportable(loaded.net)
    m = pad_multiple(loaded.spec)
    dummy = torch.zeros(1, loaded.spec.input_nc, 2 * m if m > 4 else 64, 2 * m if m > 4 else 64)
    dyn = {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(net, (dummy,), buf, dynamo=False, input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=opset, dynamic_axes={INPUT: dyn, OUTPUT: dyn}, do_constant_folding=True)
        except Exception as e:  # the exporter's own refusal, as one line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"{loaded.source}: the ONNX exporter failed ({first})") from None
    return tidy(onnx.load_from_string(buf.getvalue()))


def max_opset() -> int:
    """The highest ONNX opset this torch's exporter writes."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError):
        return 20


def tidy(model):
    """Fold `Constant` nodes into initializers and bypass `Identity` nodes, leaving only the
    compute ops (Pad, Conv, InstanceNormalization, ...) in the graph."""
    from onnx import numpy_helper

    graph = model.graph
    outputs = {o.name for o in graph.output}
    rename: dict[str, str] = {}
    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] not in outputs:
            value = next(a.t for a in node.attribute if a.name == "value")
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(value), node.output[0]))
        elif node.op_type == "Identity" and node.output[0] not in outputs:
            rename[node.output[0]] = rename.get(node.input[0], node.input[0])
        else:
            keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    del graph.node[:]
    graph.node.extend(keep)
    return model


def export_onnx(loaded: LoadedGenerator, path: str | os.PathLike, *, fp16: bool = False, opset: int = MIN_OPSET,
                check: bool = True, check_sizes: tuple[tuple[int, int], ...] | None = None,
                int8_calibration: str | os.PathLike | None = None, calib_count: int = 64,
                calib_size: int = 256, int8_min_psnr: float | None = None) -> OnnxExport:
    """Export `loaded` to `path`; FP16 gives the strongly typed FP16 graph (instance norm in FP32);
    `int8_calibration` (a folder of input-domain images) the int8 QDQ graph (see `int8.py`).

    With `check`, ONNX Runtime runs the file against PyTorch at `check_sizes` and the export
    fails past the tolerance (see `parity.py`); the file is only written when it passes.
    """
    from cyclegan_tool.export import fp16 as fp16_pass
    from cyclegan_tool.export.parity import check_parity

    t0 = time.perf_counter()
    model = export_fp32(loaded, opset)
    precision = "int8" if int8_calibration else "fp16" if fp16 else "fp32"
    if fp16 and int8_calibration:
        raise ExportError("choose --fp16 or --int8, not both")
    if fp16:
        model = fp16_pass.to_fp16(model)
    meta = model_metadata(loaded, precision)
    if int8_calibration:
        from cyclegan_tool.export import int8

        inputs, record = int8.calibration_inputs(int8_calibration, loaded.spec, count=calib_count, size=calib_size)
        quantized, references = int8.quantize(model, inputs)
        lo, hi = value_range(loaded.spec)
        psnr_db = int8.fidelity(quantized, inputs, references, hi - lo)
        int8.check(psnr_db, int8.MIN_PSNR_DB if int8_min_psnr is None else int8_min_psnr)
        model, meta["calibration"] = quantized, {**record, "psnr_db_vs_fp32": round(psnr_db, 2)}
    set_metadata(model, meta)  # save_model below checks the graph (with shape inference) before writing
    if int8_calibration:  # its fidelity was measured against the FP32 graph above
        parity = {"runtime": "onnxruntime CPU", "precision": "int8", "psnr_db_vs_fp32": meta["calibration"]["psnr_db_vs_fp32"],
                  "calibration_images": meta["calibration"]["images"]}
    else:
        parity = check_parity(model, loaded, precision, check_sizes) if check else {"skipped": True}
    parity["export_seconds"] = round(time.perf_counter() - t0, 2)
    return OnnxExport(path=save_model(model, path), precision=precision, metadata=meta, parity=parity)
