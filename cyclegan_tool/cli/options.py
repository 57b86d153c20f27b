"""Click options generated from a frozen config dataclass (help and choices in field metadata)."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields

import click

from cyclegan_tool.fields import choices_of

# CLI spellings users of the reference know, where they differ from `--field-name`.
SPELLINGS = {"netG": "--netG", "netD": "--netD", "n_layers_D": "--n-layers-D"}


def options_from(cls, skip: tuple[str, ...] = ()):
    """A decorator adding one option per field of `cls` (bools become flags)."""

    def deco(fn):
        for f in reversed(fields(cls)):
            if f.name in skip or "help" not in f.metadata or f.metadata.get("cli") is False:
                continue
            flag = SPELLINGS.get(f.name, "--" + f.name.replace("_", "-"))
            default = f.default if f.default is not MISSING else None
            kw: dict = {"help": f.metadata["help"], "show_default": True}
            if isinstance(default, bool):
                spelled = f"{flag}/--no-{flag[2:]}" if f.metadata.get("negatable") else flag
                fn = click.option(spelled, f.name, is_flag=True, default=default, help=kw["help"])(fn)
                continue
            if f.metadata.get("choices"):
                kw["type"] = click.Choice(choices_of(f))
            elif isinstance(default, float):
                kw["type"] = float
                if math.isinf(default):
                    kw["show_default"] = "unlimited"
            elif isinstance(default, int) or (default is None and "int" in str(f.type)):
                kw["type"] = int
            fn = click.option(flag, f.name, default=default, **kw)(fn)
        return fn

    return deco
