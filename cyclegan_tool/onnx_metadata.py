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


def _varint(f) -> int:
    shift = value = 0
    while True:
        byte = f.read(1)
        if not byte:
            raise EOFError
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _entry(data: bytes) -> tuple[str, str]:
    """A serialized StringStringEntryProto (key = field 1, value = field 2)."""
    import io

    f, fields = io.BytesIO(data), {}
    while f.tell() < len(data):
        tag = _varint(f)
        if tag & 7 != 2:
            raise ValueError("unexpected field in a metadata entry")
        fields[tag >> 3] = f.read(_varint(f)).decode("utf-8")
    return fields.get(1, ""), fields.get(2, "")


def read_metadata_file(path: str | Path) -> dict:
    """Our metadata of an ONNX file, read without parsing its graph: the top-level fields of the
    ModelProto are walked and all but `metadata_props` (field 14) skipped by their length (a
    ResNet-9 file: ~1 ms instead of ~90 ms to parse it all). BackendError where the file is not
    a readable ONNX model."""
    props = {}
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            while f.tell() < size:
                tag = _varint(f)
                wire = tag & 7
                if wire == 0:
                    _varint(f)
                elif wire == 1:
                    f.seek(8, 1)
                elif wire == 5:
                    f.seek(4, 1)
                elif wire == 2:
                    length = _varint(f)
                    if tag >> 3 == 14:
                        key, value = _entry(f.read(length))
                        props[key] = value
                    else:
                        f.seek(length, 1)
                else:
                    raise ValueError(f"wire type {wire}")
            if f.tell() != size:
                raise ValueError("truncated")
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as e:
        raise BackendError(f"{path}: not a readable ONNX file ({e or type(e).__name__})") from None
    return from_map(props)


def require(meta: dict, path: Path) -> dict:
    """`meta` if it describes a generator, else a BackendError saying how to get such a file."""
    if "generator" not in meta:
        raise BackendError(f"{path}: no cyclegan-tool metadata in this ONNX file; export it with "
                           "`cyclegan-tool export` so the runtime knows its conventions")
    return meta
