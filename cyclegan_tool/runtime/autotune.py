"""Measuring the candidates of a plan (runtime/plan.py) on this machine: it measures and
remembers, the planner's `choose` decides.

Two figures, kept apart because they depend on different things:
- **speed**, milliseconds per image of each candidate, depends on the architecture (not the
  weights), the input size, the machine and the runtimes' versions: a new checkpoint of an
  architecture measured here before reuses those timings and measures nothing;
- **fidelity**, PSNR of a candidate's output against the reference's (the exact way to run
  the model) on the run's first image, depends on the model's weights: it is measured once per
  model (content digest) and candidate.

Both are kept in `measurements.json` in the user cache; each record is validated when read and
ignored when malformed. A candidate that could not run for a reason outside the model (a full
disk, memory) is not recorded, so the next run measures it again. Timing: a warm-up and one
timed pass each, then `ROUNDS` alternating rounds for those within `SCREEN_MARGIN` of the
fastest, each timed pass right after an untimed one (ONNX Runtime's idle threads spin).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import numpy as np

from cyclegan_tool.cache import JsonCache, key, machine_id
from cyclegan_tool.fidelity import psnr
from cyclegan_tool.runtime.base import Backend
from cyclegan_tool.runtime.plan import Option

MIN_PSNR_DB = 35.0  # a way of running further than this from the reference's output is not used
ROUNDS = 3
SCREEN_MARGIN = 1.5  # runtimes slower than this times the fastest on their first timed pass are not timed again
SAMPLE_SIDE = 256  # the measuring sample is cropped to at most this square
PSNR_CAP = 99.0
STORE = JsonCache("measurements.json")


def runtime_versions(option: Option) -> str:
    from cyclegan_tool.runtime.facts import package_version

    name = {"pytorch": "torch", "tensorrt": "tensorrt"}.get(option.runtime, option.runtime)
    return f"{name} {package_version(name)}"


def speed_key(option: Option, arch: dict, shape: tuple[int, ...]) -> str:
    return key("speed", sorted(arch.items()), option.key, shape, machine_id(), runtime_versions(option))


def fidelity_key(option: Option, model_digest: str) -> str:
    return key("fidelity", model_digest, option.key, runtime_versions(option))


def _valid_ms(record) -> bool:
    return isinstance(record, dict) and isinstance(record.get("ms"), (int, float)) and record["ms"] > 0


def _valid_psnr(record) -> bool:
    return isinstance(record, dict) and isinstance(record.get("psnr"), (int, float))


def known(options: tuple[Option, ...], arch: dict, shape: tuple[int, ...], model_digest: str
          ) -> tuple[dict[str, float], dict[str, float]]:
    """The recorded milliseconds and PSNR of `options` (those recorded, each validated)."""
    ms, db = {}, {}
    for o in options:
        if (r := STORE.get(speed_key(o, arch, shape), _valid_ms)) is not None:
            ms[o.key] = float(r["ms"])
        if (r := STORE.get(fidelity_key(o, model_digest), _valid_psnr)) is not None:
            db[o.key] = float(r["psnr"])
    return ms, db


def record(option: Option, arch: dict, shape: tuple[int, ...], model_digest: str, *, ms: float | None = None,
           db: float | None = None) -> None:
    when = time.strftime("%Y-%m-%d %H:%M")
    if ms is not None:
        STORE.put(speed_key(option, arch, shape), {"ms": round(ms, 3), "option": option.key, "when": when})
    if db is not None:
        STORE.put(fidelity_key(option, model_digest), {"psnr": round(db, 2), "option": option.key, "when": when})


def fidelity_of(out: np.ndarray, reference: np.ndarray, value_range: tuple[float, float]) -> float:
    lo, hi = value_range
    if not np.isfinite(out).all():
        return 0.0
    return min(PSNR_CAP, psnr(out, reference, hi - lo))


def time_backends(backends: dict[str, Backend], x: np.ndarray) -> dict[str, float]:
    """Median milliseconds per pass of each (opened, already run once) backend on `x`; see the
    module docstring for the protocol."""
    times: dict[str, list[float]] = {}
    for k, be in backends.items():
        start = time.perf_counter()
        be.infer(x)
        times[k] = [time.perf_counter() - start]
    best = min(t[0] for t in times.values())
    contenders = [k for k in backends if times[k][0] <= SCREEN_MARGIN * best]
    for _ in range(ROUNDS if len(contenders) > 1 else 0):
        for k in contenders:
            backends[k].infer(x)  # untimed: the previous runtime's idle threads settle first
            start = time.perf_counter()
            backends[k].infer(x)
            times[k].append(time.perf_counter() - start)
    return {k: 1000 * statistics.median(v) / len(x) for k, v in times.items()}


def summary(options: tuple[Option, ...], choice: Option, ms: dict[str, float], db: dict[str, float],
            shape: tuple[int, ...], reference: Option) -> str:
    """The reason line's figures: the choice, then the others with why they lost."""
    def text(o: Option) -> str:
        t = f"{o.key} {ms[o.key]:.0f} ms" if o.key in ms and math.isfinite(ms[o.key]) else f"{o.key} (could not run)"
        if o.key in db and db[o.key] < MIN_PSNR_DB:
            t += f" ({db[o.key]:.1f} dB: under the {MIN_PSNR_DB:.0f} dB bar)"
        return t

    size = "x".join(map(str, shape[-2:]))
    head = f"{choice.key} {ms.get(choice.key, 0):.0f} ms per {size} image"
    if choice != reference and db.get(choice.key, PSNR_CAP) < PSNR_CAP:
        head += f", {db[choice.key]:.1f} dB from {reference.key}"
    others = ", ".join(text(o) for o in options if o != choice)
    return head + (f"; {others}" if others else "")


def sample_from(jobs: list, opts, info_like) -> Callable[[], np.ndarray | None]:
    """The measuring input for a planned run: its first readable image as the network will see
    it, cropped to at most SAMPLE_SIDE square and padded (reflected) up to it, so that every
    measurement is at one size (`sample_shape`), for a model described by `info_like` (a
    `ModelInfo`); None where no image of the first three can be read, or each is flat (instance
    norm divides a flat image's features by almost nothing, so its output measures only rounding)."""
    def sample() -> np.ndarray | None:
        from cyclegan_tool.conventions import padded_size
        from cyclegan_tool.imageio import decode
        from cyclegan_tool.runtime.translate import min_side, pad_batch, prepare

        for job in jobs[:3]:
            try:
                x = prepare(decode(job.src, max_pixels=opts.max_pixels), info_like, opts).x
            except Exception:
                continue
            x = x[..., :SAMPLE_SIDE, :SAMPLE_SIDE]
            lo, hi = info_like.value_range
            if float(x.std()) < 0.01 * (hi - lo):
                continue
            side = max(SAMPLE_SIDE, min_side(info_like))
            side = padded_size(side, side, info_like.pad_multiple)[0]
            return pad_batch([x], (side, side))  # reflected, or repeated where the image is too small
        return None

    return sample


def sample_shape(input_nc: int, pad_multiple: int, min_side_: int) -> tuple[int, int, int, int]:
    """The one shape every sample has (see `sample_from`)."""
    from cyclegan_tool.conventions import padded_size

    side = padded_size(max(SAMPLE_SIDE, min_side_), 1, pad_multiple)[0]
    return (1, input_nc, side, side)
