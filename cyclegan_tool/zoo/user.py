"""A user's own models by name: `cyclegan-tool models add NAME FILE` and `models remove NAME`.

`add` checks the file is a model the tool runs (a training checkpoint, a reference `.pth`, an
ONNX file we exported, an engine with its sidecar), then copies it (or, with `link=True`, links
it) into the user's model folder (zoo/settings.py) as NAME plus its suffix, beside a record
`NAME.json`: where it came from, its kind and description, its SHA-256, when it was added. The
model then appears in `cyclegan-tool models`, the GUI's list and `--model NAME` everywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from cyclegan_tool.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SUFFIXES = (".pt", ".pth", ".onnx", ".plan", ".engine")


def folder() -> Path:
    from cyclegan_tool.zoo.settings import user_models_dir

    return user_models_dir()


def entries() -> dict[str, dict]:
    """The user's models by name (records that are unreadable or lost their file are left out)."""
    found = {}
    root = folder()
    if not root.is_dir():
        return found
    for record in sorted(root.glob("*.json")):
        try:
            e = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(e, dict) and isinstance(e.get("file"), str) and (root / e["file"]).exists():
            found[record.stem] = {**e, "source": "user"}
    return found


def file_of(name: str, e: dict) -> Path:
    path = folder() / e["file"]
    if not path.exists():
        raise ConfigError(f"model '{name}': its file {path} is gone (`cyclegan-tool models remove {name}`)")
    return path.resolve() if path.is_symlink() else path


def add(name: str, source: str | os.PathLike, *, link: bool = False, summary: str = "") -> dict:
    """Add `source` as model `name`; returns its catalogue entry."""
    from cyclegan_tool.describe import describe_artifact
    from cyclegan_tool.fileio import atomic_write, atomic_write_json, sha256_file
    from cyclegan_tool.zoo import _packaged

    src = Path(source)
    if not NAME.fullmatch(name):
        raise ConfigError(f"'{name}': a model name is letters, digits, '_', '.' and '-' (at most 64, no path)")
    if name in _packaged():
        raise ConfigError(f"'{name}' is a shipped or published model's name; choose another")
    if src.is_dir():
        from cyclegan_tool import checkpoints

        src = checkpoints.in_folder(src)
    if not src.is_file():
        raise ConfigError(f"{src}: no such file")
    if src.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{src}: not a model file ({', '.join(SUFFIXES)})")
    desc = describe_artifact(str(src))  # a one-line error for anything the tool cannot run
    root = folder()
    dest = root / f"{name}{src.suffix.lower()}"
    record = root / f"{name}.json"
    if record.exists():
        raise ConfigError(f"a model named '{name}' exists already (`cyclegan-tool models remove {name}` first)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        if link:
            dest.unlink(missing_ok=True)
            dest.symlink_to(src.resolve())
        else:
            with open(src, "rb") as f:
                atomic_write(dest, lambda out: shutil.copyfileobj(f, out, 1 << 20))
        if src.suffix.lower() in (".plan", ".engine"):  # an engine runs only with its sidecar
            side = src.with_name(src.name + ".json")
            if not side.is_file():
                raise ConfigError(f"{src}: its sidecar {side.name} is missing")
            shutil.copyfile(side, dest.with_name(dest.name + ".json"))
        gen = desc.get("generator") or {}
        e = {"file": dest.name, "kind": desc.get("kind", "?"), "added_from": str(src.resolve()), "linked": link,
             "sha256": sha256_file(src), "added": time.strftime("%Y-%m-%d %H:%M:%S"),
             "direction": desc.get("direction", "a2b"),
             "arch": f"{gen.get('name', '?')} ngf={gen.get('ngf', '?')}", "precision": desc.get("precision", "fp32"),
             "summary": summary or f"your model, added from {src.name}"}
        atomic_write_json(record, e)
    except OSError as err:
        dest.unlink(missing_ok=True)
        raise ConfigError(f"cannot add '{name}' to {root}: {err.strerror or err}") from None
    return {**e, "source": "user"}


def remove(name: str) -> Path:
    """Remove a user's model (or a downloaded published model's file, which can be fetched again);
    returns the file removed."""
    from cyclegan_tool.zoo import _packaged, downloaded_path, unknown

    packaged = _packaged()
    if name in packaged:
        e = packaged[name]
        if e["source"] != "published":
            raise ConfigError(f"'{name}' ships with the tool and cannot be removed")
        path = downloaded_path(name, e)
        if not path.is_file():
            raise ConfigError(f"'{name}' is not downloaded; nothing to remove")
        path.unlink()
        path.with_name(path.name + ".json").unlink(missing_ok=True)
        return path
    e = entries().get(name)
    if e is None:
        raise unknown(name, {**packaged, **entries()})
    path = folder() / e["file"]
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".json").unlink(missing_ok=True)  # an engine's sidecar
    (folder() / f"{name}.json").unlink(missing_ok=True)
    return path
