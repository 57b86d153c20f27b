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
        "min_side": meta.get("min_side", 8),
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


def _is_shape(v) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                       for d in v)


# What every field this version reads must be: (test, what it should be).
_FIELDS = {
    "format_version": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "library": (lambda v: isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("name", "key", "version")),
                "an object with name, key and version"),
    "generator": (lambda v: isinstance(v, dict) and isinstance(v.get("name"), str), "an architecture object"),
    "direction": (lambda v: v in ("a2b", "b2a"), "a2b or b2a"),
    "precision": (lambda v: v in ("fp16", "fp32"), "fp16 or fp32"),
    "io": (lambda v: isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("input", "output"))
           and v.get("dtype") in ("float16", "float32"), "an object with input, output and dtype"),
    "pad_multiple": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive whole number"),
    "profile": (lambda v: isinstance(v, dict) and all(_is_shape(v.get(k)) for k in ("min", "opt", "max")),
                "min, opt and max shapes of 4 positive numbers"),
    "target_compute_capabilities": (lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
                                    "a list of strings"),
}


def read(plan: Path) -> dict:
    """The sidecar of `plan`, checked field by field: a missing, unreadable or malformed one is a
    one-line BackendError naming the sidecar and the field."""
    side = path_for(plan)
    if not side.is_file():
        raise BackendError(f"{plan}: its sidecar {side.name} is missing; an engine is only usable with the "
                           "sidecar that `cyclegan-tool export` writes next to it")
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BackendError(f"{side}: unreadable sidecar ({str(e).splitlines()[0]})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise BackendError(f"{side}: not a cyclegan-tool engine sidecar")
    for name, (ok, what) in _FIELDS.items():
        value = info.get(name, [] if name == "target_compute_capabilities" else None)
        if not ok(value):
            raise BackendError(f"{side}: malformed sidecar: '{name}' should be {what}, not {json.dumps(value)[:60]}")
    if info["format_version"] > FORMAT_VERSION:
        raise BackendError(f"{side}: written by a newer cyclegan-tool (format {info['format_version']})")
    if info.get("conventions") is not None and not isinstance(info["conventions"], dict):
        raise BackendError(f"{side}: malformed sidecar: 'conventions' should be an object")
    return info


def describe_engine(path: Path) -> dict:
    plan = path if path.suffix != ".json" else path.with_suffix("")
    info = read(plan)
    return {"file": str(plan), "kind": f"TensorRT engine ({info['library']['name']} {info['library']['version']})",
            **{k: v for k, v in info.items() if k not in ("format",)}}
