"""Learning-rate schedules, stepped once per epoch (or per step: `PER_STEP`)."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, StepLR

from cyclegan_tool.train.config import TrainConfig


class LinearDecay:
    """1 for `n_epochs` epochs, then linearly to 0 over `n_epochs_decay` (the reference rule:
    1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1))."""

    def __init__(self, n_epochs: int, n_epochs_decay: int):
        self.n_epochs, self.n_epochs_decay = n_epochs, n_epochs_decay

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - self.n_epochs) / float(self.n_epochs_decay + 1)


PER_STEP = ("inverse_time",)


class InverseTimeDecay:
    """Keras' legacy `decay`: lr / (1 + decay * iterations), stepped once per training step."""

    def __init__(self, decay: float):
        self.decay = decay

    def __call__(self, step: int) -> float:
        return 1.0 / (1.0 + self.decay * step)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, decay: float = 0.0) -> LRScheduler:
    """`decay`: the per-step decay of `inverse_time` for this optimizer."""
    if cfg.lr_policy == "inverse_time":
        return LambdaLR(optimizer, InverseTimeDecay(decay))
    if cfg.lr_policy == "linear":
        return LambdaLR(optimizer, LinearDecay(cfg.n_epochs, cfg.n_epochs_decay))
    if cfg.lr_policy == "step":
        return StepLR(optimizer, step_size=cfg.lr_decay_iters, gamma=0.1)
    return CosineAnnealingLR(optimizer, T_max=max(1, cfg.n_epochs), eta_min=0)
