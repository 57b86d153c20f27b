"""Typed, frozen architecture specs. A spec plus a state_dict is everything needed to
rebuild a network; specs are saved in checkpoints, ONNX metadata and engine sidecars."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Self

# How a batch-norm generator normalises at inference: its running statistics, or each image's own
# (models/norm_stats.py; auto: each image's own, as the reference's test.py does without --eval).
# Instance-norm generators are the same either way.
NORM_STATS = ("auto", "running", "batch")


class _Spec:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Self:
        """Build from a dict, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True, kw_only=True)
class GeneratorSpec(_Spec):
    """A generator: `name` is a key of `GENERATORS` (resnet_9blocks, unet_256, ...)."""

    name: str = "resnet_9blocks"
    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    norm: str = "instance"
    use_dropout: bool = False
    antialias: bool = False  # blurred stride-2 downsampling (models/antialias.py), as the CUT code's
    antialias_up: bool = False  # blurred upsampling then a convolution, instead of a transposed convolution

    def reversed(self) -> GeneratorSpec:
        """The spec of the generator for the opposite direction (channel counts swapped)."""
        return replace(self, input_nc=self.output_nc, output_nc=self.input_nc)


@dataclass(frozen=True, kw_only=True)
class DiscriminatorSpec(_Spec):
    """A discriminator: `basic` (70x70 PatchGAN = n_layers with 3), `n_layers` or `pixel`."""

    name: str = "basic"
    input_nc: int = 3
    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"
    antialias: bool = False  # stride-1 convolutions followed by blurred downsampling, as the CUT code's
    image_size: int = 0  # the side it was trained at; heads that need a fixed size read it
