"""A reference ResNet generator's `.pth` straight to its FP32 ONNX graph, without torch.

The first run of a checkpoint on a CPU makes its ONNX form (export/forms.py). Importing torch,
building the network and tracing it cost ~2.5 s of that run here; a plain state_dict of the
CycleGAN default (ResNet-n with instance norm, the reference's `latest_net_G.pth`) needs none
of it: its graph is a fixed list of layers whose weights are the file's tensors. This module
writes that graph with the same operators `torch.onnx.export` writes for it (reflect `Pad`,
`Conv`, `InstanceNormalization`, `Relu`, `Add`, `ConvTranspose`, `Tanh`; opset 17), and the
same metadata. tests/test_direct_export.py runs both graphs against PyTorch.

`read(path, ...)` returns None for anything else (a U-Net, batch norm, the blurred CUT layers,
our training checkpoints, a file torch alone can read): the caller then loads the checkpoint
with torch and traces it. A file whose keys or shapes do not fit its architecture also goes
that way, so the user sees torch's key-by-key explanation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PAD_MULTIPLE, MIN_SIDE, VALUE_RANGE = 4, 8, (-1.0, 1.0)  # models/resnet.py's ResnetGenerator
OPSET = 17
_EPS = 1e-5  # torch.nn.InstanceNorm2d's


@dataclass(frozen=True)
class Weights:
    """A checkpoint this module can write: its generator's spec, direction and tensors."""

    spec: object  # GeneratorSpec
    direction: str
    state: dict
    source: Path
    sha256: str


def _blocks(spec) -> int | None:
    m = re.fullmatch(r"resnet_(\d+)blocks", spec.name)
    ok = (m and int(m.group(1)) >= 1 and spec.norm in ("instance", "instance_affine", "none")
          and not spec.antialias and not spec.antialias_up)
    return int(m.group(1)) if ok else None


def _layers(spec, n_blocks: int) -> list[tuple]:
    """The generator as (op, key, settings) in order, with the state_dict key of each weighted
    layer; ("block", [...]) is a residual block's branch."""
    ngf, norm = spec.ngf, spec.norm
    bias = norm in ("instance", "instance_affine")  # models/norms.conv_bias

    def normed(key: str, channels: int) -> list[tuple]:
        return [] if norm == "none" else [("norm", key if norm == "instance_affine" else None, channels)]

    layers = [("pad", None, 3), ("conv", "model.1", dict(cin=spec.input_nc, cout=ngf, k=7, stride=1, pad=0, bias=bias)),
              *normed("model.2", ngf), ("relu", None, None)]
    index = 4
    for i in range(2):
        cin = ngf * 2**i
        layers += [("conv", f"model.{index}", dict(cin=cin, cout=2 * cin, k=3, stride=2, pad=1, bias=bias)),
                   *normed(f"model.{index + 1}", 2 * cin), ("relu", None, None)]
        index += 3
    dim = ngf * 4
    second = 6 if spec.use_dropout else 5  # Dropout (inactive at inference) shifts the second half
    for _ in range(n_blocks):
        branch = f"model.{index}.conv_block"
        layers.append(("block", None, [
            ("pad", None, 1), ("conv", f"{branch}.1", dict(cin=dim, cout=dim, k=3, stride=1, pad=0, bias=bias)),
            *normed(f"{branch}.2", dim), ("relu", None, None),
            ("pad", None, 1), ("conv", f"{branch}.{second}", dict(cin=dim, cout=dim, k=3, stride=1, pad=0, bias=bias)),
            *normed(f"{branch}.{second + 1}", dim)]))
        index += 1
    for i in range(2):
        cin = ngf * 2 ** (2 - i)
        layers += [("convT", f"model.{index}", dict(cin=cin, cout=cin // 2, bias=bias)),
                   *normed(f"model.{index + 1}", cin // 2), ("relu", None, None)]
        index += 3
    layers += [("pad", None, 3),
               ("conv", f"model.{index + 1}", dict(cin=ngf, cout=spec.output_nc, k=7, stride=1, pad=0, bias=True)),
               ("tanh", None, None)]
    return layers


def _flat(layers):
    for op, key, arg in layers:
        if op == "block":
            yield from _flat(arg)
        else:
            yield op, key, arg


def expected_shapes(spec) -> dict[str, tuple[int, ...]] | None:
    """Every state_dict key the generator of `spec` has, with its shape; None where this module
    does not write `spec`."""
    n = _blocks(spec)
    if n is None:
        return None
    shapes = {}
    for op, key, arg in _flat(_layers(spec, n)):
        if op == "conv":
            shapes[f"{key}.weight"] = (arg["cout"], arg["cin"], arg["k"], arg["k"])
        elif op == "convT":
            shapes[f"{key}.weight"] = (arg["cin"], arg["cout"], 3, 3)
        elif op == "norm" and key:
            shapes[f"{key}.weight"] = shapes[f"{key}.bias"] = (arg,)
        if op in ("conv", "convT") and arg["bias"]:
            shapes[f"{key}.bias"] = (arg["cout"],)
    return shapes


_LAST: dict = {}  # the last file read, by its identity and the settings: a first run reads it twice


def read(path: Path, *, direction: str | None = None, spec=None, norm_stats: str = "auto") -> Weights | None:
    """The checkpoint at `path` as `Weights`, where it is a plain state_dict of a ResNet generator
    this module writes, with exactly its keys and shapes and finite float32 weights; else None."""
    from cyclegan_tool.cache import file_identity

    try:
        ident = (file_identity(path), direction, spec, norm_stats)
    except OSError:
        return None
    if ident not in _LAST:
        _LAST.clear()
        _LAST[ident] = _read(Path(path), direction, spec, norm_stats)
    return _LAST[ident]


def _read(path: Path, direction: str | None, spec, norm_stats: str) -> Weights | None:
    from cyclegan_tool.errors import CycleGANError
    from cyclegan_tool.fileio import sha256_file
    from cyclegan_tool.layout import infer_generator_spec, strip_prefix, without_legacy_stats
    from cyclegan_tool.pth_reader import read_state_dict, reference_direction
    from cyclegan_tool.specs import NORM_STATS

    if norm_stats not in NORM_STATS or direction not in (None, "a2b", "b2a"):
        return None
    state = read_state_dict(path)
    if state is None:
        return None
    state = strip_prefix(state)
    try:
        spec = spec or infer_generator_spec(state)
        direction = reference_direction(Path(path), direction)
    except CycleGANError:
        return None
    shapes = expected_shapes(spec)
    if shapes is None:
        return None
    state = without_legacy_stats(state, shapes)
    if set(state) != set(shapes) or any(state[k].shape != shapes[k] or state[k].dtype != np.float32
                                        or not np.isfinite(state[k]).all() for k in shapes):
        return None
    return Weights(spec=spec, direction=direction, state=state, source=Path(path), sha256=sha256_file(path))


def metadata(w: Weights) -> dict:
    from cyclegan_tool.onnx_metadata import metadata_of

    return metadata_of(spec=w.spec, direction=w.direction, precision="fp32", source=w.source, source_sha256=w.sha256,
                       origin="reference", epoch=None, norm_stats=None, value_range=VALUE_RANGE,
                       pad_multiple=PAD_MULTIPLE, min_side=MIN_SIDE)


def graph(w: Weights):
    """The FP32 `onnx.ModelProto` of `w`'s generator, with its metadata."""
    from onnx import TensorProto, helper, numpy_helper

    from cyclegan_tool.onnx_metadata import INPUT, OUTPUT, set_metadata

    nodes, inits = [], []
    count = [0]

    def name(stem: str) -> str:
        count[0] += 1
        return f"{stem}_{count[0]}"

    def const(stem: str, value: np.ndarray) -> str:
        n = name(stem)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), n))
        return n

    def op(kind: str, inputs: list[str], **attrs) -> str:
        out = name(kind)
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def weighted(x: str, key: str, arg: dict) -> list[str]:
        """A convolution's inputs: `x`, its weight and (where it has one) its bias."""
        return [x] + [const(f"{key}.{t}", w.state[f"{key}.{t}"]) for t in (("weight", "bias") if arg["bias"] else ("weight",))]

    def emit(layers, x: str) -> str:
        for kind, key, arg in layers:
            if kind == "pad":
                x = op("Pad", [x, const("pads", np.array([0, 0, arg, arg, 0, 0, arg, arg], np.int64))], mode="reflect")
            elif kind == "conv":
                x = op("Conv", weighted(x, key, arg), kernel_shape=[arg["k"]] * 2, strides=[arg["stride"]] * 2,
                       pads=[arg["pad"]] * 4, dilations=[1, 1], group=1)
            elif kind == "convT":
                x = op("ConvTranspose", weighted(x, key, arg), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                       output_padding=[1, 1], dilations=[1, 1], group=1)
            elif kind == "norm":
                scale = w.state[f"{key}.weight"] if key else np.ones(arg, np.float32)
                shift = w.state[f"{key}.bias"] if key else np.zeros(arg, np.float32)
                x = op("InstanceNormalization", [x, const("scale", scale), const("shift", shift)], epsilon=_EPS)
            elif kind == "relu":
                x = op("Relu", [x])
            elif kind == "tanh":
                x = op("Tanh", [x])
            elif kind == "block":
                x = op("Add", [x, emit(arg, x)])
        return x

    emit(_layers(w.spec, _blocks(w.spec)), INPUT)
    nodes[-1].output[0] = OUTPUT
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", c, "height", "width"])
          for n, c in ((INPUT, w.spec.input_nc), (OUTPUT, w.spec.output_nc))]
    model = helper.make_model(helper.make_graph(nodes, "generator", [io[0]], [io[1]], inits),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cyclegan-tool")
    model.ir_version = 8  # what opset 17 came with (torch.onnx writes the same)
    set_metadata(model, metadata(w))
    return model
