"""Features of an image folder, with a cache for reference folders.

The cache key covers the protocol, the feature network and every file's relative path and
SHA-256, so renaming, adding, removing or editing any file computes the features anew.
Entries live in `$XDG_CACHE_HOME/cyclegan-tool/fid/` (or `~/.cache/...`) unless told otherwise.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cyclegan_tool.cache import FileCache
from cyclegan_tool.errors import DataError
from cyclegan_tool.fileio import sha256_file
from cyclegan_tool.imageio import IMAGE_EXTENSIONS, decode, list_images
from cyclegan_tool.imageio import spread as spread_sample
from cyclegan_tool.metrics.features import FeatureExtractor

log = logging.getLogger("cyclegan_tool.metrics")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FolderFeatures:
    """`features`: float32 [N, D] for the N readable images; `gray`: all of them single-channel."""

    folder: Path
    features: np.ndarray
    gray: bool
    skipped: list[str] = field(default_factory=list)
    cached: bool = False

    @property
    def count(self) -> int:
        return len(self.features)


FEATURES = FileCache("fid", 1 << 30)  # real folders' features, least recently used removed past 1 GiB


def default_cache_dir() -> Path:
    return FEATURES.folder


# The reference implementation's test.py writes every visual of a model into one folder as
# NAME_<visual>.png: `test` models real and fake, `cycle_gan` models real_A, fake_B, rec_A,
# idt_B and the other direction's four.
# Longest first, so that NAME_fake_B reads as fake_B and not as fake.
REFERENCE_VISUALS = ("real_A", "real_B", "fake_A", "fake_B", "rec_A", "rec_B", "idt_A", "idt_B", "real", "fake")


def reference_results(folder: str | os.PathLike) -> tuple[str | None, str | None]:
    """For a `--fake` folder given without a pattern: where it is a reference test.py results
    folder (its inputs beside its outputs), the pattern of the outputs to score and a note on
    what is left out; (None, None) for any other folder. Both directions' outputs in one
    folder are a DataError: which one is meant cannot be guessed."""
    counts: dict[str, int] = {}
    for p in list_images(Path(folder)):
        visual = next((v for v in REFERENCE_VISUALS if p.stem.endswith(f"_{v}")), None)
        if visual is None:
            return None, None  # any other file: not such a folder
        counts[visual] = counts.get(visual, 0) + 1
    fakes = [v for v in ("fake", "fake_B", "fake_A") if v in counts]
    if len(counts) < 2 or not fakes:
        return None, None
    if len(fakes) > 1:
        raise DataError(f"{folder}: holds the reference test.py's outputs of both directions beside their inputs "
                        f"(*_fake_B and *_fake_A); score one with --fake-glob '*_fake_B.*' (A -> B) or "
                        f"'*_fake_A.*' (B -> A)")
    left = ", ".join(f"{n} *_{v}" for v, n in sorted(counts.items()) if v != fakes[0])
    return f"*_{fakes[0]}.*", (f"{left} images of the reference test.py (inputs and other visuals) left out: "
                               f"scoring its *_{fakes[0]} outputs only (--fake-glob to choose)")


def image_files(folder: str | os.PathLike, *, pattern: str | None = None, limit: int | None = None,
                spread: bool = False) -> list[Path]:
    """The images a metric reads from `folder` (recursively, sorted; `pattern` is a glob on names):
    with `limit`, the first N, or with `spread` N evenly spaced over the sorted list (a sample
    that covers every class of a folder sorted by class)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    files = list_images(folder)
    if pattern:
        files = [p for p in files if p.match(pattern)]
    if limit and spread:
        files = spread_sample(files, limit)
    elif limit:
        files = files[:limit]
    if not files:
        what = f"matching '{pattern}' " if pattern else ""
        raise DataError(f"{folder}: no images {what}found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def _cache_key(folder: Path, files: list[Path], extractor: FeatureExtractor) -> str:
    h = hashlib.sha256(extractor.key.encode())
    for p in files:
        h.update(f"\n{p.relative_to(folder).as_posix()}:{sha256_file(p)}".encode())
    return h.hexdigest()


def folder_features(folder: str | os.PathLike, extractor: FeatureExtractor, *, pattern: str | None = None,
                    limit: int | None = None, spread: bool = False, cache_dir: str | os.PathLike | None = None,
                    progress: Progress | None = None) -> FolderFeatures:
    """Features of the images in `folder`; unreadable files are skipped and listed.

    With `cache_dir`, the result is stored there and reused while the files are unchanged.
    Raises DataError when the folder has no readable image.
    """
    folder = Path(folder)
    return files_features(folder, image_files(folder, pattern=pattern, limit=limit, spread=spread), extractor,
                          cache_dir=cache_dir, progress=progress)


def files_features(folder: Path, files: list[Path], extractor: FeatureExtractor, *,
                   cache_dir: str | os.PathLike | None = None, progress: Progress | None = None) -> FolderFeatures:
    """Features of `files` (images under `folder`, e.g. a validation split held out of it);
    cached as `folder_features` caches a whole folder's."""
    store = name = None
    if cache_dir is not None:
        store = FEATURES if Path(cache_dir) == FEATURES.folder else FileCache("fid", FEATURES.limit, Path(cache_dir))
        name = _cache_key(folder, files, extractor)
        entry = store.get(name, ".npz")
        if entry is not None:
            try:
                with np.load(entry, allow_pickle=False) as z:
                    result = FolderFeatures(folder, z["features"], bool(z["gray"]), [str(s) for s in z["skipped"]],
                                            cached=True)
                if progress:
                    progress(len(files), len(files))
                return result
            except Exception:  # cut short or from another NumPy (BadZipFile, KeyError, ...): computed again
                log.warning("%s: unreadable cache entry, computing again", entry)
                store.remove(entry)
    feats, gray, skipped, pending = [], True, [], []

    def flush() -> None:
        if pending:
            feats.append(extractor.batch(pending))
            pending.clear()

    for i, path in enumerate(files):
        try:
            img = decode(path)
        except DataError as e:
            skipped.append(str(e))
            log.warning("skipped: %s", e)
        else:
            gray = gray and img.mode in GRAY_MODES
            pending.append(img.rgb)
            if len(pending) >= extractor.batch_size:
                flush()
        if progress:
            progress(i + 1, len(files))
    flush()
    if not feats:
        raise DataError(f"{folder}: none of its {len(files)} image files can be read ({skipped[0]})")
    result = FolderFeatures(folder, np.concatenate(feats), gray, skipped)
    if store is not None:
        buf = io.BytesIO()
        np.savez(buf, features=result.features, gray=np.array(gray), skipped=np.array(skipped, dtype=str))
        try:
            store.put_bytes(name, ".npz", buf.getvalue())
        except OSError as e:  # a full or read-only cache only costs computing again next time
            log.warning("could not cache the features of %s: %s", folder, e)
    return result
