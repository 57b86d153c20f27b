"""ResNet generators (Johnson et al.), the CycleGAN default.

Module and attribute names (`model`, `conv_block`) match the reference implementation so
that its state_dicts load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cyclegan_tool.models.antialias import BlurDownsample, BlurUpsample
from cyclegan_tool.models.norms import NORMS, conv_bias
from cyclegan_tool.models.registry import GENERATORS
from cyclegan_tool.specs import GeneratorSpec


class ResnetBlock(nn.Module):
    """`x + norm(conv(relu(norm(conv(pad(x))))))` with reflection padding, dims kept."""

    def __init__(self, dim: int, norm: str, use_dropout: bool):
        super().__init__()
        bias = conv_bias(norm)
        block: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=bias),
            NORMS.get(norm)(dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            block.append(nn.Dropout(0.5))
        block += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=bias),
            NORMS.get(norm)(dim),
        ]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = self.conv_block[-1]
        if getattr(last, "fuses_residual", False):  # custom ops: the last norm adds the skip
            h = x
            for layer in self.conv_block[:-1]:
                h = layer(h)
            return last(h, residual=x)
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, n_blocks x R4ngf, u2ngf, ungf, c7s1-3 (the paper's notation).

    `Tensor[N, input_nc, H, W]` in [-1, 1] -> `Tensor[N, output_nc, H, W]` in [-1, 1];
    H and W must be multiples of 4 (two stride-2 downsamplings).

    `spec.antialias` makes each downsampling a stride-1 convolution, norm, ReLU and a blurred
    subsampling, and `spec.antialias_up` each upsampling a blurred upsampling, convolution, norm
    and ReLU: the CUT code's defaults, with its module indices (so its state_dicts load).
    """

    pad_multiple = 4

    def __init__(self, spec: GeneratorSpec, n_blocks: int):
        super().__init__()
        ngf, norm, bias = spec.ngf, spec.norm, conv_bias(spec.norm)
        make_norm = NORMS.get(norm)
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(spec.input_nc, ngf, kernel_size=7, padding=0, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # downsampling
            mult = 2**i
            out = ngf * mult * 2
            if spec.antialias:
                model += [nn.Conv2d(ngf * mult, out, kernel_size=3, stride=1, padding=1, bias=bias),
                          make_norm(out), nn.ReLU(True), BlurDownsample(out)]
            else:
                model += [nn.Conv2d(ngf * mult, out, kernel_size=3, stride=2, padding=1, bias=bias),
                          make_norm(out), nn.ReLU(True)]
        model += [ResnetBlock(ngf * 4, norm, spec.use_dropout) for _ in range(n_blocks)]
        for i in range(2):  # upsampling
            mult = 2 ** (2 - i)
            out = ngf * mult // 2
            if spec.antialias_up:
                model += [BlurUpsample(ngf * mult),
                          nn.Conv2d(ngf * mult, out, kernel_size=3, stride=1, padding=1, bias=bias)]
            else:
                model += [nn.ConvTranspose2d(ngf * mult, out, kernel_size=3, stride=2, padding=1, output_padding=1,
                                             bias=bias)]
            model += [make_norm(out), nn.ReLU(True)]
        model += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, spec.output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor, features: tuple[int, ...] = ()):
        """The translation; with `features`, (the translation, `encode(x, features)`) from one pass."""
        if not features:
            return self.model(x)
        feats = []
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in features:
                feats.append(x)
        return x, feats

    def encode(self, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        """The outputs of `self.model[i]` for each i in `layers` (ascending), running the network
        only as far as the last of them: the features PatchNCE compares (CUT's `encode_only`)."""
        feats = []
        for i, layer in enumerate(self.model[: max(layers) + 1]):
            x = layer(x)
            if i in layers:
                feats.append(x)
        return feats

    def feature_channels(self, layers: tuple[int, ...]) -> list[int]:
        """The channel count of each `encode` output."""
        channels, out = self.model[1].in_channels, []
        for i, layer in enumerate(self.model[: max(layers) + 1]):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                channels = layer.out_channels
            if i in layers:
                out.append(channels)
        return out


@GENERATORS.register("resnet_9blocks")
def resnet_9blocks(spec: GeneratorSpec) -> nn.Module:
    return ResnetGenerator(spec, n_blocks=9)


@GENERATORS.register("resnet_6blocks")
def resnet_6blocks(spec: GeneratorSpec) -> nn.Module:
    return ResnetGenerator(spec, n_blocks=6)


@GENERATORS.register_family(r"resnet_(\d+)blocks", "resnet_12blocks")
def resnet_nblocks(match):
    """Any block count (third-party checkpoints): `resnet_<n>blocks`."""
    n = int(match.group(1))
    return (lambda spec: ResnetGenerator(spec, n_blocks=n)) if n >= 1 else None
