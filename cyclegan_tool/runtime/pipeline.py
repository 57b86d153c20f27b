"""The folder pipeline `convert` and the GUI share: decode ahead in a thread pool, batch
images of equal padded size, infer, encode and write in writer threads.

`run_convert` is a generator of `Progress` events ending with one `Summary`; it checks
`cancel` between images, and a cancelled run leaves no half-written file (every write
is a temp file renamed into place).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cyclegan_tool.conventions import network_to_pixels
from cyclegan_tool.errors import ConfigError, CycleGANError, ModelUnusable
from cyclegan_tool.fileio import atomic_write
from cyclegan_tool.imageio import decode, encode
from cyclegan_tool.runtime.base import Backend
from cyclegan_tool.runtime.jobs import Job
from cyclegan_tool.runtime.options import ConvertOptions
from cyclegan_tool.runtime.tiling import translate_tiled
from cyclegan_tool.runtime.translate import Prepared, finish, infer_within_limits, pad_batch, prepare, tile_size

log = logging.getLogger("cyclegan_tool.convert")


@dataclass(frozen=True)
class Progress:
    """One file finished: `status` is converted, skipped or failed."""

    done: int
    total: int
    job: Job
    status: str
    message: str = ""
    elapsed: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class Summary:
    total: int
    converted: int
    skipped: int
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False
    backend: str = ""
    notes: list[str] = field(default_factory=list)  # one line per kind of file handled partially
    errors: list[str] = field(default_factory=list)  # what went wrong beyond single files (a lost worker)
    clips: int = 0  # clips and animations among `converted`
    frames: int = 0  # their frames

    @property
    def images_per_s(self) -> float:
        return self.converted / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled and not self.errors

    def line(self) -> str:
        clips = f" ({self.clips} clip(s), {self.frames} frames)" if self.clips else ""
        s = (f"{self.converted} converted{clips}, {self.skipped} skipped, {len(self.failed)} failed of {self.total} "
             f"in {self.seconds:.1f}s ({self.images_per_s:.1f} images/s, {self.backend})")
        return s + (" - cancelled" if self.cancelled else "")


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or "out of memory" in str(e).lower()


def _oom_hint(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if _is_oom(e):
        text += " (out of memory even alone: use --tile, e.g. --tile 512)"
    return text


def run_convert(jobs: list[Job], backend: Backend, opts: ConvertOptions,
                cancel: threading.Event | None = None, exact=None) -> Iterator[Progress | Summary]:
    """Translate every job with an opened `backend`; yields Progress per file, then a Summary.

    `exact(x)`: how an image too large for one pass (or over `--tile`) is translated exactly
    (runtime/banded.py over the model's FP32 generator; the runner makes it); without it (an
    engine) such images go in overlapping tiles, each normalised on its own, and the summary says so.
    Before any work: refuses a model whose channels are neither RGB nor gray, and an output
    folder that cannot be written; removes temporary files a killed run left for these outputs.
    """
    cancel = cancel or threading.Event()
    info = backend.info
    check_model_channels(info)
    prepare_output_folders(jobs)
    multi_frame: list[Path] = []
    read_as_luma: list[Path] = []
    float_scales: dict[str, list[Path]] = {}
    tiled: list[Path] = []
    clip_frames: list[int] = []
    corrupt: list[str] = []
    notes_from_clips: list[str] = []
    flickers: list[tuple[Path, float]] = []
    total, done, converted, skipped = len(jobs), 0, 0, 0
    failed: list[tuple[Path, str]] = []
    t0 = time.perf_counter()

    def event(job: Job, status: str, message: str = "") -> Progress:
        nonlocal done
        done += 1
        return Progress(done, total, job, status, message, time.perf_counter() - t0)

    todo, redone = [], []
    for job in jobs:
        if job.skip:
            skipped += 1
            yield event(job, "skipped", job.skip)
        elif opts.skip_existing and job.dst.exists():
            if complete_output(job.dst):
                skipped += 1
                yield event(job, "skipped", "output exists")
            else:  # cut short, or empty: converted again (outputs are written atomically, so not ours)
                redone.append(job.dst)
                todo.append(job)
        else:
            todo.append(job)

    clips = [job for job in todo if is_clip(job.src, opts)]
    todo = [job for job in todo if job not in clips]
    batch = info.batch_for(opts.batch_for("cuda" if backend.device.startswith("cuda") else "cpu"))
    decoder = ThreadPoolExecutor(opts.decode_workers, thread_name_prefix="decode")
    writer = ThreadPoolExecutor(opts.write_workers, thread_name_prefix="write")
    window = max(8, 4 * batch)
    decoding: deque[tuple[Job, Future]] = deque()
    writing: deque[tuple[Job, Future]] = deque()
    groups: dict[tuple[int, int], list[tuple[Job, Prepared]]] = {}
    queue = iter(todo)

    def load(job: Job) -> Prepared:
        img = decode(job.src, max_pixels=opts.max_pixels)
        if img.frames > 1:
            multi_frame.append(job.src)
        if img.scale:
            float_scales.setdefault(img.scale, []).append(job.src)
        if info.spec.input_nc == 1 and not is_gray(img):
            read_as_luma.append(job.src)
        return prepare(img, info, opts)

    def refill() -> None:
        while len(decoding) < window and not cancel.is_set():
            job = next(queue, None)
            if job is None:
                return
            decoding.append((job, decoder.submit(load, job)))

    def write(job: Job, rgb, alpha) -> None:
        data = encode(job.dst, rgb, alpha, quality=opts.quality)
        atomic_write(job.dst, lambda f: f.write(data))

    def infer(x):
        return infer_within_limits(backend.infer, x, info, batch)

    def infer_group(items: list[tuple[Job, Prepared]]) -> list[tuple[Job, str]]:
        """Run one batch; returns (job, error) for the images that failed. Out of memory on a
        batch retries its images one by one; any other error fails the batch's images."""
        try:
            if items[0][1].large:
                job, prep = items[0]
                x = pad_batch([prep.x], prep.padded)
                if exact is not None:
                    y = exact(x)
                else:  # an engine: its profile bounds the input, and it has no other way in
                    t = tile_size(info, opts)
                    y = translate_tiled(x, infer, t, min(opts.tile_overlap, t // 4), batch)
                    tiled.append(job.src)
                outs = [finish(y, prep, info.value_range)]
            else:
                y = infer(pad_batch([p.x for _, p in items], items[0][1].padded))
                outs = [finish(y[i : i + 1], p, info.value_range) for i, (_, p) in enumerate(items)]
            if not all(np.isfinite(o).all() for o in outs):
                raise FloatingPointError("the model gave NaN or infinite values (are its weights finite?)")
        except ModelUnusable:  # not this batch's fault: the run ends with one error
            raise
        except Exception as e:  # CUDA/ORT/TensorRT errors of every kind are this batch's failure
            if len(items) > 1 and _is_oom(e):
                return [err for item in items for err in infer_group([item])]
            return [(job, f"{job.src}: translation failed: {_oom_hint(e)}") for job, _ in items]
        for (job, prep), out in zip(items, outs):
            rgb = network_to_pixels(out[0], info.value_range)  # [H, W, 1] is written as grayscale
            writing.append((job, writer.submit(write, job, rgb, prep.alpha)))
        return []

    def drain(limit: int) -> Iterator[Progress]:
        """Report finished writes; wait while more than `limit` are in flight (bounded memory)."""
        nonlocal converted
        while writing and (len(writing) > limit or writing[0][1].done()):
            job, fut = writing.popleft()
            try:
                fut.result()
                converted += 1
                yield event(job, "converted")
            except Exception as e:  # encode/IO errors are per-file failures
                msg = f"cannot write {job.dst}: {_oom_hint(e)}"
                failed.append((job.src, msg))
                yield event(job, "failed", msg)

    def fail(errors: list[tuple[Job, str]]) -> Iterator[Progress]:
        for job, msg in errors:
            failed.append((job.src, msg))
            yield event(job, "failed", msg)

    try:
        refill()
        while decoding and not cancel.is_set():
            job, fut = decoding.popleft()
            refill()
            try:
                prep = fut.result()
            except CycleGANError as e:
                yield from fail([(job, str(e))])
                continue
            except Exception as e:  # out of memory or any other error while decoding/preparing
                yield from fail([(job, f"{job.src}: cannot prepare the image: {_oom_hint(e)}")])
                continue
            if prep.large:
                yield from fail(infer_group([(job, prep)]))
            else:
                group = groups.setdefault(prep.padded, [])
                group.append((job, prep))
                pending = sum(len(g) for g in groups.values())
                if len(group) >= batch or pending >= window:
                    key = prep.padded if len(group) >= batch else max(groups, key=lambda k: len(groups[k]))
                    yield from fail(infer_group(groups.pop(key)))
            yield from drain(limit=2 * opts.write_workers)
        for key in list(groups):
            if cancel.is_set():
                break
            yield from fail(infer_group(groups.pop(key)))
        yield from drain(limit=0)
        for job in clips:  # then the clips and animations, one at a time
            if cancel.is_set():
                break
            outcome = yield from run_one_clip(job, backend, opts, infer, cancel, exact)
            if isinstance(outcome, str):
                yield from fail([(job, outcome)])
            elif outcome is not None:
                converted += 1
                clip_frames.append(outcome.frames)
                corrupt.extend(outcome.corrupt)
                notes_from_clips.extend(outcome.notes)
                if outcome.flicker is not None:
                    flickers.append((job.src, outcome.flicker))
                yield event(job, "converted", f"{outcome.frames} frames")
    finally:
        for _, fut in decoding:
            fut.cancel()
        decoder.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True)
    notes = []
    if multi_frame:
        notes.append(f"{len(multi_frame)} file(s) have several pages; only the first page was converted: "
                     f"{_names(multi_frame)}")
    if read_as_luma:
        notes.append(f"{len(read_as_luma)} color file(s) were read as grayscale (luma), as the model takes one "
                     f"channel: {_names(read_as_luma)}")
    for scale, paths in sorted(float_scales.items()):
        notes.append(f"{len(paths)} float image(s) had values within {scale.replace('-', '..')} and were read as "
                     f"that range: {_names(paths)}")
    if tiled:
        notes.append(f"{len(tiled)} image(s) were larger than the engine takes and were translated in overlapping "
                     "tiles, each normalised with its own statistics (close to, not equal to, one pass; the .onnx "
                     f"model translates them exactly): {_names(tiled)}")
    if redone:
        notes.append(f"{len(redone)} earlier output(s) were incomplete and were converted again: {_names(redone)}")
    notes += notes_from_clips
    if corrupt:
        notes.append(f"{len(corrupt)} frame(s) could not be decoded and were skipped: " + "; ".join(corrupt[:3])
                     + (" ..." if len(corrupt) > 3 else ""))
    for src, ratio in flickers:
        notes.append(f"{src.name}: flicker {ratio:.2f} (mean change between consecutive frames, output over input"
                     f"{'; with --temporal-blend ' + str(opts.temporal_blend) if opts.temporal_blend else ''})")
    yield Summary(total=total, converted=converted, skipped=skipped, failed=failed,
                  seconds=time.perf_counter() - t0, cancelled=cancel.is_set(), backend=backend.describe(),
                  notes=notes, clips=len(clip_frames), frames=sum(clip_frames))


def is_clip(path: Path, opts: ConvertOptions) -> bool:
    """A video file, or (unless `--frames first`) an animated GIF or WebP."""
    from cyclegan_tool.videoio import ANIMATED_EXTENSIONS, is_video_name

    if is_video_name(path):
        return True
    if opts.frames == "first" or not path.suffix.lower() in ANIMATED_EXTENSIONS:
        return False
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1) or 1) > 1
    except Exception:
        return False  # the image path reports what is wrong with it


def run_one_clip(job: Job, backend: Backend, opts: ConvertOptions, infer, cancel, exact):
    """Translate one clip or animation, passing its FrameProgress on; returns its ClipResult, or
    the reason it failed (a string), or None when cancelled."""
    from cyclegan_tool.runtime.video import ClipResult, run_animation, run_clip
    from cyclegan_tool.videoio import is_video_name

    try:
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        if not is_video_name(job.src):
            return run_animation(job.src, job.dst, backend, opts, infer, exact)
        outcome = None
        for item in run_clip(job.src, job.dst, backend, opts, infer, cancel, exact):
            if isinstance(item, ClipResult):
                outcome = item
            else:
                yield item
        return outcome
    except CycleGANError as e:
        return str(e)
    except Exception as e:  # anything else while translating this clip is this clip's failure
        return f"{job.src}: the clip could not be translated ({_oom_hint(e)})"


def complete_output(path: Path) -> bool:
    """Whether an existing output is whole: a clip with a decodable frame, or a whole image."""
    from cyclegan_tool.videoio import is_complete_clip, is_video_name

    return is_complete_clip(path) if is_video_name(path) else complete(path)


def complete(path: Path) -> bool:
    """Whether an existing output is a whole image (decodes to its last pixel)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:
        return False


def _names(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in sorted(paths)[:3]) + (" ..." if len(paths) > 3 else "")


def is_gray(img) -> bool:
    """Whether a decoded file was grayscale (its three channels are copies)."""
    return img.mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F") or (
        bool((img.rgb[..., 0] == img.rgb[..., 1]).all()) and bool((img.rgb[..., 1] == img.rgb[..., 2]).all()))


def check_model_channels(info) -> None:
    """Images are read as RGB or gray and written as such: refuse other channel counts before any
    file is read."""
    spec = info.spec
    if spec.input_nc not in (1, 3) or spec.output_nc not in (1, 3):
        raise ConfigError(f"{info.source}: the model maps {spec.input_nc} -> {spec.output_nc} channels; convert "
                          "handles RGB (3) and grayscale (1) images only")


def prepare_output_folders(jobs: list[Job]) -> None:
    """Create the output folders, prove each is writable, and remove the temporary files a killed
    run left for these outputs (`.NAME.*.tmp`, as `atomic_write` names them)."""
    by_folder: dict[Path, set[str]] = {}
    for job in jobs:
        by_folder.setdefault(job.dst.parent, set()).add(job.dst.name)
    removed = 0
    for folder, names in by_folder.items():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".cyclegan-write-check-", delete=True)
            probe.close()
        except OSError as e:
            raise ConfigError(f"{folder}: cannot write the outputs there ({e.strerror or e})") from None
        for stale in folder.glob(".*.tmp"):
            if any(stale.name.startswith(f".{name}.") for name in names):
                stale.unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", removed)
