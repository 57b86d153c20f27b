"""`opt()`: a dataclass field carrying its CLI help, so options are generated from configs."""

from __future__ import annotations

from dataclasses import field


def opt(default, help: str, choices: tuple | None = None, runtime: bool = False):
    """A config field with CLI help; `runtime` fields may change when a run is resumed."""
    return field(default=default, metadata={"help": help, "choices": choices, "runtime": runtime})
