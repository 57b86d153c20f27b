"""GAN objectives (`lsgan`, `vanilla`, `wgangp`) and the WGAN-GP gradient penalty."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cyclegan_tool.registry import Registry

GAN_LOSSES: Registry = Registry("GAN mode")


@GAN_LOSSES.register("lsgan")
def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Least squares (Mao et al.): mean((D(x) - target)^2), target 1 for real, 0 for fake."""
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


@GAN_LOSSES.register("vanilla")
def vanilla(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """The original GAN cross-entropy on logits."""
    return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, 1.0 if real else 0.0))


@GAN_LOSSES.register("wgangp")
def wgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Wasserstein critic loss: -mean(D(x)) for real, mean(D(x)) for fake."""
    return -pred.mean() if real else pred.mean()


class GANLoss(nn.Module):
    """`loss(prediction, target_is_real)` in float32 whatever the autocast dtype."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        self.mode = mode
        self._fn = GAN_LOSSES.get(mode)

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        return self._fn(prediction.float(), target_is_real)


def gradient_penalty(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     weight: float = 10.0) -> torch.Tensor:
    """weight * mean((||grad D(x_hat)||_2 - 1)^2) at random interpolates x_hat (Gulrajani et al.)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = disc(x_hat)
    (grad,) = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)
    norm = (grad.flatten(1) + 1e-16).norm(2, dim=1)
    return weight * ((norm - 1.0) ** 2).mean()
