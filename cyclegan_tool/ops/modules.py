"""Modules over the custom ops and `apply_ops`, which swaps them into a built network.

Swapping keeps every state_dict key (the replaced modules hold the same parameters under
the same names), so checkpoints move freely between `native` and `custom` networks.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.ops.functional import instance_norm, reflection_pad2d
from cyclegan_tool.ops.library import HAVE_EXTENSION, has_kernel

OPS_MODES = ("native", "custom", "auto")
# What `auto` picks per device type, from docs/BENCHMARKS.md (bench/ops_bench.py): native stays
# the default until the custom kernels measure faster on that device.
AUTO_CHOICE = {"cpu": "native", "cuda": "native"}


class CustomReflectionPad2d(nn.Module):
    def __init__(self, padding: tuple[int, int, int, int]):
        super().__init__()
        self.padding = tuple(int(p) for p in padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reflection_pad2d(x, self.padding)


class FusedInstanceNorm(nn.Module):
    """InstanceNorm2d (+ ReLU) whose `forward(x, residual)` can also add the ResNet skip."""

    fuses_residual = True

    def __init__(self, norm: nn.InstanceNorm2d, relu: bool):
        super().__init__()
        self.eps, self.relu, self.num_features = norm.eps, relu, norm.num_features
        self.weight, self.bias = norm.weight, norm.bias  # same keys as InstanceNorm2d(affine=True)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return instance_norm(x, self.weight, self.bias, eps=self.eps, relu=self.relu, residual=residual)


def resolve(mode: str, device: torch.device | str) -> str:
    """`native` or `custom` for `mode` on `device`; `custom` needs the compiled kernels."""
    if mode not in OPS_MODES:
        raise ConfigError(f"--ops must be one of {', '.join(OPS_MODES)}, not '{mode}'")
    kind = torch.device(device).type
    if mode == "auto":
        mode = AUTO_CHOICE.get(kind, "native")
    if mode == "custom" and not has_kernel("instance_norm", kind):
        where = "the compiled extension" if not HAVE_EXTENSION else f"its {kind.upper()} kernels"
        raise ConfigError(f"--ops custom needs {where} (build with: pip install --no-build-isolation -e .)")
    return mode


def apply_ops(net: nn.Module, mode: str, device: torch.device | str = "cpu") -> nn.Module:
    """Swap reflection pads and instance norms (fusing a following ReLU) for custom-op modules
    in place when `mode` resolves to `custom`; returns `net`."""
    if resolve(mode, device) == "native":
        return net
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        children = list(seq.named_children())
        for i, (name, child) in enumerate(children):
            if isinstance(child, nn.ReflectionPad2d):
                setattr(seq, name, CustomReflectionPad2d(child.padding))
            elif isinstance(child, nn.InstanceNorm2d) and not child.track_running_stats:
                relu = i + 1 < len(children) and isinstance(children[i + 1][1], nn.ReLU)
                setattr(seq, name, FusedInstanceNorm(child, relu))
                if relu:
                    setattr(seq, children[i + 1][0], nn.Identity())
    return net
