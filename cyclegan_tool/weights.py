"""Generator weights from any file the tool can make or read, for warm starts (`--init-from`).

`generator_weights(source)` -> (GeneratorSpec, state_dict) for one generator stored in a
cyclegan-tool checkpoint (`direction` picks which), a reference `.pth`, an ONNX file we
exported (its initializers keep the state_dict names) or a shipped model name.
"""

from __future__ import annotations

from pathlib import Path

import torch

from cyclegan_tool import checkpoints
from cyclegan_tool.errors import CheckpointError
from cyclegan_tool.fileio import sha256_file
from cyclegan_tool.models import GeneratorSpec
from cyclegan_tool.layout import infer_generator_spec, strip_prefix


def _onnx_weights(path: Path) -> tuple[GeneratorSpec, dict[str, torch.Tensor], dict]:
    """(architecture, state_dict, our metadata) of an FP32 ONNX file we exported."""
    import onnx

    from cyclegan_tool.onnx_metadata import read_metadata

    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0]})") from None
    meta = read_metadata(model)
    if meta.get("precision", "fp32") != "fp32" or "generator" not in meta:
        raise CheckpointError(f"{path}: only FP32 ONNX files exported by cyclegan-tool hold reusable weights")
    spec = GeneratorSpec.from_dict(meta["generator"])
    return spec, _state_from_graph(model, spec, path), meta


def _state_from_graph(model, spec: GeneratorSpec, path: Path) -> dict[str, torch.Tensor]:
    """The generator's state_dict from the graph, matched by position: the exporter may merge
    equal initializers (zero biases of a fresh model) under one name, so names cannot be trusted.
    Conv/ConvTranspose nodes pair with the network's conv modules and InstanceNormalization
    nodes with its affine norms, each in execution order."""
    import torch.nn as nn
    from onnx import numpy_helper

    from cyclegan_tool.models import build_generator

    inits = {init.name: init for init in model.graph.initializer}

    def array(name: str) -> torch.Tensor:
        if name not in inits:
            raise CheckpointError(f"{path}: weight '{name}' is computed in the graph, not stored; cannot reuse it")
        return torch.from_numpy(numpy_helper.to_array(inits[name]).copy())

    from cyclegan_tool.models.antialias import BlurDownsample, BlurUpsample

    with torch.device("meta"):
        net = build_generator(spec)
    # The anti-aliased layers are convolutions in the graph too, with their fixed filter as the weight.
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, BlurDownsample, BlurUpsample))]
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d) and m.affine]
    conv_nodes = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    norm_nodes = [n for n in model.graph.node if n.op_type == "InstanceNormalization"] if norms else []
    if len(conv_nodes) != len(convs) or len(norm_nodes) != len(norms):
        raise CheckpointError(f"{path}: its graph has {len(conv_nodes)} convolutions, the {spec.name} generator "
                              f"{len(convs)}; not a cyclegan-tool export of that architecture")
    names = {id(m): prefix for prefix, m in net.named_modules()}
    state: dict[str, torch.Tensor] = {}
    for module, node in [*zip(convs, conv_nodes), *zip(norms, norm_nodes)]:
        state[f"{names[id(module)]}.{'filt' if hasattr(module, 'filt') else 'weight'}"] = array(node.input[1])
        if len(node.input) > 2 and node.input[2] and getattr(module, "bias", None) is not None:
            state[f"{names[id(module)]}.bias"] = array(node.input[2])
    return state


def load_onnx_generator(path: Path) -> checkpoints.LoadedGenerator:
    """The generator of an FP32 ONNX file we exported, rebuilt in PyTorch (to export it again,
    e.g. as an int8 graph calibrated on the user's images)."""
    from cyclegan_tool.models import build_generator
    from cyclegan_tool.layout import load_into

    spec, state, meta = _onnx_weights(path)
    net = build_generator(spec)
    load_into(net, state, str(path))
    return checkpoints.LoadedGenerator(net=net.eval(), spec=spec, direction=meta.get("direction", "a2b"), source=path,
                                       source_sha256=sha256_file(path), origin="cyclegan-tool onnx")


def generator_weights(source: str, direction: str = "a2b") -> tuple[GeneratorSpec, dict[str, torch.Tensor]]:
    """(architecture, state_dict) of the generator in `source` (a path or a shipped model name)."""
    path = Path(source)
    if not path.exists() and path.suffix == "":
        from cyclegan_tool import zoo

        path = zoo.model_file(source)
    if path.suffix.lower() == ".onnx":
        spec, state, _ = _onnx_weights(path)
        return spec, state
    obj = checkpoints.read(path)
    if checkpoints.is_tool_checkpoint(obj):
        return checkpoints.generator_spec(obj, direction), obj["networks"][f"gen_{direction}"]
    state = strip_prefix(obj)
    return infer_generator_spec(state), state
