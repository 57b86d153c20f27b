"""The one owner of the ONNX model metadata format: `metadata_props` entries `cyclegan_tool.KEY`
whose values are JSON (architecture, direction, precision, conventions, pad multiple, I/O,
source). Written by export, read by the ONNX Runtime backend, `info` and warm starts."""

from __future__ import annotations

import json
from pathlib import Path

from cyclegan_tool import __version__
from cyclegan_tool.errors import BackendError

META_PREFIX = "cyclegan_tool."


def set_metadata(model, meta: dict) -> None:
    """Replace `model.metadata_props` (an onnx ModelProto) with `meta`."""
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key = META_PREFIX + key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    model.producer_name = "cyclegan-tool"
    model.producer_version = __version__


def from_map(props: dict[str, str]) -> dict:
    """Our keys of a {key: value} metadata map, prefix removed, JSON values decoded."""
    meta = {}
    for key, value in props.items():
        if key.startswith(META_PREFIX):
            try:
                meta[key[len(META_PREFIX):]] = json.loads(value)
            except json.JSONDecodeError:
                meta[key[len(META_PREFIX):]] = value
    return meta


def read_metadata(model) -> dict:
    """Our metadata of an onnx ModelProto."""
    return from_map({entry.key: entry.value for entry in model.metadata_props})


def require(meta: dict, path: Path) -> dict:
    """`meta` if it describes a generator, else a BackendError saying how to get such a file."""
    if "generator" not in meta:
        raise BackendError(f"{path}: no cyclegan-tool metadata in this ONNX file; export it with "
                           "`cyclegan-tool export` so the runtime knows its conventions")
    return meta
