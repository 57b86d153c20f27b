"""The reference checkpoint layout at one boundary: infer a spec from state_dict keys,
drop legacy InstanceNorm running statistics, and explain a mismatch key by key."""

from __future__ import annotations

import re

import torch
import torch.nn as nn

from cyclegan_tool.errors import CheckpointError
from cyclegan_tool.models.specs import DiscriminatorSpec, GeneratorSpec

_LEGACY_STAT = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove a `module.` prefix left by DataParallel/DDP wrappers."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _norm_from_keys(state: dict[str, torch.Tensor]) -> str:
    """batch: norm modules with 1-D weights; instance: convs with biases; none: neither."""
    modules = {k.rsplit(".", 1)[0] for k in state}
    for m in modules:
        w = state.get(f"{m}.weight")
        if w is not None and w.dim() == 1 and f"{m}.running_mean" in state:
            return "batch"
    # The first inner conv of every architecture carries a bias only with instance norm.
    for key in ("model.4.bias", "model.model.1.model.1.bias", "model.2.bias", "net.2.bias"):
        if key in state:
            return "instance"
    return "none"


def infer_generator_spec(state: dict[str, torch.Tensor]) -> GeneratorSpec:
    """Read architecture, ngf, norm, dropout and channel counts off a generator state_dict."""
    state = strip_prefix(state)
    norm = _norm_from_keys(state)
    if "model.model.0.weight" in state:
        w = state["model.model.0.weight"]
        depth = 1 + max(k.count("model.") for k in state) - 2
        name = {7: "unet_128", 8: "unet_256"}.get(depth)
        if name is None:
            raise CheckpointError(f"U-Net with {depth} levels is not a known generator")
        out_key = "model.model.3.weight"
        # U-Net dropout sits after the last layer and leaves no key: it cannot be read
        # back, and it is inactive at inference anyway.
        return GeneratorSpec(name=name, input_nc=w.shape[1], output_nc=state[out_key].shape[1],
                             ngf=w.shape[0], norm=norm)
    if "model.1.weight" in state:
        w = state["model.1.weight"]
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        name = {6: "resnet_6blocks", 9: "resnet_9blocks"}.get(len(blocks))
        if name is None:
            raise CheckpointError(f"ResNet generator with {len(blocks)} blocks is not a known generator")
        dropout = any(".conv_block.6.weight" in k and state[k].dim() == 4 for k in state)
        last = max(int(k.split(".")[1]) for k in state if re.match(r"model\.\d+\.weight$", k))
        return GeneratorSpec(name=name, input_nc=w.shape[1], output_nc=state[f"model.{last}.weight"].shape[0],
                             ngf=w.shape[0], norm=norm, use_dropout=dropout)
    raise CheckpointError("the weights are not a known generator layout (no 'model.1.weight' "
                          "or 'model.model.0.weight' key)")


def infer_discriminator_spec(state: dict[str, torch.Tensor]) -> DiscriminatorSpec:
    state = strip_prefix(state)
    norm = _norm_from_keys(state)
    if "net.0.weight" in state:
        w = state["net.0.weight"]
        return DiscriminatorSpec(name="pixel", input_nc=w.shape[1], ndf=w.shape[0], norm=norm)
    if "model.0.weight" in state:
        w = state["model.0.weight"]
        convs = [k for k in state if k.endswith(".weight") and state[k].dim() == 4]
        n_layers = len(convs) - 2
        name = "basic" if n_layers == 3 else "n_layers"
        return DiscriminatorSpec(name=name, input_nc=w.shape[1], ndf=w.shape[0], n_layers=n_layers, norm=norm)
    raise CheckpointError("the weights are not a known discriminator layout")


def load_into(net: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load `state` into `net` strictly, after dropping legacy InstanceNorm statistics.

    Raises CheckpointError listing missing, unexpected and mis-shaped keys.
    """
    state = strip_prefix(dict(state))
    expected = net.state_dict()
    state = {k: v for k, v in state.items() if k in expected or not _LEGACY_STAT.search(k)}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if keys:
                more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
                parts.append(f"{label}: {', '.join(keys[:3])}{more}")
        raise CheckpointError(f"{what} does not fit the architecture; " + "; ".join(parts))
    net.load_state_dict(state, strict=True)
