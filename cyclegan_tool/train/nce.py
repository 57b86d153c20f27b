"""PatchNCE (Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation",
ECCV 2020): a patch of the output should match the input patch at the same place more than
any other patch of the same input.

`PatchSampler` picks patch locations of encoder features and projects them with a 2-layer
MLP per layer onto the unit sphere (the CUT code's `PatchSampleF` with `mlp_sample`; its
state_dict keys `mlp_0.0.weight`, ... are kept). `patch_nce_loss` is the InfoNCE loss over
those patches, with the negatives drawn from the same image.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """x / (||x||_2 + 1e-7) along dim 1 (the CUT code's `Normalize`)."""
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-7)


def patch_nce_loss(query: torch.Tensor, key: torch.Tensor, batch: int, temperature: float = 0.07) -> torch.Tensor:
    """Per-patch InfoNCE loss.

    `query`, `key`: `Tensor[batch * P, D]`, L2-normalised, row i of `query` (the output's patch)
    paired with row i of `key` (the input's patch at the same place); rows are grouped by image.
    For each query the positive is its key and the negatives are the other P - 1 keys of the same
    image. Returns `Tensor[batch * P]`: cross-entropy of the positive among
    [q.k+, q.k-_1, ..., q.k-_{P-1}] / temperature. The key carries no gradient (as in the CUT
    code); the "self" entries of the negatives are filled with -10 (exp(-10/T) ~ 0) before scaling.
    """
    key = key.detach()
    n, dim = query.shape
    positive = (query * key).sum(1, keepdim=True)  # [B*P, 1]
    q, k = query.view(batch, -1, dim), key.view(batch, -1, dim)
    patches = q.shape[1]
    negative = torch.bmm(q, k.transpose(1, 2))  # [B, P, P]
    eye = torch.eye(patches, device=query.device, dtype=torch.bool)[None]
    negative = negative.masked_fill(eye, -10.0).view(-1, patches)
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=query.device), reduction="none")


class PatchSampler(nn.Module):
    """`forward(feats, ids=None)`: for each `Tensor[B, C_l, H_l, W_l]` of `feats`, the same
    `num_patches` locations of every image (drawn with `generator` unless `ids` gives them), each
    patch projected by layer l's MLP (Linear C_l -> width, ReLU, Linear width -> width) and
    L2-normalised. Returns (`[Tensor[B * P_l, width]]`, the locations used)."""

    def __init__(self, channels: list[int], width: int = 256, num_patches: int = 256):
        super().__init__()
        self.num_patches = num_patches
        for i, c in enumerate(channels):
            setattr(self, f"mlp_{i}", nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width)))
        self.layers = len(channels)

    def forward(self, feats: list[torch.Tensor], ids: list[torch.Tensor] | None = None,
                generator: torch.Generator | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        out, used = [], []
        for i, feat in enumerate(feats):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)  # [B, H*W, C]
            if ids is None:
                where = torch.randperm(flat.shape[1], generator=generator)[: self.num_patches]
            else:
                where = ids[i]
            sample = flat[:, where.to(flat.device), :].flatten(0, 1)  # [B*P, C]
            out.append(l2_normalize(getattr(self, f"mlp_{i}")(sample)))
            used.append(where)
        return out, used
