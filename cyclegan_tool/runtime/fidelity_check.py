"""The fidelity check of `--backend auto` on a CPU: the planner (runtime/plan.py) lists the ways
to run a model in the order they are tried, fastest first; the first whose output on the run's
first image is within `MIN_PSNR_DB` of the reference's (the exact way to run the model) runs.

The figure depends on the model's weights and the arithmetic of the way and CPU: it is measured
once per model (content digest), candidate, runtime version and machine, and kept in `measurements.json` in the user cache (each record
validated when read, ignored when malformed). A candidate that could not run for a reason
outside the model (a full disk, memory) is not recorded, so the next run tries it again. Nothing
here times anything: which way runs never depends on timings or on what the cache holds, only
on the model, the request and the machine's features.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cyclegan_tool.cache import JsonCache, key, machine_id
from cyclegan_tool.fidelity import psnr
from cyclegan_tool.runtime.plan import Option, Plan

MIN_PSNR_DB = 35.0  # a way of running further than this from the reference's output is not used
SAMPLE_SIDE = 256  # the checking sample is cropped to at most this square
PSNR_CAP = 99.0
STORE = JsonCache("measurements.json")


def runtime_versions(option: Option) -> str:
    from cyclegan_tool.runtime.facts import package_version

    name = {"pytorch": "torch", "tensorrt": "tensorrt"}.get(option.runtime, option.runtime)
    return f"{name} {package_version(name)}"


def fidelity_key(option: Option, model_digest: str) -> str:
    """Per model, way, runtime version and machine: bf16 and int8 arithmetic round differently on
    different CPUs, so a cache shared between machines (a networked home) decides nothing for another."""
    return key("fidelity", model_digest, option.key, runtime_versions(option), machine_id())


def _valid_psnr(record) -> bool:
    return isinstance(record, dict) and isinstance(record.get("psnr"), (int, float))


def known_fidelity(options: tuple[Option, ...], model_digest: str) -> dict[str, float]:
    """The recorded PSNR of each of `options` for this model (those recorded, each validated)."""
    db = {}
    for o in options:
        if (r := STORE.get(fidelity_key(o, model_digest), _valid_psnr)) is not None:
            db[o.key] = float(r["psnr"])
    return db


def record_fidelity(option: Option, model_digest: str, db: float) -> None:
    import time

    STORE.put(fidelity_key(option, model_digest), {"psnr": round(db, 2), "option": option.key,
                                                   "when": time.strftime("%Y-%m-%d %H:%M")})


def fidelity_of(out: np.ndarray, reference: np.ndarray, value_range: tuple[float, float]) -> float:
    lo, hi = value_range
    if not np.isfinite(out).all():
        return 0.0
    return min(PSNR_CAP, psnr(out, reference, hi - lo))


def summary(plan: Plan, choice: Option, db: dict[str, float], bar: float) -> str:
    """The reason line's words: the choice and its fidelity, and why the ways before it were passed over."""
    def passed_over(o: Option) -> str:
        got = db.get(o.key)
        if got is None or got == -np.inf:
            return f"{o.key} could not run now"
        return f"{o.key} cannot run this model" if got == 0.0 else f"{o.key} {got:.1f} dB (under {bar:.0f})"

    before = plan.candidates[:plan.candidates.index(choice)]
    head = choice.key
    if choice != plan.reference:
        head += f", {db[choice.key]:.1f} dB from {plan.reference.key}" if db.get(choice.key, 0) < PSNR_CAP else \
            f", identical to {plan.reference.key}"
    if before:
        head += "; passed over: " + ", ".join(passed_over(o) for o in before)
    return head


def sample_from(jobs: list, opts, info_like) -> Callable[[], np.ndarray | None]:
    """The measuring input for a planned run: its first readable image (a clip's first frame)
    as the network will see it, cropped to at most SAMPLE_SIDE square and padded (reflected) up
    to it, for a model described by `info_like` (a `ModelInfo`); None where no image of the first
    three can be read, or each is flat (instance norm divides a flat image's features by almost
    nothing, so its output measures only rounding).

    The sample runs on the compiled form the image itself will (runtime/ov_compiled.py: one
    image of 256x256 has a form of its own): where the square is such a size and the image's
    own is not, the sample is one pad step narrower. The check then measures the form the run
    uses, and a first run compiles one form, not two."""
    def sample() -> np.ndarray | None:
        from cyclegan_tool.conventions import padded_size
        from cyclegan_tool.imageio import DecodedImage, decode
        from cyclegan_tool.runtime.ov_compiled import form_for
        from cyclegan_tool.runtime.translate import min_side, pad_batch, prepare
        from cyclegan_tool.videoio import first_frame, is_video_name

        for job in jobs[:3]:
            try:
                if is_video_name(job.src):  # a clip: its first frame, as the clip's run will see it
                    image = DecodedImage(rgb=first_frame(job.src), alpha=None, mode="RGB")
                else:
                    image = decode(job.src, max_pixels=opts.max_pixels)
                prep = prepare(image, info_like, opts)
            except Exception:
                continue
            x = prep.x[..., :SAMPLE_SIDE, :SAMPLE_SIDE]
            lo, hi = info_like.value_range
            if float(x.std()) < 0.01 * (hi - lo):
                continue
            side = max(SAMPLE_SIDE, min_side(info_like))
            side = padded_size(side, side, info_like.pad_multiple)[0]
            size = (side, side)
            channels = x.shape[0]
            if form_for((1, channels, *size)) != form_for((1, channels, *prep.padded)):
                size = (side, side - info_like.pad_multiple)
                x = x[..., : size[1]]
            return pad_batch([x], size)  # reflected, or repeated where the image is too small
        return None

    return sample
