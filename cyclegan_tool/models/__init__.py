"""Networks by registry. Importing this package registers every built-in architecture.

Add an architecture by writing a builder `fn(spec) -> nn.Module` in a new module,
decorating it with `@GENERATORS.register("name")` (or `DISCRIMINATORS`), and importing
that module below.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cyclegan_tool.models import discriminators, resnet, unet  # noqa: F401  (registers)
from cyclegan_tool.models.init import INITS, init_weights
from cyclegan_tool.models.norms import NORMS
from cyclegan_tool.models.registry import DISCRIMINATORS, GENERATORS
from cyclegan_tool.models.specs import DiscriminatorSpec, GeneratorSpec

__all__ = [
    "DISCRIMINATORS", "GENERATORS", "INITS", "NORMS", "DiscriminatorSpec", "GeneratorSpec",
    "build_discriminator", "build_generator", "init_weights", "pad_multiple",
]


def build_generator(spec: GeneratorSpec) -> nn.Module:
    """An uninitialised generator for `spec` (call `init_weights` or load a state_dict)."""
    NORMS.get(spec.norm)
    return GENERATORS.get(spec.name)(spec)


def build_discriminator(spec: DiscriminatorSpec) -> nn.Module:
    NORMS.get(spec.norm)
    return DISCRIMINATORS.get(spec.name)(spec)


def pad_multiple(spec: GeneratorSpec) -> int:
    """What H and W of a generator's input must divide by (its `pad_multiple` attribute)."""
    with torch.device("meta"):
        return int(build_generator(spec).pad_multiple)
