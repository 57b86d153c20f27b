"""Networks by registry. Importing this package registers every built-in architecture.

Add an architecture by writing a builder `fn(spec) -> nn.Module` in a new module,
decorating it with `@GENERATORS.register("name")` (or `DISCRIMINATORS`), and importing
that module below.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn

from cyclegan_tool.models import discriminators, keras, resnet, unet, unet_keras  # noqa: F401  (registers)
from cyclegan_tool.models.init import INITS, init_weights
from cyclegan_tool.models.norms import NORMS
from cyclegan_tool.models.registry import DISCRIMINATORS, GENERATORS
from cyclegan_tool.specs import DiscriminatorSpec, GeneratorSpec

__all__ = [
    "DISCRIMINATORS", "GENERATORS", "INITS", "NORMS", "DiscriminatorSpec", "GeneratorSpec",
    "build_discriminator", "build_generator", "init_weights", "min_side", "pad_multiple", "value_range",
]


def build_generator(spec: GeneratorSpec) -> nn.Module:
    """An uninitialised generator for `spec` (call `init_weights` or load a state_dict)."""
    NORMS.get(spec.norm)
    return GENERATORS.get(spec.name)(spec)


def build_discriminator(spec: DiscriminatorSpec) -> nn.Module:
    NORMS.get(spec.norm)
    return DISCRIMINATORS.get(spec.name)(spec)


@functools.lru_cache(maxsize=64)
def pad_multiple(spec: GeneratorSpec) -> int:
    """What H and W of a generator's input must divide by (its `pad_multiple` attribute)."""
    with torch.device("meta"):
        return int(build_generator(spec).pad_multiple)


@functools.lru_cache(maxsize=64)
def min_side(spec: GeneratorSpec) -> int:
    """The smallest H and W a generator runs at (its `min_side` attribute; else its pad multiple
    and at least 8: a ResNet's reflection pads need a 2-pixel bottleneck)."""
    with torch.device("meta"):
        net = build_generator(spec)
    return int(getattr(net, "min_side", max(8, int(net.pad_multiple))))


@functools.lru_cache(maxsize=64)
def value_range(spec: GeneratorSpec) -> tuple[float, float]:
    """The pixel range a generator reads and writes (its `value_range` attribute; the paper's
    networks end in tanh: (-1, 1))."""
    with torch.device("meta"):
        return tuple(getattr(build_generator(spec), "value_range", (-1.0, 1.0)))
