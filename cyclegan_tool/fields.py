"""`opt()`: a dataclass field carrying its CLI help, so options are generated from configs."""

from __future__ import annotations

from dataclasses import field


def opt(default, help: str, choices=None, runtime: bool = False, negatable: bool = False):
    """A config field with CLI help; `runtime` fields may change when a run is resumed;
    a `negatable` bool gets `--no-NAME` beside `--NAME` (for defaults that depend on others).

    `choices`: a tuple, or a registry (anything with `names()`), whose names are the choices
    at the time they are asked for, so a newly registered architecture is offered everywhere.
    """
    return field(default=default, metadata={"help": help, "choices": choices, "runtime": runtime,
                                            "negatable": negatable})


def choices_of(f) -> list[str] | None:
    """The choices of a config field (a registry's current names, or the fixed tuple)."""
    c = f.metadata.get("choices")
    if c is None:
        return None
    return list(c.names()) if hasattr(c, "names") else list(c)
