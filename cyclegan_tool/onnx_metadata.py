"""The one owner of the ONNX model metadata format: `metadata_props` entries `cyclegan_tool.KEY`
whose values are JSON (architecture, direction, precision, conventions, pad multiple, I/O,
source). Written by export, read by the ONNX Runtime backend, `info` and warm starts."""

from __future__ import annotations

import json
from pathlib import Path

from cyclegan_tool import __version__
from cyclegan_tool.errors import BackendError

META_PREFIX = "cyclegan_tool."


INPUT, OUTPUT = "input", "output"  # every exported graph's I/O names


def metadata_of(*, spec, direction: str, precision: str, source: Path, source_sha256: str, origin: str,
                epoch: int | None, norm_stats: str | None, value_range: tuple[float, float], pad_multiple: int,
                min_side: int) -> dict:
    """What every exported artifact says about itself (ONNX metadata_props, engine sidecars)."""
    from cyclegan_tool import conventions

    return {
        "format_version": 1,
        "tool_version": __version__,
        "generator": spec.to_dict(),
        "direction": direction,
        "conventions": conventions.describe(value_range),
        "pad_multiple": pad_multiple,
        "min_side": min_side,
        "precision": precision,
        "io": {"input": INPUT, "output": OUTPUT, "layout": "NCHW",
               "dtype": "float16" if precision == "fp16" else "float32"},
        "source": {"file": Path(source).name, "sha256": source_sha256, "origin": origin, "epoch": epoch},
        **({"norm_stats": norm_stats} if norm_stats else {}),
    }


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


def min_side_of(meta: dict) -> int:
    """The smallest H and W the model's generator runs at: its metadata's `min_side`; files
    exported before it was recorded rebuild the architecture to tell (which imports torch)."""
    if "min_side" in meta:
        return int(meta["min_side"])
    from cyclegan_tool.models import min_side
    from cyclegan_tool.specs import GeneratorSpec

    return min_side(GeneratorSpec.from_dict(meta["generator"]))


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


def _fields(data: bytes):
    """(field number, wire type, value) of a serialized protobuf message's top-level fields;
    length-delimited values as bytes."""
    import io

    f, end = io.BytesIO(data), len(data)
    while f.tell() < end:
        tag = _varint(f)
        wire = tag & 7
        if wire == 0:
            yield tag >> 3, wire, _varint(f)
        elif wire == 1:
            yield tag >> 3, wire, f.read(8)
        elif wire == 5:
            yield tag >> 3, wire, f.read(4)
        elif wire == 2:
            yield tag >> 3, wire, f.read(_varint(f))
        else:
            raise ValueError(f"wire type {wire}")


def _tensor_locations(tensor: bytes) -> list[str]:
    """The external data file a TensorProto names (`external_data` entry `location`), if any."""
    return [value for number, _, entry in _fields(tensor) if number == 13
            for k, value in [_entry(entry)] if k == "location"]


def _graph_locations(graph: bytes) -> list[str]:
    found = []
    for number, wire, value in _fields(graph):
        if wire != 2:
            continue
        if number == 5:  # initializer
            found += _tensor_locations(value)
        elif number == 15:  # sparse_initializer: values and indices are tensors
            found += [loc for n, w, t in _fields(value) if w == 2 and n in (1, 2) for loc in _tensor_locations(t)]
        elif number == 1:  # node: tensors and subgraphs in its attributes
            for n, w, attr in _fields(value):
                if n != 5 or w != 2:
                    continue
                for an, aw, av in _fields(attr):
                    if aw == 2 and an in (5, 10):  # t, tensors
                        found += _tensor_locations(av)
                    elif aw == 2 and an in (6, 11):  # g, graphs
                        found += _graph_locations(av)
    return found


def external_data_files(path: str | Path) -> list[Path]:
    """The files an ONNX model keeps its weights in besides itself (external data), in order of
    first mention, as paths beside the model. BackendError where the file is not readable ONNX."""
    path = Path(path)
    try:
        data = path.read_bytes()
        locations = [loc for number, wire, graph in _fields(data) if number == 7 and wire == 2
                     for loc in _graph_locations(graph)]
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as e:
        raise BackendError(f"{path}: not a readable ONNX file ({e or type(e).__name__})") from None
    return [path.parent / loc for loc in dict.fromkeys(locations)]


def require(meta: dict, path: Path) -> dict:
    """`meta` if it describes a generator, else a BackendError saying how to get such a file."""
    if "generator" not in meta:
        raise BackendError(f"{path}: no cyclegan-tool metadata in this ONNX file; export it with "
                           "`cyclegan-tool export` so the runtime knows its conventions")
    return meta


def describe_onnx(path: str | Path) -> dict:
    """What an ONNX model is (for `cyclegan-tool info`): our metadata, the opset and its operators."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except ImportError:
        raise BackendError("describing an ONNX model needs the 'onnx' package (pip install onnx)") from None
    except Exception as e:
        raise BackendError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0]})") from None
    if not model.graph.node or not model.opset_import:
        raise BackendError(f"{path}: not an ONNX model (empty, or it has no graph)")
    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"file": str(path), "kind": "ONNX model", "opset": model.opset_import[0].version,
            **read_metadata(model), "ops": ops}
