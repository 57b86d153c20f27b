"""Weight initialisation as the reference does it (`init_weights`)."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn
from torch.nn import init

from cyclegan_tool.registry import Registry

INITS: Registry[Callable[[nn.Parameter, float], None]] = Registry("init type")


@INITS.register("normal")
def _normal(w, gain):
    init.normal_(w, 0.0, gain)


@INITS.register("xavier")
def _xavier(w, gain):
    init.xavier_normal_(w, gain=gain)


@INITS.register("glorot_uniform")
def _glorot_uniform(w, gain):
    init.xavier_uniform_(w, gain=1.0)  # Keras' default kernel initializer (it has no gain)


@INITS.register("kaiming")
def _kaiming(w, gain):
    init.kaiming_normal_(w, a=0, mode="fan_in")


@INITS.register("orthogonal")
def _orthogonal(w, gain):
    init.orthogonal_(w, gain=gain)


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Conv/Linear weights by `init_type`, biases 0; BatchNorm weights N(1, gain), biases 0."""
    fill = INITS.get(init_type)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fill(m.weight.data, gain)
            if m.bias is not None:
                init.constant_(m.bias.data, 0.0)
        elif isinstance(m, nn.BatchNorm2d):
            init.normal_(m.weight.data, 1.0, gain)
            init.constant_(m.bias.data, 0.0)
    return net
