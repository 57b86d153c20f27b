"""The U-Net of the Keras CycleGAN our design documents start from (seed 003; its `UNET_G`).

A recursive U-Net for `isize` x `isize` images, `unet_keras_<isize>`. Each level s (isize,
isize/2, ..., 2) of input z:

    d = conv4x4 stride 2 (z)                 (same padding: PyTorch's padding 1)
    d = BN(d)                                (levels below the top, except the innermost)
    if s > 2: d = cat[d, level_{s/2}(LeakyReLU_0.2(d))]
    u = convT4x4 stride 2 (ReLU(d)), cropped by one pixel each side   (PyTorch's padding 1)
    u = BN(u)                                (levels below the top)
    u = Dropout_0.5(u)                       (s <= 8: the three innermost levels)

and the top level's output goes through tanh. Widths: ngf at the top, doubling to at most
8 ngf. Convolutions carry a bias where no batch norm follows them (the top one and the
innermost one too). It is not the reference's `unet_256`, which has no bias on those two
convolutions and puts its dropout one level further out (the three levels above the innermost).

The seed runs batch norm and dropout in training mode at inference too (`training=1`): batch
statistics, which `--norm-stats batch` (the default for batch-norm generators) reproduces; its
dropout would make every run differ, so inference keeps dropout off.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.models.registry import GENERATORS
from cyclegan_tool.specs import GeneratorSpec

BN_EPS, BN_MOMENTUM = 1.01e-5, 0.1  # Keras' BatchNormalization(epsilon=1.01e-5, momentum=0.9)


class KerasUnetLevel(nn.Module):
    def __init__(self, s: int, nf_in: int, max_nf: int, *, batch_norm: bool = True, nf_out: int | None = None,
                 nf_next: int | None = None, dropout: bool = True):
        super().__init__()
        nf_next = nf_next or min(nf_in * 2, max_nf)
        nf_out = nf_out or nf_in
        self.down = nn.Conv2d(nf_in, nf_next, 4, 2, 1, bias=not (batch_norm and s > 2))
        self.down_norm = nn.BatchNorm2d(nf_next, eps=BN_EPS, momentum=BN_MOMENTUM) if batch_norm and s > 2 \
            else nn.Identity()
        self.inner = KerasUnetLevel(s // 2, nf_next, max_nf, dropout=dropout) if s > 2 else None
        self.up = nn.ConvTranspose2d(nf_next * 2 if self.inner else nf_next, nf_out, 4, 2, 1, bias=not batch_norm)
        self.up_norm = nn.BatchNorm2d(nf_out, eps=BN_EPS, momentum=BN_MOMENTUM) if batch_norm else nn.Identity()
        self.drop = nn.Dropout(0.5) if s <= 8 and dropout else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        d = self.down_norm(self.down(z))
        if self.inner is not None:
            d = torch.cat([d, self.inner(F.leaky_relu(d, 0.2))], 1)
        return self.drop(self.up_norm(self.up(F.relu(d))))


class KerasUnetGenerator(nn.Module):
    """`Tensor[N, C, H, W]` in [-1, 1] -> same size; H and W multiples of `isize`."""

    def __init__(self, spec: GeneratorSpec, isize: int):
        super().__init__()
        if spec.norm != "batch":
            raise ConfigError(f"unet_keras_{isize} is the seed's network, with batch norm only (--norm batch, "
                              f"not {spec.norm})")
        self.pad_multiple = isize
        self.min_side = isize
        self.top = KerasUnetLevel(isize, spec.input_nc, 8 * spec.ngf, batch_norm=False, nf_out=spec.output_nc,
                                  nf_next=spec.ngf, dropout=spec.use_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.top(x))


@GENERATORS.register_family(r"unet_keras_(\d+)", "unet_keras_128")
def unet_keras(match):
    """`unet_keras_<isize>` for isize a power of two from 16."""
    isize = int(match.group(1))
    ok = isize >= 16 and isize & (isize - 1) == 0
    return (lambda spec: KerasUnetGenerator(spec, isize)) if ok else None


GENERATORS.register("unet_keras_128")(lambda spec: KerasUnetGenerator(spec, 128))
GENERATORS.register("unet_keras_256")(lambda spec: KerasUnetGenerator(spec, 256))
