"""Checkpoint files: our self-describing training checkpoints and the reference's
per-network `.pth` state_dicts. Everything is read with `weights_only=True`."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from cyclegan_tool.errors import CheckpointError, ConfigError
from cyclegan_tool.fileio import atomic_write, sha256_file
from cyclegan_tool.models import GeneratorSpec, build_generator
from cyclegan_tool.layout import infer_generator_spec, load_into, strip_prefix
from cyclegan_tool.pth_reader import reference_direction

FORMAT = "cyclegan-tool/checkpoint"
FORMAT_VERSION = 1
DIRECTIONS = ("a2b", "b2a")


def save(path: str | os.PathLike, payload: dict) -> Path:
    """torch.save `payload` atomically."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write(path, lambda f: f.write(buf.getbuffer()))


def read(path: str | os.PathLike) -> dict:
    """Load a checkpoint or state_dict file safely (`weights_only=True`) onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights only load failed" in first.lower():  # torch's advice to drop the safety check is not ours
            first = "not a PyTorch file of tensors, or it holds other objects, which are not loaded for safety"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict or checkpoint")
    return obj


def is_tool_checkpoint(obj: dict) -> bool:
    return obj.get("format") == FORMAT


# The networks a checkpoint of each model family holds (`--model`; FastCUT is CUT's networks).
_NETWORKS = {"cyclegan": ("gen_a2b", "gen_b2a", "disc_a", "disc_b"), "cut": ("gen_a2b", "disc_b", "head")}
FAMILY_OF = {"cyclegan": "cyclegan", "cut": "cut", "fastcut": "cut"}


def family_networks(model: str) -> tuple[str, ...]:
    return _NETWORKS[FAMILY_OF[model]]


def family(obj: dict) -> str:
    """A training checkpoint's model (`cyclegan`, `cut`, `fastcut`); files before CUT are CycleGAN's."""
    model = obj.get("model") or (obj.get("config") or {}).get("model") or "cyclegan"
    return model if model in FAMILY_OF else "cyclegan"


def directions(obj: dict) -> tuple[str, ...]:
    """The directions a training checkpoint has a generator for."""
    return DIRECTIONS if FAMILY_OF[family(obj)] == "cyclegan" else ("a2b",)


def check_direction(obj: dict, direction: str, path: str | os.PathLike) -> None:
    """A one-line error when a training checkpoint has no generator for `direction`."""
    if direction not in directions(obj):
        name = {"cut": "CUT", "fastcut": "FastCUT"}.get(family(obj), family(obj))
        raise ConfigError(f"{path}: a {name} checkpoint has one generator, a2b (its trainA -> trainB); "
                          f"there is no {direction} (train one with --direction b2a for that)")


def arch_entry(generator: GeneratorSpec, disc_b, disc_a=None) -> dict:
    """A checkpoint's `arch`: the A -> B generator and the discriminator of domain B (as version 1
    wrote them), plus the discriminator of domain A where there is one and its channels differ."""
    arch = {"generator": generator.to_dict(), "discriminator": disc_b.to_dict()}
    if disc_a is not None and disc_a != disc_b:
        arch["discriminator_a"] = disc_a.to_dict()
    return arch


def generator_spec(obj: dict, direction: str, path: str | os.PathLike = "checkpoint") -> GeneratorSpec:
    """The spec of a checkpoint's generator for `direction` (B -> A swaps the channels)."""
    check_direction(obj, direction, path)
    spec = GeneratorSpec.from_dict(obj["arch"]["generator"])
    return spec.reversed() if direction == "b2a" else spec


def check_complete(obj: dict, path: str | os.PathLike) -> dict:
    """A cyclegan-tool checkpoint with every part this version reads, else a CheckpointError
    naming what is missing (a truncated or hand-made file)."""
    missing = []
    required = {"arch": ("generator", "discriminator"), "networks": family_networks(family(obj))}
    for key, parts in required.items():
        if not isinstance(obj.get(key), dict):
            missing.append(key)
        else:
            missing += [f"{key}.{part}" for part in parts if part not in obj[key]]
    if missing:
        raise CheckpointError(f"{path}: a cyclegan-tool checkpoint without {', '.join(missing)}; it is incomplete "
                              "or was not written by cyclegan-tool")
    return obj


@dataclass(frozen=True, kw_only=True)
class LoadedGenerator:
    """A generator ready for inference, with where it came from."""

    net: nn.Module
    spec: GeneratorSpec
    direction: str
    source: Path
    source_sha256: str
    origin: str  # "cyclegan-tool" or "reference"
    epoch: int | None = None
    norm_stats: str | None = None  # batch-norm generators: "running" or "batch" (models/norm_stats.py)


def in_folder(folder: Path, direction: str | None = None) -> Path:
    """The checkpoint a training run's folder stands for: our `latest.pt`, else the reference's
    latest generator for `direction` (`latest_net_G_A.pth` a2b, `latest_net_G_B.pth` b2a), else
    its single `latest_net_G.pth` (as the published pretrained models are downloaded)."""
    reference = {"a2b": ["latest_net_G_A.pth"], "b2a": ["latest_net_G_B.pth"]}.get(
        direction or "", ["latest_net_G_A.pth", "latest_net_G_B.pth"])
    names = ["latest.pt", *reference, "latest_net_G.pth"]
    found = next((folder / n for n in names if (folder / n).is_file()), None)
    if found is None:
        raise CheckpointError(f"{folder}: a folder without a generator checkpoint (looked for {', '.join(names)})")
    return found


def load_generator(path: str | os.PathLike, *, direction: str | None = None,
                   spec: GeneratorSpec | None = None, norm_stats: str = "auto") -> LoadedGenerator:
    """Load one generator, in eval mode on the CPU, from any supported file.

    Our checkpoints hold both directions (`direction` picks one, default a2b). A reference
    `*_net_G_A.pth` is a2b, `*_net_G_B.pth` b2a, `latest_net_G.pth` whatever `direction`
    says. The architecture is read off the file; `spec` overrides it for plain state_dicts.
    `norm_stats`: how batch norms normalise: "batch" (and "auto") with each image's own statistics,
    as the reference's test.py does unless given --eval (models/norm_stats.py); "running" with the
    running statistics (test.py --eval).
    """
    from cyclegan_tool.models.norm_stats import has_batch_norm, use_batch_statistics
    from cyclegan_tool.specs import NORM_STATS

    if norm_stats not in NORM_STATS:
        raise ConfigError(f"--norm-stats must be one of {', '.join(NORM_STATS)}, not '{norm_stats}'")
    path = Path(path)
    if direction is not None and direction not in DIRECTIONS:
        raise ConfigError(f"direction must be one of {DIRECTIONS}, not '{direction}'")
    obj = read(path)
    if is_tool_checkpoint(obj):
        check_complete(obj, path)
        direction = direction or "a2b"
        spec = generator_spec(obj, direction, path)
        state = obj["networks"][f"gen_{direction}"]
        origin, epoch = "cyclegan-tool", obj.get("epoch")
    else:
        state = strip_prefix(obj)
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path}: neither a cyclegan-tool checkpoint nor a plain state_dict")
        spec = spec or generator_spec_of(path, state)
        direction = reference_direction(path, direction)
        origin, epoch = "reference", None
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
           and not torch.isfinite(v).all()]
    if bad:
        more = " and more" if len(bad) > 1 else ""
        raise CheckpointError(f"{path}: its weights hold NaN or infinite values ({bad[0]}{more}; from a run that "
                              "diverged?), so it cannot translate")
    with torch.device("meta"):  # built without memory or random initialisation: the file fills it
        net = build_generator(spec)
    load_into(net, state, f"{path}", assign=True)
    if any(t.is_meta for t in (*net.parameters(), *net.buffers())):  # a tensor the file does not hold
        net = build_generator(spec)
        load_into(net, state, f"{path}")
    net.eval()
    resolved = None
    if has_batch_norm(net):
        resolved = "running" if norm_stats == "running" else "batch"
        if resolved == "batch":
            use_batch_statistics(net)
    return LoadedGenerator(net=net, spec=spec, direction=direction, source=path, source_sha256=sha256_file(path),
                           origin=origin, epoch=epoch, norm_stats=resolved)


def generator_spec_of(path: Path, state: dict) -> GeneratorSpec:
    """The generator architecture of a plain state_dict; a discriminator's file (the reference
    saves them beside the generators) or any other layout is a one-line error naming `path`."""
    from cyclegan_tool.layout import infer_discriminator_spec

    try:
        return infer_generator_spec(state)
    except CheckpointError as gen_error:
        try:
            disc = infer_discriminator_spec(state)
        except CheckpointError:
            raise CheckpointError(f"{path}: {gen_error}") from None
        sibling = path.with_name(path.name.replace("_net_D", "_net_G"))
        hint = f" ({sibling.name} is beside it)" if sibling != path and sibling.is_file() else ""
        raise CheckpointError(f"{path}: a discriminator's weights ({disc.name}, reference layout), not a generator's; "
                              f"give the generator's file, e.g. latest_net_G_A.pth{hint}") from None


def describe(path: str | os.PathLike) -> dict:
    """What a checkpoint is, as a JSON-able dict (for `cyclegan-tool info`)."""
    path = Path(path)
    obj = read(path)
    if is_tool_checkpoint(obj):
        check_complete(obj, path)
        return {
            "file": str(path),
            "kind": "cyclegan-tool training checkpoint",
            "model": family(obj),
            "directions": "/".join(directions(obj)),
            "format_version": obj.get("format_version"),
            "tool_version": obj.get("tool_version"),
            "epoch": obj.get("epoch"),
            "step": obj.get("step"),
            "generator": obj["arch"]["generator"],
            "discriminator": obj["arch"]["discriminator"],
            "conventions": obj.get("conventions"),
            **({"averaged_from": ", ".join(f"{a['file']} (epoch {a['epoch']})" for a in obj["averaged_from"])}
               if obj.get("averaged_from") else {}),
            "config": obj.get("config"),
        }
    state = strip_prefix(obj)
    from cyclegan_tool.layout import infer_discriminator_spec

    try:
        arch, role = infer_generator_spec(state).to_dict(), "generator"
    except CheckpointError as gen_error:
        try:
            arch, role = infer_discriminator_spec(state).to_dict(), "discriminator"
        except CheckpointError:
            raise CheckpointError(f"{path}: {gen_error}") from None
    params = sum(v.numel() for k, v in state.items() if v.is_floating_point() and "running" not in k)
    return {"file": str(path), "kind": f"plain state_dict ({role}, reference layout)",
            role: arch, "parameters": params}


def average_generators(paths: list[Path]) -> dict:
    """A checkpoint whose generators (two, or CUT's one) are the mean of those in `paths` (one architecture):
    the discriminators and the rest come from the first, the sources are listed in
    `averaged_from`, and the optimiser state is left out (it is for inference and export,
    or `--init-from`, not `--resume`)."""
    objs = [check_complete(read(p), p) for p in paths]
    base = objs[0]
    for p, obj in zip(paths[1:], objs[1:]):
        if obj["arch"] != base["arch"]:
            raise CheckpointError(f"{p}: a different architecture from {paths[0]}; only one lineage can be averaged")
    out = {k: v for k, v in base.items() if k not in ("optimizers", "schedulers", "scalers", "pools")}
    out["networks"] = dict(base["networks"])
    for net in (f"gen_{direction}" for direction in directions(base)):
        out["networks"][net] = {
            key: (sum(o["networks"][net][key].double() for o in objs).div(len(objs)).to(value.dtype)
                  if value.is_floating_point() else value)
            for key, value in base["networks"][net].items()}
    out["averaged_from"] = [{"file": p.name, "epoch": o.get("epoch"), "step": o.get("step")}
                            for p, o in zip(paths, objs)]
    return out
