"""The unaligned two-domain dataset: A and B images are drawn independently."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from cyclegan_tool.errors import DataError
from cyclegan_tool.imageio import IMAGE_EXTENSIONS, list_images, read_rgb8
from cyclegan_tool.models import min_side, value_range
from cyclegan_tool.train.config import TrainConfig
from cyclegan_tool.train.transforms import preprocess

log = logging.getLogger("cyclegan_tool.train")

MEMORY_BUDGET = 1 << 30  # --in-memory auto keeps decoded images up to this many bytes
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def domain_folders(cfg: TrainConfig) -> tuple[Path, Path]:
    """(folder of domain A, folder of domain B) after `--direction`."""
    root = Path(cfg.dataroot)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    a, b = root / "trainA", root / "trainB"
    return (a, b) if cfg.direction == "a2b" else (b, a)


@dataclass(frozen=True)
class Split:
    """Each domain's images to train on and to validate on (never both). `source` says where the
    validation images come from ("" when there are none)."""

    train_a: list[Path]
    train_b: list[Path]
    val_a: list[Path]
    val_b: list[Path]
    source: str

    def describe(self, root: Path) -> dict:
        """What config.json records: where the validation images come from and which they are."""
        return {"source": self.source,
                "a": [p.relative_to(root).as_posix() for p in self.val_a],
                "b": [p.relative_to(root).as_posix() for p in self.val_b]}


def hold_out(paths: list[Path], n: int, seed: int, domain: int) -> list[Path]:
    """`n` of `paths` drawn by (seed, domain, n) alone, in path order."""
    rng = np.random.default_rng([seed, domain, n, 0x7A11])
    return [paths[i] for i in sorted(rng.choice(len(paths), size=n, replace=False))]


def split_dataset(cfg: TrainConfig) -> Split:
    """The run's images: with --val-from-train N, N of each domain's train images held out for
    validation (seeded: the same seed gives the same split); else DATAROOT/valA and valB when
    both exist (swapped with --direction b2a); else no validation images."""
    dir_a, dir_b = domain_folders(cfg)
    for folder in sorted((dir_a, dir_b)):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found (DATAROOT needs trainA/ and trainB/)")
    train = []
    for folder in (dir_a, dir_b):
        paths = list_images(folder)
        if not paths:
            raise DataError(f"{folder}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
        train.append(paths)
    n = cfg.val_from_train
    if n:
        for folder, paths in zip((dir_a, dir_b), train):
            if n >= len(paths):
                raise DataError(f"{folder}: --val-from-train {n} would hold out all {len(paths)} images; "
                                "give fewer")
        val = [hold_out(paths, n, cfg.seed, i) for i, paths in enumerate(train)]
        train = [[p for p in paths if p not in held] for paths, held in zip(train, map(set, val))]
        return Split(*train, *val, f"{n} images of each domain held out of {dir_a.name}/{dir_b.name} "
                                   f"(seed {cfg.seed})")
    root = Path(cfg.dataroot)
    val_a, val_b = (root / "valA", root / "valB") if cfg.direction == "a2b" else (root / "valB", root / "valA")
    if val_a.is_dir() and val_b.is_dir():
        val = [list_images(val_a), list_images(val_b)]
        if all(val):
            return Split(*train, *val, f"{val_a.name}/{val_b.name}")
    return Split(*train, [], [], "")


@dataclass(frozen=True)
class Domain:
    """One domain's files, read from their headers only: whether every one is grayscale, and
    the bytes they take decoded as 8-bit RGB (unreadable headers count as color, size 0)."""

    paths: list[Path]
    gray: bool
    nbytes: int


def scan_domain(paths: list[Path], limit: float) -> Domain:
    from PIL import Image

    paths = paths[: int(limit)] if math.isfinite(limit) else paths
    gray, nbytes = True, 0
    for path in paths:
        try:
            with Image.open(path) as im:
                gray = gray and im.mode in GRAY_MODES
                nbytes += im.width * im.height * 3
        except Exception:  # reported when the file is loaded
            gray = False
    return Domain(paths, gray, nbytes)


def resolve_channels(cfg: TrainConfig, domain_a: Domain, domain_b: Domain) -> TrainConfig:
    """`cfg` with --input-nc/--output-nc 0 replaced by what the data holds (1 for a domain whose
    every image is grayscale, else 3)."""
    found = {}
    for name, domain in (("input_nc", domain_a), ("output_nc", domain_b)):
        if not getattr(cfg, name):
            found[name] = 1 if domain.gray else 3
    if found:
        log.info("channels from the data: domain A %d, domain B %d", found.get("input_nc", cfg.input_nc),
                 found.get("output_nc", cfg.output_nc))
    return replace(cfg, **found) if found else cfg


class UnalignedDataset(Dataset):
    """Item i: A image i mod |A| and a B image (random, or i mod |B| with serial batches), of
    the split's training images.

    Returns `{"a": Tensor[Ca, S, S], "b": Tensor[Cb, S, S], "bad": str}` in the generators'
    value range, where `bad` lists (newline-separated) files that could not be read and were
    replaced by the next one. `self.cfg` is the config with the channels resolved from the data.
    With `in_memory`, every image is decoded once here and no file is read per step.
    """

    def __init__(self, cfg: TrainConfig, split: Split | None = None):
        self.split = split = split or split_dataset(cfg)
        domain_a, domain_b = (scan_domain(split.train_a, cfg.max_dataset_size),
                              scan_domain(split.train_b, cfg.max_dataset_size))
        self.cfg = cfg = resolve_channels(cfg, domain_a, domain_b)
        self.paths_a, self.paths_b = domain_a.paths, domain_b.paths
        self.value_range = value_range(cfg.generator_spec)
        nbytes = domain_a.nbytes + domain_b.nbytes
        self.in_memory = cfg.in_memory == "yes" or (cfg.in_memory == "auto" and nbytes <= MEMORY_BUDGET)
        self.cache: dict[Path, object] = {}
        self.cache_errors: dict[Path, str] = {}
        if self.in_memory:
            for path in (*self.paths_a, *self.paths_b):
                try:
                    self.cache[path] = read_rgb8(path)
                except DataError as e:
                    self.cache_errors[path] = str(e)
            log.info("%d training images held in memory (%.0f MiB)", len(self.cache), nbytes / 2**20)
        self.epoch = 0
        # The smallest side both networks take: a PatchGAN halves it n_layers times before a
        # 4x4 conv, a ResNet generator quarters it and reflection-pads the result.
        layers = 3 if cfg.netD == "basic" else (cfg.n_layers_D if cfg.netD == "n_layers" else 0)
        self.min_side = max(8, 2 ** layers * 2 if layers else 1, min_side(cfg.generator_spec))

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
                t = preprocess(self._image(path), **kw)
            except DataError as e:
                bad.append(str(e))
                continue
            if min(t.shape[-2:]) < self.min_side:
                bad.append(f"{path}: {t.shape[-1]}x{t.shape[-2]} after --preprocess {self.cfg.preprocess} is under "
                           f"the {self.min_side} pixels the networks need")
                continue
            return t
        raise DataError(f"{paths[0].parent}: none of the {len(paths)} images can be used ({bad[-1]})")

    def _image(self, path: Path):
        if not self.in_memory:
            return read_rgb8(path)
        if path in self.cache_errors:
            raise DataError(self.cache_errors[path])
        return self.cache[path]

    def __getitem__(self, index: int) -> dict:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        index_b = index % len(self.paths_b) if cfg.serial_batches else int(rng.integers(len(self.paths_b)))
        bad: list[str] = []
        kw = dict(mode=cfg.preprocess, load_size=cfg.load_size, crop_size=cfg.crop_size,
                  flip=not cfg.no_flip, rng=rng, value_range=self.value_range)
        a = self._load(self.paths_a, index % len(self.paths_a), bad, {**kw, "channels": cfg.input_nc})
        b = self._load(self.paths_b, index_b, bad, {**kw, "channels": cfg.output_nc})
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
