"""The GUI's state and logic, free of Qt: what to convert, with which model, where to, and
how. The window only shows this state and calls these functions, so it is tested without Qt.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from cyclegan_tool.errors import ConfigError, CycleGANError
from cyclegan_tool.imageio import is_image_name
from cyclegan_tool.videoio import is_video_name
from cyclegan_tool.runtime import ConvertOptions, Progress, Summary
from cyclegan_tool.runtime.jobs import Job

MODEL_SUFFIXES = (".plan", ".engine", ".onnx", ".pt", ".pth")
SIZE_POLICIES = ("native", "shorter side", "max side")
SETTINGS_KEYS = ("model", "output", "format", "quality", "suffix", "size_policy", "size_value", "tile",
                 "tile_size", "skip_existing", "backend")


@dataclass
class GuiState:
    inputs: list[Path] = field(default_factory=list)
    model: str = ""
    output: str = ""
    backend: str = "auto"
    format: str = "keep"
    quality: int = 95
    suffix: str = ""
    size_policy: str = "native"
    size_value: int = 512
    tile: bool = False
    tile_size: int = 512
    skip_existing: bool = False

    def add_paths(self, paths: list[str | os.PathLike]) -> int:
        """Add image files and folders (others are ignored); returns how many were added."""
        added = 0
        for p in map(Path, paths):
            if (p.is_dir() or (p.is_file() and (is_image_name(p) or is_video_name(p)))) and p not in self.inputs:
                self.inputs.append(p)
                added += 1
        return added

    def options(self) -> ConvertOptions:
        size = self.size_value if self.size_policy == "shorter side" else None
        max_side = self.size_value if self.size_policy == "max side" else None
        return ConvertOptions(format=self.format, quality=self.quality, suffix=self.suffix, size=size,
                              max_side=max_side, tile=self.tile_size if self.tile else None,
                              skip_existing=self.skip_existing).validate()

    def require(self) -> None:
        if not self.inputs:
            raise ConfigError("add images or folders first")
        if not self.model:
            raise ConfigError("choose a model (a shipped one, or a .plan, .onnx, .pt or .pth file)")
        if not self.output:
            raise ConfigError("choose an output folder")

    def jobs(self) -> list[Job]:
        """Every file to convert: a folder input lands in OUTPUT/<folder name>/, a file in OUTPUT/
        (`api.plan_convert`: what `convert` will do, planned once before the run)."""
        from cyclegan_tool.api import plan_convert

        self.require()
        return plan_convert(self.inputs, self.output, model=self.model, options=self.options(), nest_folders=True)

    def to_settings(self) -> dict:
        d = asdict(self)
        return {k: d[k] for k in SETTINGS_KEYS}

    def with_settings(self, settings: dict) -> GuiState:
        """A copy with known keys from `settings` applied (wrong types are ignored)."""
        known = {f.name: f for f in fields(self)}
        values = {}
        for key in SETTINGS_KEYS:
            if key in settings and settings[key] is not None:
                current = getattr(self, key)
                try:
                    value = type(current)(settings[key]) if not isinstance(current, bool) else \
                        str(settings[key]).lower() in ("1", "true", "yes")
                except (TypeError, ValueError):
                    continue
                if key in known:
                    values[key] = value
        return replace(self, **values)


def describe(model: str, backend: str = "auto") -> tuple[str, str]:
    """(what the model is: architecture, direction, precision; how it will run: backend,
    device, scale), from one `api.describe_model`."""
    from cyclegan_tool.api import describe_model

    d = describe_model(model, backend=backend)
    return d["what"], d["how"]


def run(state: GuiState, cancel: threading.Event,
        on_start: Callable[[str], None] | None = None) -> Iterator[Progress | Summary]:
    """The conversion the window starts, as events: `cyclegan_tool.convert_events`, as the CLI;
    `on_start` gets the CLI's start line (which backend runs, and why)."""
    from cyclegan_tool.api import convert_events

    state.require()
    yield from convert_events(state.inputs, state.output, model=state.model, options=state.options(),
                              backend=state.backend, cancel=cancel, nest_folders=True, on_start=on_start)


def error_text(e: BaseException) -> tuple[str, str]:
    """(short message, details) for an error dialog."""
    import traceback

    short = str(e) if isinstance(e, CycleGANError) else f"{type(e).__name__}: {e}"
    return short, "".join(traceback.format_exception(e))
