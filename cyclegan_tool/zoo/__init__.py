"""Models shipped inside the package: `cyclegan-tool convert --model horse2zebra IN OUT`.

`models.json` lists each model (file, direction, what it does, its model card, and where one
was made, its int8 form for CPUs: `export --int8` calibrated on the training images); the
ONNX files sit next to it and carry their own metadata like any exported model.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from cyclegan_tool.errors import ConfigError

HERE = Path(__file__).resolve().parent


def catalogue() -> dict[str, dict]:
    return json.loads((HERE / "models.json").read_text())


def model_file(name: str) -> Path:
    """The ONNX file of shipped model `name`."""
    models = catalogue()
    if name not in models:
        close = difflib.get_close_matches(name, models, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"no shipped model '{name}'{hint}; `cyclegan-tool models` lists them")
    path = HERE / models[name]["file"]
    if not path.is_file():
        raise ConfigError(f"model '{name}' is listed but {path.name} is missing from this install")
    return path


def int8_file(name: str) -> Path | None:
    """The calibrated int8 form of shipped model `name` (for CPUs), if it has one."""
    entry = catalogue().get(name, {})
    path = HERE / entry["int8"] if entry.get("int8") else None
    return path if path and path.is_file() else None
