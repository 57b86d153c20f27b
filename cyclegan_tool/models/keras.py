"""The CycleGAN networks of the Keras textbook chapter (Atienza, "Advanced Deep Learning with
Keras", ch. 7, `cyclegan-7.1.1.py`), for its 32x32 examples.

Generator `keras_unet_k<k>`: a 4-layer encoder (filters ngf, 2, 4, 8 x ngf; strides 1, 2, 2,
2) and a 3-layer decoder (4, 2, 1 x ngf, stride 2), each decoder output joined to the mirrored
encoder output, then a stride-1 transposed conv to the target channels and a sigmoid: images
are in [0, 1]. An encoder layer is [norm] -> LeakyReLU(0.2) -> conv; a decoder layer is
norm -> ReLU -> transposed conv (pre-activation, as the chapter writes them; its first
encoder layer normalises the raw input). Instance norms use Keras' epsilon, 1e-3.

Discriminators `keras_patch_k<k>` and `keras_dense_k<k>`: 4 encoder layers without norm
(ndf, 2, 4, 8 x ndf; strides 2, 2, 2, 1), then LeakyReLU and a stride-2 conv to one channel
(an (S/16) x (S/16) patch map: 2x2 at 32x32), or Flatten -> Dense(1) (linear), which needs
the spec's `image_size`.

Convolutions pad as TensorFlow's 'same' does (the odd pixel at the end), so the layer shapes
and the sampling grid are the chapter's.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.models.norms import NORMS
from cyclegan_tool.models.registry import DISCRIMINATORS, GENERATORS
from cyclegan_tool.specs import DiscriminatorSpec, GeneratorSpec

KERAS_EPS = 1e-3
KERNEL_SIZES = (3, 5)  # the chapter's: 3 for colorization, 5 for digits (others are accepted)


def _same_split(k: int, s: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) for sizes divisible by the stride."""
    total = max(k - s, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Module):
    """Conv2D(padding='same'): output size ceil(input / stride)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.pad = _same_split(k, stride)
        self.conv = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.pad
        return self.conv(F.pad(x, (a, b, a, b)) if a or b else x)


class SameConvTranspose2d(nn.Module):
    """Conv2DTranspose(padding='same'): output size input * stride."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.stride, self.before = stride, _same_split(k, stride)[0]
        self.conv = nn.ConvTranspose2d(cin, cout, k, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] * self.stride, x.shape[-1] * self.stride
        a = self.before
        return self.conv(x)[..., a:a + h, a:a + w]


def _norm(name: str, channels: int) -> nn.Module:
    norm = NORMS.get(name)(channels)
    if isinstance(norm, nn.InstanceNorm2d):
        norm.eps = KERAS_EPS
    return norm


class EncoderLayer(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, norm: str | None):
        super().__init__()
        self.norm = _norm(norm, cin) if norm else nn.Identity()
        self.conv = SameConv2d(cin, cout, k, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.leaky_relu(self.norm(x), 0.2))


class DecoderLayer(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, norm: str):
        super().__init__()
        self.norm = _norm(norm, cin)
        self.conv = SameConvTranspose2d(cin, cout, k, 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(F.relu(self.norm(x))), skip], 1)


class KerasUnetGenerator(nn.Module):
    """`Tensor[N, input_nc, H, W]` in [0, 1] -> `Tensor[N, output_nc, H, W]` in [0, 1];
    H and W multiples of 8."""

    pad_multiple = 8
    min_side = 16  # the innermost norm needs 2x2 pixels
    value_range = (0.0, 1.0)

    def __init__(self, spec: GeneratorSpec, k: int):
        super().__init__()
        f, norm = spec.ngf, spec.norm
        self.encoder = nn.ModuleList([
            EncoderLayer(spec.input_nc, f, k, 1, norm), EncoderLayer(f, 2 * f, k, 2, norm),
            EncoderLayer(2 * f, 4 * f, k, 2, norm), EncoderLayer(4 * f, 8 * f, k, 2, norm),
        ])
        # Decoder inputs grow by the concatenated skip: 8f -> 4f (+4f), 8f -> 2f (+2f), 4f -> f (+f).
        self.decoder = nn.ModuleList([
            DecoderLayer(8 * f, 4 * f, k, norm), DecoderLayer(8 * f, 2 * f, k, norm), DecoderLayer(4 * f, f, k, norm),
        ])
        self.output = SameConvTranspose2d(2 * f, spec.output_nc, k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        for layer, skip in zip(self.decoder, reversed(skips[:-1])):
            x = layer(x, skip)
        return torch.sigmoid(self.output(x))


class KerasDiscriminator(nn.Module):
    """`Tensor[N, C, H, W]` -> `[N, 1, H/16, W/16]` patch logits, or `[N, 1]` with the dense head."""

    def __init__(self, spec: DiscriminatorSpec, k: int, patchgan: bool):
        super().__init__()
        d = spec.ndf
        self.encoder = nn.Sequential(
            EncoderLayer(spec.input_nc, d, k, 2, None), EncoderLayer(d, 2 * d, k, 2, None),
            EncoderLayer(2 * d, 4 * d, k, 2, None), EncoderLayer(4 * d, 8 * d, k, 1, None),
        )
        if patchgan:
            self.head = nn.Sequential(nn.LeakyReLU(0.2), SameConv2d(8 * d, 1, k, 2))
        else:
            size = spec.image_size
            if size < 8 or size % 8:
                raise ConfigError(f"the dense Keras discriminator needs a fixed image size that is a multiple of 8 "
                                  f"(got {size}); use --crop-size, or the patch discriminator")
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * d * (size // 8) ** 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def _kernel(text: str) -> int | None:
    """An odd kernel size up to 9 (as in a family name), else None."""
    k = int(text)
    return k if k % 2 == 1 and 1 <= k <= 9 else None


def _register(k: int) -> None:
    GENERATORS.register(f"keras_unet_k{k}")(lambda spec: KerasUnetGenerator(spec, k))
    DISCRIMINATORS.register(f"keras_patch_k{k}")(lambda spec: KerasDiscriminator(spec, k, True))
    DISCRIMINATORS.register(f"keras_dense_k{k}")(lambda spec: KerasDiscriminator(spec, k, False))


for _k in KERNEL_SIZES:
    _register(_k)


@GENERATORS.register_family(r"keras_unet_k(\d+)", "keras_unet_k7")
def keras_unet_any(match):
    k = _kernel(match.group(1))
    return (lambda spec: KerasUnetGenerator(spec, k)) if k else None


@DISCRIMINATORS.register_family(r"keras_(patch|dense)_k(\d+)", "keras_patch_k7")
def keras_disc_any(match):
    k = _kernel(match.group(2))
    return (lambda spec: KerasDiscriminator(spec, k, match.group(1) == "patch")) if k else None

