"""The JSON sidecar next to every engine (`h2z.plan.json`): what the plan expects and
how it was built. The runtime reads it and never guesses."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from cyclegan_tool import __version__
from cyclegan_tool.errors import BackendError
from cyclegan_tool.fileio import atomic_write_json

FORMAT = "cyclegan-tool/engine"
FORMAT_VERSION = 1


def path_for(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


def current_gpu() -> dict | None:
    """The CUDA GPU this process sees (name, compute capability), or None."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability()
        return {"name": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}"}
    except Exception:
        return None


def make(*, meta: dict, lib, io: dict, profile: dict, targets: list[str], gpu: dict | None,
         onnx_sha256: str, plan_sha256: str, build_seconds: float, workspace_mib: int) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "built_at": datetime.now(timezone.utc).isoformat(),
        "library": {"name": lib.name, "key": lib.key, "version": lib.version},
        "target_compute_capabilities": targets,
        "built_on_gpu": gpu,
        "generator": meta["generator"],
        "direction": meta["direction"],
        "precision": meta["precision"],
        "io": {**io, "layout": "NCHW"},
        "conventions": meta["conventions"],
        "pad_multiple": meta["pad_multiple"],
        "profile": profile,
        "workspace_mib": workspace_mib,
        "source": {**meta["source"], "onnx_sha256": onnx_sha256},
        "plan_sha256": plan_sha256,
        "build_seconds": build_seconds,
    }


def limits(info: dict) -> dict:
    """What an engine accepts, from its sidecar: batch range, (H, W) range, input dtype, layout
    (the keyword arguments of `runtime.base.ModelInfo` that describe limits)."""
    prof = info["profile"]
    return {"min_batch": int(prof["min"][0]), "max_batch": int(prof["max"][0]),
            "min_hw": (int(prof["min"][2]), int(prof["min"][3])), "max_hw": (int(prof["max"][2]), int(prof["max"][3])),
            "input_dtype": info["io"]["dtype"], "layout": info["io"].get("layout", "NCHW")}


def write(plan: Path, info: dict) -> Path:
    return atomic_write_json(path_for(plan), info)


def read(plan: Path) -> dict:
    side = path_for(plan)
    if not side.is_file():
        raise BackendError(f"{plan}: its sidecar {side.name} is missing; an engine is only usable with the "
                           "sidecar that `cyclegan-tool export` writes next to it")
    try:
        info = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BackendError(f"{side}: unreadable sidecar ({e})") from None
    if info.get("format") != FORMAT:
        raise BackendError(f"{side}: not a cyclegan-tool engine sidecar")
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise BackendError(f"{side}: written by a newer cyclegan-tool (format {info['format_version']})")
    return info


def describe_engine(path: Path) -> dict:
    plan = path if path.suffix != ".json" else path.with_suffix("")
    info = read(plan)
    return {"file": str(plan), "kind": f"TensorRT engine ({info['library']['name']} {info['library']['version']})",
            **{k: v for k, v in info.items() if k not in ("format",)}}
