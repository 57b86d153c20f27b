"""Which files make up a model, and the content digest that names it in every cache.

An ONNX model is its `.onnx` file and the external data files it names; an engine is its plan
and its JSON sidecar; a checkpoint is its one file. `digest(path)` hashes all of them, so
replacing any one (weights beside an ONNX graph included) gives a new name, and two different
files at the same path, or at different paths with equal sizes and times, never share one.
"""

from __future__ import annotations

import os
from pathlib import Path

from cyclegan_tool.cache import digest_files, entry_digest
from cyclegan_tool.errors import BackendError


def files_of(path: str | os.PathLike) -> list[Path]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from cyclegan_tool.onnx_metadata import external_data_files

        extra = external_data_files(path)
        missing = [p for p in extra if not p.is_file()]
        if missing:
            raise BackendError(f"{path}: its external data file {missing[0].name} is missing (it must sit beside "
                               "the .onnx file)")
        return [path, *extra]
    if suffix in (".plan", ".engine"):
        side = path.with_name(path.name + ".json")
        return [path, side] if side.is_file() else [path]
    return [path]


def digest(path: str | os.PathLike) -> str:
    """SHA-256 over the contents of every file of the model at `path`. A form the tool made into
    its cache is one file, named by the SHA-256 its cache record holds (`cache.entry_digest`):
    an 80 MB Winograd form is then neither read nor parsed for external data on every run."""
    return entry_digest(path) or digest_files(files_of(path))
