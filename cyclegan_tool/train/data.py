"""The unaligned two-domain dataset: A and B images are drawn independently."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from cyclegan_tool.errors import DataError
from cyclegan_tool.imageio import IMAGE_EXTENSIONS, list_images, read_rgb8
from cyclegan_tool.train.config import TrainConfig
from cyclegan_tool.train.transforms import preprocess


def domain_folders(cfg: TrainConfig) -> tuple[Path, Path]:
    """(folder of domain A, folder of domain B) after `--direction`."""
    root = Path(cfg.dataroot)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    a, b = root / "trainA", root / "trainB"
    return (a, b) if cfg.direction == "a2b" else (b, a)


def _domain(folder: Path, limit: float) -> list[Path]:
    paths = list_images(folder)
    if not paths:
        raise DataError(f"{folder}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return paths[: int(limit)] if math.isfinite(limit) else paths


class UnalignedDataset(Dataset):
    """Item i: A image i mod |A| and a B image (random, or i mod |B| with serial batches).

    Returns `{"a": Tensor[3, S, S], "b": Tensor[3, S, S], "bad": str}` where `bad` lists
    (newline-separated) files that could not be read and were replaced by the next one.
    """

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        dir_a, dir_b = domain_folders(cfg)
        for folder in sorted((dir_a, dir_b)):
            if not folder.is_dir():
                raise DataError(f"{folder}: folder not found (DATAROOT needs trainA/ and trainB/)")
        self.paths_a = _domain(dir_a, cfg.max_dataset_size)
        self.paths_b = _domain(dir_b, cfg.max_dataset_size)
        self.epoch = 0
        # The smallest side both networks take: a PatchGAN halves it n_layers times before a
        # 4x4 conv, a ResNet generator quarters it and reflection-pads the result.
        layers = 3 if cfg.netD == "basic" else (cfg.n_layers_D if cfg.netD == "n_layers" else 0)
        self.min_side = max(8, 2 ** layers * 2 if layers else 1)

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _load(self, paths: list[Path], index: int, bad: list[str], kw: dict) -> torch.Tensor:
        """The preprocessed image `index`, or the next usable one (unreadable or too small files
        are listed in `bad` and replaced)."""
        for k in range(len(paths)):
            path = paths[(index + k) % len(paths)]
            try:
                t = preprocess(read_rgb8(path), **kw)
            except DataError as e:
                bad.append(str(e))
                continue
            if min(t.shape[-2:]) < self.min_side:
                bad.append(f"{path}: {t.shape[-1]}x{t.shape[-2]} after --preprocess {self.cfg.preprocess} is under "
                           f"the {self.min_side} pixels the networks need")
                continue
            return t
        raise DataError(f"{paths[0].parent}: none of the {len(paths)} images can be used ({bad[-1]})")

    def __getitem__(self, index: int) -> dict:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        index_b = index % len(self.paths_b) if cfg.serial_batches else int(rng.integers(len(self.paths_b)))
        bad: list[str] = []
        kw = dict(mode=cfg.preprocess, load_size=cfg.load_size, crop_size=cfg.crop_size,
                  flip=not cfg.no_flip, rng=rng)
        a = self._load(self.paths_a, index % len(self.paths_a), bad, kw)
        b = self._load(self.paths_b, index_b, bad, kw)
        return {"a": a, "b": b, "bad": "\n".join(bad)}


class EpochSampler(torch.utils.data.Sampler[int]):
    """Shuffled (or serial) indices for one epoch, this rank's share, optionally skipping the
    first `skip` of them (to resume mid-epoch). Order is a function of (seed, epoch)."""

    def __init__(self, n: int, *, shuffle: bool, seed: int, rank: int = 0, world: int = 1):
        self.n, self.shuffle, self.seed, self.rank, self.world = n, shuffle, seed, rank, world
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per_rank = math.ceil(self.n / self.world)
        order += order[: per_rank * self.world - self.n]  # pad so every rank has equal steps
        return order[self.rank :: self.world]

    def __iter__(self):
        return iter(self._indices()[self.skip :])

    def __len__(self) -> int:
        return max(0, math.ceil(self.n / self.world) - self.skip)
