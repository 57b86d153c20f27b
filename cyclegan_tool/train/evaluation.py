"""`--eval-every N`: FID/KID of the generators on the validation images while training.

The validation images (`train.data.Split`: held out of trainA/trainB by `--val-from-train`,
or DATAROOT/valA and valB) of domain A are translated in memory by `gen_a2b` and scored
against the validation images of B, and the other way round for a CycleGAN. Test images are
never used here: what chooses `best.pt` must not be what reports its quality. The real
images' features are computed once (and cached in the user cache).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cyclegan_tool.conventions import array_to_tensor, batch_to_arrays, padded_size
from cyclegan_tool.errors import ConfigError, DataError
from cyclegan_tool.imageio import decode
from cyclegan_tool.metrics.features import FeatureExtractor
from cyclegan_tool.imageio import spread
from cyclegan_tool.metrics.folders import default_cache_dir, files_features
from cyclegan_tool.metrics.stats import fid_from_features, kid_from_features
from cyclegan_tool.models import value_range
from cyclegan_tool.train.config import TrainConfig
from cyclegan_tool.train.data import Split

NO_VALIDATION = ("--eval-every scores checkpoints on validation images: add --val-from-train N (N images of each "
                 "domain held out of training) or DATAROOT/valA and valB (test images are never used to choose)")


class TrainingEvaluator:
    """Scores the generators; built before training starts so a missing extra fails at once."""

    def __init__(self, cfg: TrainConfig, device: torch.device, split: Split, directions: tuple[str, ...] = ("a2b", "b2a"),
                 extractor: FeatureExtractor | None = None):
        if not split.source:
            raise ConfigError(NO_VALIDATION)
        self.cfg, self.device, self.directions = cfg, device, directions
        limit = cfg.eval_limit or 0
        self.sources = [spread(paths, limit) if limit else paths for paths in (split.val_a, split.val_b)]
        self.extractor = extractor or FeatureExtractor(device=str(device))
        # The real side is limited too: the same images every epoch, and no long start on big sets.
        root = Path(cfg.dataroot)
        self.real = [files_features(root, files, self.extractor, cache_dir=default_cache_dir()).features
                     for files in self.sources]

    @torch.no_grad()
    def _translate(self, net: nn.Module, files: list[Path], multiple: int, spec) -> np.ndarray:
        vr = value_range(spec)
        feats, batch = [], []
        for path in files:
            try:
                rgb = decode(path).rgb
            except DataError:
                continue
            x = array_to_tensor(rgb, channels=spec.input_nc, value_range=vr)[None].to(self.device)
            h, w = x.shape[2:]
            ph, pw = padded_size(h, w, multiple)
            if (ph, pw) != (h, w):
                x = F.pad(x, (0, pw - w, 0, ph - h), mode="reflect" if min(h, w) > 1 else "replicate")
            y = net(x)[:, :, :h, :w]
            batch.append(batch_to_arrays(y, vr)[0])
            if len(batch) == self.extractor.batch_size:
                feats.append(self.extractor.batch(batch))
                batch = []
        if batch:
            feats.append(self.extractor.batch(batch))
        if not feats:
            raise DataError(f"{files[0].parent}: no test image could be read")
        return np.concatenate(feats)

    def __call__(self, nets: dict[str, nn.Module], multiple: int) -> dict[str, float]:
        """{"kid_a2b", "kid_std_a2b", "fid_a2b", and the same for b2a where the model has it}."""
        out: dict[str, float] = {}
        spec = self.cfg.generator_spec
        for name, files, real, gspec in (("a2b", self.sources[0], self.real[1], spec),
                                         ("b2a", self.sources[1], self.real[0], spec.reversed())):
            if name not in self.directions:
                continue
            net = nets[f"gen_{name}"]
            was_training = net.training
            net.eval()
            try:
                fake = self._translate(net, files, multiple, gspec)
            finally:
                net.train(was_training)
            kid, kid_std = kid_from_features(fake, real)
            out.update({f"kid_{name}": kid, f"kid_std_{name}": kid_std, f"fid_{name}": fid_from_features(fake, real)})
        return {k: round(v, 6) if math.isfinite(v) else v for k, v in out.items()}
