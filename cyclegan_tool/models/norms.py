"""Normalisation layers as the reference builds them, and its bias rule."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from cyclegan_tool.registry import Registry

NORMS: Registry[Callable[[int], nn.Module]] = Registry("norm")


@NORMS.register("instance")
def instance_norm(num_features: int) -> nn.Module:
    # The reference: InstanceNorm2d(affine=False, track_running_stats=False).
    return nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)


@NORMS.register("instance_affine")
def instance_norm_affine(num_features: int) -> nn.Module:
    # Instance norm with a learned scale and shift, as many third-party CycleGANs use.
    return nn.InstanceNorm2d(num_features, affine=True, track_running_stats=False)


@NORMS.register("batch")
def batch_norm(num_features: int) -> nn.Module:
    return nn.BatchNorm2d(num_features, affine=True, track_running_stats=True)


@NORMS.register("none")
def no_norm(num_features: int) -> nn.Module:
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether convolutions before a norm carry a bias.

    The reference sets `use_bias = norm is InstanceNorm2d`: batch norm has its own shift,
    and, as a quirk we keep for key compatibility, `none` also gets no bias.
    """
    NORMS.get(norm)
    return norm in ("instance", "instance_affine")
