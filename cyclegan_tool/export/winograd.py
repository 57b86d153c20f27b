"""A CPU form of an FP32 generator graph: its 3x3 convolutions by Winograd's F(2x2, 3x3).

The residual blocks' 3x3 convolutions are ~88% of a ResNet generator's arithmetic. F(2x2, 3x3)
(Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) computes each 2x2
output tile from a 4x4 input tile with 16 products per channel pair instead of 36:

    Y = A^T [ (G w G^T) * (B^T d B) ] A       (per tile, summed over input channels)

The graph rewrite below writes it with operators every runtime fuses well: 16 depthwise 4x4
stride-2 convolutions give the transformed input tiles V_k = (B^T d B)_k, 16 1x1 convolutions
with the transformed weights U_k = (G w G^T)_k sum over input channels, and additions give the
four outputs per tile, interleaved by DepthToSpace and cropped to the true size (odd sizes get
one zero row or column of padding in the depthwise step, and it is cropped off again).

It is the same convolution up to rounding: in FP32 the outputs agree to ~1e-6; computed in
bf16 by OpenVINO, ResNet-9 ngf64 was 43.9 dB from FP32 against 46.2 dB for the direct graph,
and 1.49x faster (165 vs 245 ms per 256x256 image, docs/BENCHMARKS.md). The larger F(4x4, 3x3)
is not used: its input transform in bf16 loses ~2.5% per convolution.

The same form also rewrites convolutions with few output channels (the generator's last 7x7
layer, 3 outputs): runtimes block output channels by 8 or 16, so 3 of them waste most of each
block. A k-by-1 convolution with 3k outputs (one per output channel and column offset j)
followed by k shifted slices summed computes the same thing with the blocks filled: 167 against
173 ms per image for ResNet-9 ngf64 in bf16. `--backend auto`
tries this form before the direct one and runs it only within its fidelity bar; exported
files (`export`) stay the direct graph.
"""

from __future__ import annotations

import numpy as np

from cyclegan_tool.export.graph_edit import GraphEdit

FORM_VERSION = 3  # part of cached files' names: a change to the rewrite makes new ones (3: shared constants)

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


def _attr(node, name, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _plain_conv(node, inits: dict) -> bool:
    """A not grouped, undilated stride-1 convolution without padding of its own, with constant FP32 weights."""
    from onnx import TensorProto

    if node.op_type != "Conv" or node.input[1] not in inits or len(inits[node.input[1]].dims) != 4:
        return False
    if inits[node.input[1]].data_type != TensorProto.FLOAT:
        return False
    if len(node.input) > 2 and node.input[2] and node.input[2] not in inits:
        return False
    return (list(_attr(node, "strides", [1, 1])) == [1, 1] and not any(_attr(node, "pads", [0, 0, 0, 0]))
            and list(_attr(node, "dilations", [1, 1])) == [1, 1] and _attr(node, "group", 1) == 1
            and _attr(node, "auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))


def eligible(node, inits: dict) -> bool:
    """A plain FP32 3x3 convolution (Winograd's F(2x2, 3x3) applies)."""
    return _plain_conv(node, inits) and list(inits[node.input[1]].dims[2:]) == [3, 3]


NARROW_MAX_OUTPUTS = 4


def narrow(node, inits: dict) -> bool:
    """A plain FP32 convolution with at most NARROW_MAX_OUTPUTS output channels and several columns."""
    return (_plain_conv(node, inits) and inits[node.input[1]].dims[0] <= NARROW_MAX_OUTPUTS
            and inits[node.input[1]].dims[3] > 1)


def _signed_sum(g: GraphEdit, terms: list[tuple[float, str]], base: str) -> str:
    """sum(c * t) for c in {1, -1}, as a chain of Add/Sub (runtimes fuse it into one pass)."""
    terms = sorted(terms, key=lambda ct: -ct[0])  # a positive term first (every row of A^T has one)
    acc = terms[0][1]
    for c, t in terms[1:]:
        acc = g.op("Add" if c > 0 else "Sub", [acc, t], base)
    return acc


def _rewrite_winograd(g: GraphEdit, node, w: np.ndarray, bias: np.ndarray | None) -> None:
    x, y, tag = node.input[0], node.output[0], node.output[0]
    o, c = w.shape[:2]
    # G w G^T per channel pair, [4, 4, O, C] (as two BLAS products: 65,536 tiny matmuls are slow)
    u = np.tensordot(np.tensordot(G, w.astype(np.float64), axes=([1], [2])), G, axes=([3], [1])).transpose(0, 3, 1, 2)
    # The last row and column of A^T enter with sign -1 only: folded into U (and A^T), half the
    # output transform's subtractions become additions, which runtimes chain more cheaply.
    sign = np.array([1.0, 1.0, 1.0, -1.0])
    u = np.ascontiguousarray((u * sign[:, None, None, None] * sign[None, :, None, None]).astype(np.float32))
    a_t = A_T * sign
    m = {}
    for a in range(4):  # B^T d B separably: rows (4x1, stride 2 down), then columns (1x4, stride 2 across)
        rows = np.broadcast_to(B_T[a][:, None], (c, 1, 4, 1)).astype(np.float32)
        r = g.op("Conv", [x, g.shared("wino_Br", rows)], f"{tag}_wino_R{a}", group=c,
                 kernel_shape=[4, 1], strides=[2, 1], pads=[0, 0, 1, 0])
        for b in range(4):
            cols = np.broadcast_to(B_T[b][None, :], (c, 1, 1, 4)).astype(np.float32)
            v = g.op("Conv", [r, g.shared("wino_Bc", cols)], f"{tag}_wino_V{a}{b}", group=c,
                     kernel_shape=[1, 4], strides=[1, 2], pads=[0, 0, 0, 1])
            m[a, b] = g.op("Conv", [v, g.const(f"{tag}_wino_U{a}{b}", u[a, b][..., None, None])],
                           f"{tag}_wino_M{a}{b}", kernel_shape=[1, 1])
    # Y = A^T M A, separably: P_ub = sum_a A^T[u, a] M_ab, then Y_uv = sum_b A^T[v, b] P_ub.
    p = {(u_, b): _signed_sum(g, [(a_t[u_, a], m[a, b]) for a in range(4) if a_t[u_, a]], f"{tag}_wino_P")
         for u_ in range(2) for b in range(4)}
    ys = [_signed_sum(g, [(a_t[v, b], p[u_, b]) for b in range(4) if a_t[v, b]], f"{tag}_wino_Y")
          for u_ in range(2) for v in range(2)]
    if bias is not None:
        b4 = g.const(f"{tag}_wino_bias", bias.reshape(1, -1, 1, 1).astype(np.float32))
        ys = [g.op("Add", [t, b4], f"{tag}_wino_Yb") for t in ys]
    tiles = g.op("Concat", ys, f"{tag}_wino_tiles", axis=1)
    full = g.op("DepthToSpace", [tiles], f"{tag}_wino_full", blocksize=2, mode="DCR")
    # Crop to the true size (H, W) = input size - 2: a no-op for even sizes.
    shape = g.op("Shape", [x], f"{tag}_wino_shape")
    hw = g.op("Slice", [shape, g.shared("wino_2", np.array([2], np.int64)),
                        g.shared("wino_4", np.array([4], np.int64))], f"{tag}_wino_hw")
    size = g.op("Sub", [hw, g.shared("wino_two", np.array([2, 2], np.int64))], f"{tag}_wino_size")
    g.op("Slice", [full, g.shared("wino_zeros", np.array([0, 0], np.int64)), size,
                   g.shared("wino_axes", np.array([2, 3], np.int64))], f"{tag}_wino_crop", output=y)


def _rewrite_narrow(g: GraphEdit, node, w: np.ndarray, bias: np.ndarray | None) -> None:
    x, y, tag = node.input[0], node.output[0], node.output[0]
    o, c, kh, kw = w.shape
    # z[j*O + o] = sum_{c,i} w[o, c, i, j] x[c, h + i, w']: one kh x 1 convolution with kw*O outputs.
    columns = np.ascontiguousarray(w.transpose(3, 0, 1, 2).reshape(kw * o, c, kh, 1))
    z = g.op("Conv", [x, g.const(f"{tag}_narrow_W", columns)], f"{tag}_narrow_z", kernel_shape=[kh, 1])
    axes = g.const(f"{tag}_narrow_axes", np.array([1, 3], np.int64))
    terms = []
    for j in range(kw):  # y[o, h, w'] = sum_j z[j*O + o, h, w' + j]
        end = -(kw - 1 - j) if j < kw - 1 else np.iinfo(np.int64).max
        starts = g.const(f"{tag}_narrow_s{j}", np.array([j * o, j], np.int64))
        ends = g.const(f"{tag}_narrow_e{j}", np.array([(j + 1) * o, end], np.int64))
        terms.append((1.0, g.op("Slice", [z, starts, ends, axes], f"{tag}_narrow_z{j}")))
    total = _signed_sum(g, terms, f"{tag}_narrow_sum")
    if bias is None:
        g.op("Identity", [total], f"{tag}_narrow_out", output=y)
    else:
        g.op("Add", [total, g.const(f"{tag}_narrow_bias", bias.reshape(1, -1, 1, 1).astype(np.float32))],
             f"{tag}_narrow_out", output=y)


def rewrite(model):
    """A copy of FP32 `model` with every `eligible` convolution in F(2x2, 3x3) form and every
    `narrow` one as columns, and how many of each: `(onnx.ModelProto, {"winograd": n, "narrow": m})`."""
    from onnx import numpy_helper

    g = GraphEdit(model)
    counts = {"winograd": 0, "narrow": 0}
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for t in node.input:
            readers.setdefault(t, []).append(node.op_type)
    for node in model.graph.node:
        kind = "winograd" if eligible(node, g.inits) else "narrow" if narrow(node, g.inits) else None
        if kind is None:
            g.keep(node)
            continue
        bias = numpy_helper.to_array(g.inits[node.input[2]]) if len(node.input) > 2 and node.input[2] else None
        if readers.get(node.output[0]) == ["InstanceNormalization"]:
            bias = None  # a per-channel constant the norm subtracts again: fewer passes
        (_rewrite_winograd if kind == "winograd" else _rewrite_narrow)(g, node, numpy_helper.to_array(
            g.inits[node.input[1]]), bias)
        counts[kind] += 1
    return g.finish(), counts
