"""`--eval-every N`: FID/KID of both generators on the dataset's test folders while training.

Domain A's test images (DATAROOT/testA, or testB with --direction b2a) are translated in
memory by `gen_a2b` and scored against the real test images of B, and the other way round.
The real folders' features are computed once (and cached in the user cache).
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
from cyclegan_tool.metrics.folders import default_cache_dir, folder_features, image_files
from cyclegan_tool.metrics.stats import fid_from_features, kid_from_features
from cyclegan_tool.models import value_range
from cyclegan_tool.train.config import TrainConfig

METRICS = ("kid_a2b", "kid_b2a", "fid_a2b", "fid_b2a")


def test_folders(cfg: TrainConfig) -> tuple[Path, Path]:
    """(test images of domain A, of domain B) after --direction."""
    root = Path(cfg.dataroot)
    a, b = root / "testA", root / "testB"
    if cfg.direction == "b2a":
        a, b = b, a
    for folder in (a, b):
        if not folder.is_dir():
            raise ConfigError(f"--eval-every needs test images: {folder} not found")
    return a, b


class TrainingEvaluator:
    """Scores the generators; built before training starts so a missing extra fails at once."""

    def __init__(self, cfg: TrainConfig, device: torch.device, extractor: FeatureExtractor | None = None):
        self.cfg, self.device = cfg, device
        self.folders = test_folders(cfg)
        limit = cfg.eval_limit or None
        self.sources = [image_files(f, limit=limit, spread=True) for f in self.folders]
        self.extractor = extractor or FeatureExtractor(device=str(device))
        # The real side is limited too: the same images every epoch, and no long start on big test sets.
        self.real = [folder_features(f, self.extractor, limit=limit, spread=True, cache_dir=default_cache_dir()).features
                     for f in self.folders]

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
        """{"kid_a2b", "kid_std_a2b", "fid_a2b", and the same for b2a}."""
        out: dict[str, float] = {}
        spec = self.cfg.generator_spec
        for name, files, real, gspec in (("a2b", self.sources[0], self.real[1], spec),
                                         ("b2a", self.sources[1], self.real[0], spec.reversed())):
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
