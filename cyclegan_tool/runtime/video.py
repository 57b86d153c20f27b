"""One clip through the model: decoding ahead in a thread, frames batched through the backend
as images are (the same preparation, batching and large-frame handling), encoding and writing
behind in another thread, with bounded queues (a long clip takes no more memory than a short
one). The output goes to a temporary file beside its final name and is renamed only when it is
whole: a killed run leaves nothing under the final name.

Flicker, measured: the mean absolute change between consecutive output frames divided by the
same for the input frames (1: the output changes as much as the input does; a frame-by-frame
GAN is often well above). `--temporal-blend A` (off by default) blends each output frame with
the previous blended one, y'_t = A y'_{t-1} + (1 - A) y_t: less flicker, at the cost of ghosting
where things move.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cyclegan_tool.conventions import network_to_pixels
from cyclegan_tool.errors import CycleGANError
from cyclegan_tool.imageio import DecodedImage
from cyclegan_tool.runtime.base import Backend
from cyclegan_tool.runtime.options import ConvertOptions
from cyclegan_tool.runtime.translate import finish, pad_batch, prepare

QUEUE = 16  # frames in flight on each side of the model


@dataclass(frozen=True)
class FrameProgress:
    """Frames done in the clip being translated."""

    src: Path
    frames: int
    total: int  # an estimate where the container does not say
    frames_per_s: float


@dataclass
class ClipResult:
    frames: int = 0
    corrupt: list[str] = field(default_factory=list)  # "12.48 s: reason"
    flicker: float | None = None  # output change / input change between consecutive frames
    notes: list[str] = field(default_factory=list)


class _Flicker:
    def __init__(self):
        self.prev_in = self.prev_out = None
        self.d_in = self.d_out = 0.0

    def add(self, rgb_in: np.ndarray, rgb_out: np.ndarray) -> None:
        if self.prev_in is not None and self.prev_in.shape == rgb_in.shape and self.prev_out.shape == rgb_out.shape:
            self.d_in += float(np.abs(rgb_in.astype(np.int16) - self.prev_in).mean())
            self.d_out += float(np.abs(rgb_out.astype(np.int16) - self.prev_out).mean())
        self.prev_in, self.prev_out = rgb_in.astype(np.int16), rgb_out.astype(np.int16)

    @property
    def ratio(self) -> float | None:
        return self.d_out / self.d_in if self.d_in > 0 else None


def translate_frames(frames: list[np.ndarray], infer, info, opts: ConvertOptions, exact) -> list[np.ndarray]:
    """uint8 RGB frames of one size -> translated float frames `[C, H, W]` in the model's range."""
    preps = [prepare(DecodedImage(rgb=f, alpha=None, mode="RGB"), info, opts) for f in frames]
    if preps[0].large and exact is not None:
        return [finish(exact(pad_batch([p.x], p.padded)), p, info.value_range)[0] for p in preps]
    y = infer(pad_batch([p.x for p in preps], preps[0].padded))
    return [finish(y[i : i + 1], p, info.value_range)[0] for i, p in enumerate(preps)]


def run_clip(src: Path, dst: Path, backend: Backend, opts: ConvertOptions, infer: Callable,
             cancel: threading.Event, exact=None) -> Iterator[FrameProgress | ClipResult]:
    """Translate the clip `src` into `dst`; yields FrameProgress, then one ClipResult. Raises
    CycleGANError for a clip that cannot be opened or written (the caller fails that file)."""
    from cyclegan_tool.videoio import Corrupt, Frame, Reader, Writer

    info = backend.info
    batch = info.batch_for(opts.batch_for("cuda" if backend.device.startswith("cuda") else "cpu"))
    result = ClipResult()
    reader = Reader(src)
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp = Path(name)
    writer = None
    inbox: queue.Queue = queue.Queue(QUEUE)
    outbox: queue.Queue = queue.Queue(QUEUE)
    failure: list[BaseException] = []
    stop = threading.Event()

    def decode() -> None:
        try:
            for item in reader.items():
                while not stop.is_set():
                    try:
                        inbox.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # handed to the main thread
            failure.append(e)
        finally:
            inbox.put(None)

    def write() -> None:
        try:
            while (item := outbox.get()) is not None:
                if isinstance(item, tuple):
                    writer.frame(*item)
                else:
                    writer.packet(item)
        except BaseException as e:
            failure.append(e)
            stop.set()
            while outbox.get() is not None:  # let the producer finish
                pass

    try:
        writer = Writer(tmp, reader, codec=opts.codec, crf=opts.crf, suffix=dst.suffix.lower())
        if writer.odd:
            result.notes.append(f"{src}: {reader.info.width}x{reader.info.height} is odd, so it was encoded 4:4:4 "
                                "(exact size; some players want 4:2:0, which needs even sizes)")
        decoder = threading.Thread(target=decode, name="decode-clip", daemon=True)
        encoder = threading.Thread(target=write, name="write-clip", daemon=True)
        decoder.start()
        encoder.start()
        flicker, blended, pending = _Flicker(), None, []
        t0 = time.perf_counter()
        total = reader.info.estimate

        def flush() -> None:
            nonlocal blended
            if not pending:
                return
            outs = translate_frames([f.rgb for f in pending], infer, info, opts, exact)
            for f, y in zip(pending, outs):
                if not np.isfinite(y).all():
                    raise CycleGANError(f"{src}: the model gave NaN or infinite values at {f.time:.2f} s")
                if opts.temporal_blend and blended is not None and blended.shape == y.shape:
                    y = opts.temporal_blend * blended + (1 - opts.temporal_blend) * y
                blended = y
                rgb = network_to_pixels(y, info.value_range)
                if rgb.shape[-1] == 1:
                    rgb = np.repeat(rgb, 3, axis=2)
                flicker.add(f.rgb, rgb)
                outbox.put((rgb, f.pts, f.time_base))
                result.frames += 1
            pending.clear()

        while (item := inbox.get()) is not None:
            if cancel.is_set() or failure:
                stop.set()
                continue
            if isinstance(item, Frame):
                if pending and pending[0].rgb.shape != item.rgb.shape:
                    flush()
                pending.append(item)
                if len(pending) >= batch:
                    flush()
                    yield FrameProgress(src, result.frames, max(total, result.frames),
                                        result.frames / (time.perf_counter() - t0))
            elif isinstance(item, Corrupt):
                result.corrupt.append(f"{item.time:.2f} s: {item.message}" if item.time >= 0 else item.message)
            else:
                outbox.put(item)  # an audio or subtitle packet, copied
        if not cancel.is_set() and not failure:
            flush()
        outbox.put(None)
        encoder.join()
        decoder.join()
        if failure:
            raise failure[0]
        if cancel.is_set():
            writer.abort()
            return
        if result.frames == 0:
            raise CycleGANError(f"{src}: no frame of the clip could be decoded")
        writer.close()
        os.replace(tmp, dst)
        result.flicker = flicker.ratio
        yield FrameProgress(src, result.frames, result.frames, result.frames / (time.perf_counter() - t0))
        yield result
    except CycleGANError:
        raise
    except Exception as e:
        raise CycleGANError(f"{src}: the clip could not be translated ({str(e).splitlines()[0] if str(e) else e})"
                            ) from None
    finally:
        stop.set()
        reader.close()
        if writer is not None and tmp.exists():
            writer.abort()
        tmp.unlink(missing_ok=True)


def run_animation(src: Path, dst: Path, backend: Backend, opts: ConvertOptions, infer: Callable,
                  exact=None) -> ClipResult:
    """An animated GIF or WebP, every frame translated (transparency kept), written atomically."""
    from cyclegan_tool.fileio import atomic_write
    from cyclegan_tool.videoio import read_animation, write_animation

    info = backend.info
    frames, durations, meta = read_animation(src)
    result, flicker, blended, outs = ClipResult(), _Flicker(), None, []
    for frame in frames:
        rgb, alpha = frame[..., :3], frame[..., 3] if frame.shape[-1] == 4 else None
        y = translate_frames([np.ascontiguousarray(rgb)], infer, info, opts, exact)[0]
        if opts.temporal_blend and blended is not None and blended.shape == y.shape:
            y = opts.temporal_blend * blended + (1 - opts.temporal_blend) * y
        blended = y
        out = network_to_pixels(y, info.value_range)
        out = np.repeat(out, 3, axis=2) if out.shape[-1] == 1 else out
        flicker.add(rgb, out)
        outs.append(np.concatenate([out, alpha[..., None]], axis=2) if alpha is not None else out)
        result.frames += 1
    data = write_animation(dst, outs, durations, meta["loop"])
    atomic_write(dst, lambda f: f.write(data))
    result.flicker = flicker.ratio
    return result

