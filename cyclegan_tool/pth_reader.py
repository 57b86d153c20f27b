"""Plain PyTorch state_dict files read without torch: a reference `latest_net_G.pth` as a dict
of numpy arrays, for the first run of a checkpoint whose ONNX graph `export/direct.py` writes
(importing torch costs more than the rest of that run's set-up).

The file is the zip archive `torch.save` writes (`NAME/data.pkl`, the tensors' storages as
`NAME/data/KEY`). Its pickle is read by an unpickler that knows five names: `OrderedDict`,
`torch._utils._rebuild_tensor_v2` and the float32, float64 and int64 storages; any other name (a
class, a function, a legacy or non-zip file, a nested training checkpoint) makes `read_state_dict`
return None and the caller reads the file with torch (`weights_only=True`), which says precisely
what is wrong with it. So nothing is ever built from the file but tensors and dicts.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from cyclegan_tool.errors import ConfigError

_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64}


class _Unsupported(Exception):
    """Something torch alone can read (or refuse with the right words)."""


class _Storage:
    def __init__(self, dtype):
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, np.ndarray):
        raise _Unsupported("a tensor without its storage")
    item = storage.itemsize
    if offset + sum((n - 1) * s for n, s in zip(size, stride) if n) + 1 > storage.size and storage.size:
        raise _Unsupported("a tensor past its storage")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride))
    return np.array(view)


class _Reader(pickle.Unpickler):
    def __init__(self, data, archive: zipfile.ZipFile, prefix: str):
        import io

        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGES:
            return _Storage(_STORAGES[name])
        raise _Unsupported(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise _Unsupported("an unknown persistent id")
        dtype, key = pid[1].dtype, str(pid[2])
        try:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
        except KeyError:
            raise _Unsupported(f"storage {key} is missing") from None
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The file's flat dict of tensors as numpy arrays, or None for anything else (torch reads it)."""
    try:
        with zipfile.ZipFile(Path(path)) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                return None
            prefix = pickles[0].split("/")[0]
            order = archive.read(f"{prefix}/byteorder").decode().strip() if f"{prefix}/byteorder" in archive.namelist() \
                else "little"
            if order != "little":
                return None
            obj = _Reader(archive.read(pickles[0]), archive, prefix).load()
    except (_Unsupported, zipfile.BadZipFile, pickle.UnpicklingError, OSError, ValueError, TypeError, EOFError,
            KeyError, AttributeError, IndexError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, np.ndarray)
                                                       for k, v in obj.items()):
        return None
    return dict(obj)


def reference_direction(path: Path, direction: str | None) -> str:
    """A reference generator file's direction, from its name (G_A is a2b, G_B b2a); asking a
    G_A/G_B file for the other direction is a one-line error naming its sibling."""
    stem = path.stem
    own = "a2b" if stem.endswith("net_G_A") else "b2a" if stem.endswith("net_G_B") else None
    if own is None:
        return direction or "a2b"
    if direction and direction != own:
        sibling = path.with_name(path.name.replace("net_G_A", "net_G_X").replace("net_G_B", "net_G_A")
                                 .replace("net_G_X", "net_G_B"))
        raise ConfigError(f"{path} is the reference's {'G_A' if own == 'a2b' else 'G_B'} ({own}); for {direction} give "
                          f"{sibling.name}{' beside it' if sibling.is_file() else ''}")
    return own
