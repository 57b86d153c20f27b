"""`--norm-stats batch`: batch-norm layers normalise with each image's own statistics.

The reference implementation's test.py runs its networks in training mode unless given
`--eval`, so a batch-norm generator (pix2pix's U-Nets, `--norm batch` CycleGANs) normalises
with the test batch's statistics, as the pix2pix paper prescribes; its batch is one image. With
one image, batch statistics are the image's per-channel mean and (biased) variance over H x W:
instance norm, with the batch norm's scale and shift. `use_batch_statistics` swaps every
BatchNorm2d for exactly that (so a batch of several images gives each image what test.py gives
it alone), and ONNX export carries it as InstanceNormalization. Dropout stays off: test.py's
would make every run differ.
"""

from __future__ import annotations

import torch.nn as nn

from cyclegan_tool.specs import NORM_STATS  # noqa: F401  (the choices, torch-free)


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def use_batch_statistics(net: nn.Module) -> nn.Module:
    """Replace each BatchNorm2d of `net` in place by an affine InstanceNorm2d holding the same
    weight and bias (and eps); running statistics are left unused. Returns `net`."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                norm = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=True, track_running_stats=False)
                norm.weight, norm.bias = child.weight, child.bias
                setattr(parent, name, norm.to(child.weight.device))
    return net
