"""U-Net generators (Isola et al.): skip connections between mirrored layers.

The recursive `UnetSkipConnectionBlock` nesting (`model.model.1.model.3...`) is the
reference layout, kept so that its state_dicts load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cyclegan_tool.models.norms import NORMS, conv_bias
from cyclegan_tool.models.registry import GENERATORS
from cyclegan_tool.specs import GeneratorSpec


class UnetSkipConnectionBlock(nn.Module):
    """One level: down (conv 4x4 s2), the inner submodule, up (transposed conv), then
    concatenation with the input (except at the outermost level)."""

    def __init__(self, outer_nc: int, inner_nc: int, *, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False, norm: str = "batch", use_dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        make_norm = NORMS.get(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, nn.ReLU(True), upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True), upconv, make_norm(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [nn.LeakyReLU(0.2, True), downconv, make_norm(inner_nc), submodule,
                     nn.ReLU(True), upconv, make_norm(outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """`Tensor[N, C, H, W]` -> same size; H and W must be multiples of 2**num_downs."""

    def __init__(self, spec: GeneratorSpec, num_downs: int):
        super().__init__()
        self.pad_multiple = 2**num_downs
        ngf, norm = spec.ngf, spec.norm
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm,
                                            use_dropout=spec.use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(spec.output_nc, ngf, input_nc=spec.input_nc,
                                             submodule=block, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@GENERATORS.register("unet_128")
def unet_128(spec: GeneratorSpec) -> nn.Module:
    return UnetGenerator(spec, num_downs=7)


@GENERATORS.register("unet_256")
def unet_256(spec: GeneratorSpec) -> nn.Module:
    return UnetGenerator(spec, num_downs=8)


@GENERATORS.register_family(r"unet_(\d+)", "unet_64")
def unet_any(match):
    """Any depth (third-party checkpoints): `unet_<2^d>` for d >= 5 levels."""
    size = int(match.group(1))
    depth = size.bit_length() - 1
    return (lambda spec: UnetGenerator(spec, num_downs=depth)) if size == 2**depth and depth >= 5 else None
