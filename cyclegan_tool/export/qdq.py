"""The int8 QDQ graph format: what an int8 generator's ONNX file looks like.

Each quantized `Conv` reads its input through QuantizeLinear -> DequantizeLinear (int8, one
symmetric scale per tensor, zero point 0) and writes its output through another such pair;
its weights are stored int8 with one symmetric scale per output channel (range +-127) and its
bias int32 at scale input_scale * weight_scale, each behind a DequantizeLinear. This is the
layout ONNX Runtime's own quantizer writes and the one OpenVINO and ONNX Runtime both run with
int8 arithmetic. The activation scales come from calibration (`int8.py`); nothing here runs
the model.
"""

from __future__ import annotations

import numpy as np

from cyclegan_tool.export.graph_edit import GraphEdit

QUANTIZED_OPS = ("Conv",)  # ConvTranspose and InstanceNormalization stay float (see int8.py)


def activation_tensors(model) -> list[str]:
    """The tensors whose ranges calibration measures: every quantized node's input and output."""
    names: list[str] = []
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS:
            names += [t for t in (node.input[0], node.output[0]) if t not in names]
    return names


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`w` [O, ...] as int8 with one symmetric scale per output channel: (int8 values, scales)."""
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, scale


def _fake_quant(g: GraphEdit, tensor: str, scale: np.float32, out: str | None = None) -> str:
    """`tensor` through QuantizeLinear -> DequantizeLinear (int8, symmetric); the dequantized name."""
    s = g.const(f"{tensor}_scale", np.array(scale, np.float32))
    z = g.const(f"{tensor}_zero_point", np.array(0, np.int8))
    q = g.op("QuantizeLinear", [tensor, s, z], f"{tensor}_QuantizeLinear_Output")
    return g.op("DequantizeLinear", [q, s, z], f"{tensor}_DequantizeLinear_Output", output=out)


def _stored(g: GraphEdit, name: str, values: np.ndarray, scale: np.ndarray, zero_dtype) -> str:
    """An integer initializer behind a per-channel DequantizeLinear; the dequantized name."""
    q = g.const(f"{name}_quantized", values)
    s = g.const(f"{name}_quantized_scale", scale)
    z = g.const(f"{name}_quantized_zero_point", np.zeros(len(scale), zero_dtype))
    return g.op("DequantizeLinear", [q, s, z], f"{name}_DequantizeLinear_Output", axis=0)


def insert_qdq(model, ranges: dict[str, float]):
    """A copy of `model` with every quantized node in the QDQ format above; `ranges` maps each
    of `activation_tensors(model)` to its calibrated absolute range (the int8 scale is range/127)."""
    import onnx

    g = GraphEdit(model)
    scales = {t: np.float32(max(float(r), 1e-8) / 127.0) for t, r in ranges.items()}
    dequantized: dict[str, str] = {}  # a calibrated input tensor -> its fake-quantized name (made once)
    for node in model.graph.node:
        if node.op_type not in QUANTIZED_OPS or node.input[0] not in scales:
            g.keep(node)
            continue
        new = onnx.NodeProto()
        new.CopyFrom(node)
        x = node.input[0]
        if x not in dequantized:
            dequantized[x] = _fake_quant(g, x, scales[x])
        new.input[0] = dequantized[x]
        wq, ws = quantize_weights(g.to_array(g.inits[node.input[1]]))
        new.input[1] = _stored(g, node.input[1], wq, ws, np.int8)
        if len(node.input) > 2 and node.input[2]:
            bias_scale = (scales[x] * ws).astype(np.float32)
            bias = np.round(g.to_array(g.inits[node.input[2]]).astype(np.float64) / bias_scale).astype(np.int32)
            new.input[2] = _stored(g, node.input[2], bias, bias_scale, np.int32)
        y = node.output[0]
        if y in scales:  # the output keeps its name for its readers; the node writes a raw one
            new.output[0] = g.name(f"{y}_float")
            g.keep(new)
            _fake_quant(g, new.output[0], scales[y], out=y)
        else:
            g.keep(new)
    return g.finish()
