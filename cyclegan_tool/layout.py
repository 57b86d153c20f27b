"""The reference checkpoint layout at one boundary: infer a spec from state_dict keys,
drop legacy InstanceNorm running statistics, and explain a mismatch key by key. Reading a
layout needs no torch: tensors or numpy arrays (`pth_reader.py`) alike."""

from __future__ import annotations

import re

from cyclegan_tool.errors import CheckpointError
from cyclegan_tool.specs import DiscriminatorSpec, GeneratorSpec

_LEGACY_STAT = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")


# Third-party ResNet generators name the residual branch differently; same layers, same order.
_BLOCK_NAMES = re.compile(r"^(model\.\d+)\.(block|res_block|resblock|layers)\.")


def strip_prefix(state: dict) -> dict:
    """The reference key names: drop a `module.` prefix left by DataParallel/DDP wrappers, and
    rename a ResNet block's branch (`model.10.block.1.weight`) to the reference `conv_block`."""
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if any(_BLOCK_NAMES.match(k) for k in state):
        state = {_BLOCK_NAMES.sub(r"\1.conv_block.", k): v for k, v in state.items()}
    return state


def _norm_from_keys(state: dict) -> str:
    """batch: norm modules with 1-D weights; instance: convs with biases; none: neither."""
    modules = {k.rsplit(".", 1)[0] for k in state}
    for m in modules:
        w = state.get(f"{m}.weight")
        if w is not None and w.ndim == 1 and f"{m}.running_mean" in state:
            return "batch"
    if any(w.ndim == 1 and f"{m}.weight" in state for m in modules
           if (w := state.get(f"{m}.weight")) is not None):
        return "instance_affine"  # 1-D norm weights without running statistics
    # The first inner conv of every architecture carries a bias only with instance norm (model.3:
    # the anti-aliased PatchGAN's, after its first blur).
    for key in ("model.4.bias", "model.model.1.model.1.bias", "model.2.bias", "model.3.bias", "net.2.bias"):
        if key in state:
            return "instance"
    return "none"


def infer_generator_spec(state: dict) -> GeneratorSpec:
    """Read architecture, ngf, norm, dropout and channel counts off a generator state_dict."""
    state = strip_prefix(state)
    norm = _norm_from_keys(state)
    if "top.down.weight" in state:  # the seed's Keras U-Net (models/unet_keras.py)
        levels = 1 + max(k.count("inner.") for k in state)
        return GeneratorSpec(name=f"unet_keras_{2**levels}", input_nc=state["top.down.weight"].shape[1],
                             output_nc=state["top.up.weight"].shape[1], ngf=state["top.down.weight"].shape[0],
                             norm="batch")
    if "model.model.0.weight" in state:
        w = state["model.model.0.weight"]
        depth = 1 + max(k.count("model.") for k in state) - 2
        if depth < 5:
            raise CheckpointError(f"a U-Net with {depth} levels; at least 5 are needed")
        name = f"unet_{2**depth}"
        out_key = "model.model.3.weight"
        # U-Net dropout sits after the last layer and leaves no key: it cannot be read
        # back, and it is inactive at inference anyway.
        return GeneratorSpec(name=name, input_nc=w.shape[1], output_nc=state[out_key].shape[1],
                             ngf=w.shape[0], norm=norm)
    if "model.1.weight" in state:
        w = state["model.1.weight"]
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        if not blocks:
            raise CheckpointError("a ResNet-style generator without residual blocks ('model.N.conv_block.*' keys)")
        name = f"resnet_{len(blocks)}blocks"
        dropout = any(".conv_block.6.weight" in k and state[k].ndim == 4 for k in state)
        last = max(int(k.split(".")[1]) for k in state if re.match(r"model\.\d+\.weight$", k))
        blurs = [int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.filt$", k))]  # the CUT code's
        return GeneratorSpec(name=name, input_nc=w.shape[1], output_nc=state[f"model.{last}.weight"].shape[0],
                             ngf=w.shape[0], norm=norm, use_dropout=dropout,
                             antialias=any(i < min(blocks) for i in blurs),
                             antialias_up=any(i > max(blocks) for i in blurs))
    raise CheckpointError("not a known generator layout: a ResNet generator starts with 'model.1.weight', a "
                          "U-Net with 'model.model.0.weight'; this file's keys begin " + _first_keys(state))


def _first_keys(state: dict) -> str:
    keys = list(state)
    return ", ".join(f"'{k}'" for k in keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")


def infer_discriminator_spec(state: dict) -> DiscriminatorSpec:
    state = strip_prefix(state)
    norm = _norm_from_keys(state)
    if "net.0.weight" in state:
        w = state["net.0.weight"]
        return DiscriminatorSpec(name="pixel", input_nc=w.shape[1], ndf=w.shape[0], norm=norm)
    if "model.0.weight" in state:
        w = state["model.0.weight"]
        convs = [k for k in state if k.endswith(".weight") and state[k].ndim == 4]
        n_layers = len(convs) - 2
        name = "basic" if n_layers == 3 else "n_layers"
        return DiscriminatorSpec(name=name, input_nc=w.shape[1], ndf=w.shape[0], n_layers=n_layers, norm=norm,
                                 antialias=any(k.endswith(".filt") for k in state))
    raise CheckpointError("not a known discriminator layout: a PatchGAN starts with 'model.0.weight', a pixel "
                          "discriminator with 'net.0.weight'; this file's keys begin " + _first_keys(state))


def without_legacy_stats(state: dict, expected) -> dict:
    """`state` less the InstanceNorm running statistics old PyTorch versions saved, which the
    network (its keys: `expected`) does not hold."""
    return {k: v for k, v in state.items() if k in expected or not _LEGACY_STAT.search(k)}


def load_into(net, state: dict, what: str, *, assign: bool = False) -> None:
    """Load `state` into `net` strictly, after dropping legacy InstanceNorm statistics.
    `assign`: `net` was built on the meta device (no memory, no random initialisation): its
    tensors become `state`'s, in the dtypes `net` declares.

    Raises CheckpointError listing missing, unexpected and mis-shaped keys.
    """
    state = strip_prefix(dict(state))
    expected = net.state_dict()
    state = without_legacy_stats(state, expected)
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
    if assign:
        state = {k: v.to(dtype=expected[k].dtype) for k, v in state.items()}
    net.load_state_dict(state, strict=True, assign=assign)
