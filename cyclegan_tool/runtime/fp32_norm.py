"""Run InstanceNorm2d in float32 inside a half-precision network."""

from __future__ import annotations

import torch
import torch.nn as nn


class Float32InstanceNorm(nn.Module):
    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        self.norm = norm.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.float()).to(x.dtype)


def keep_norms_fp32(net: nn.Module) -> nn.Module:
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.InstanceNorm2d):
                setattr(module, name, Float32InstanceNorm(child))
    return net
