"""The generator and discriminator registries and their builders."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from cyclegan_tool.specs import DiscriminatorSpec, GeneratorSpec
from cyclegan_tool.registry import Registry

GENERATORS: Registry[Callable[[GeneratorSpec], nn.Module]] = Registry("generator")
DISCRIMINATORS: Registry[Callable[[DiscriminatorSpec], nn.Module]] = Registry("discriminator")
