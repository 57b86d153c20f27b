"""`--backend auto` on a CPU: the fastest runtime setting measured here, within a fidelity bar.

An ONNX model: ONNX Runtime (the reference), OpenVINO computing in FP32 and, on CPUs with
native bf16 (AVX512-BF16 or AMX), OpenVINO computing in bf16 (where OpenVINO is installed).
A checkpoint: PyTorch FP32 (the reference) and, on CPUs with native bf16, PyTorch under bf16
autocast and OpenVINO in bf16 on the generator exported to ONNX (cached beside the choices).
A shipped model with an int8 form (calibrated on real images of its input domain, recorded in
the file's metadata) adds that file on ONNX Runtime and OpenVINO. So does a checkpoint's int8
form: made once, for a run of at least `derived.INT8_MIN_IMAGES` images (one that pays for the
calibration), from a few of the run's own images, recorded in its metadata, kept in the cache
(these derived files: runtime/derived.py), and named in the reason line whenever it runs. A
candidate is eligible only if its output on the run's first image (not a calibration image) is
within `MIN_PSNR_DB` of the reference's.

The measurement (a warm-up and one timed pass each, then `ROUNDS` alternating rounds for the
runtimes within `SCREEN_MARGIN` of the fastest; see `measure`; a few seconds) runs once per
model (file and direction), machine (CPU, core count, runtime versions) and list of candidates for a
folder of at least `MIN_IMAGES` images, and its result is cached in
`$XDG_CACHE_HOME/cyclegan-tool/backends.json`; smaller runs reuse a cached result or take the
reference. The reason line says what was chosen and the figures it was chosen by.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from cyclegan_tool.fileio import atomic_write_json, user_cache_dir
from cyclegan_tool.runtime import derived
from cyclegan_tool.runtime.base import Backend

MIN_PSNR_DB = 35.0  # a runtime setting whose output is further than this from the FP32 reference's is not used
MIN_IMAGES = 8  # a folder this large pays for the measurement
ROUNDS = 3
SCREEN_MARGIN = 1.5  # runtimes slower than this times the fastest on their first timed pass are not timed again
SAMPLE_SIDE = 256  # the sample is cropped to at most this square


@dataclass(frozen=True)
class Candidate:
    key: str  # "onnxruntime", "openvino-fp32", "openvino-bf16", "int8-openvino-bf16", "pytorch-fp32", ...
    make: Callable[[], Backend]


def onnx_candidates(path: Path | Callable[[], Path], device: str, tag: str = "",
                    fp32_only: bool = False) -> list[Candidate]:
    """The runtimes for an ONNX file on this CPU, keys prefixed with `tag`; the first is the
    reference. An int8 form gets the same list tagged "int8-" (a shipped model's,
    `zoo/models.json`, or one calibrated for a checkpoint), measured against the FP32
    reference like any candidate. `path` may be a function making the file on first use.
    An FP32 graph (no tag) also gets its Winograd form on OpenVINO (`derived.winograd_onnx`), computed
    in bf16 on CPUs with native bf16 unless `fp32_only`, else in FP32."""
    from cyclegan_tool.devices import cpu_has_native_bf16
    from cyclegan_tool.runtime.ort_backend import OnnxRuntimeBackend

    file = path if callable(path) else (lambda: path)
    bf16 = cpu_has_native_bf16() and not fp32_only
    found = [Candidate(f"{tag}onnxruntime", lambda: OnnxRuntimeBackend(file(), device=device))]
    if openvino_version():
        from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

        found.append(Candidate(f"{tag}openvino-fp32", lambda: OpenVINOBackend(file(), device=device)))
        if bf16:
            found.append(Candidate(f"{tag}openvino-bf16",
                                   lambda: OpenVINOBackend(file(), device=device, compute="bf16")))
        if not tag:
            found.append(winograd_candidate(file, device, bf16))
    return found


def winograd_candidate(file: Callable[[], Path], device: str, bf16: bool, tag: str = "") -> Candidate:
    """OpenVINO on the Winograd form of the FP32 graph `file()` (made on first use)."""
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    form = derived.made_once(lambda: derived.winograd_onnx(file()))
    compute = "bf16" if bf16 else "graph"
    return Candidate(f"{tag}winograd-openvino-{'bf16' if bf16 else 'fp32'}",
                     lambda: OpenVINOBackend(form(), device=device, compute=compute))


def torch_candidates(path: Path, device: str, *, direction: str | None = None, spec=None,
                     calibration: list[Path] | None = None) -> list[Candidate]:
    """PyTorch FP32 (the reference) and, on CPUs with native bf16, bf16 autocast and OpenVINO
    in bf16 on the generator exported to ONNX (once per file and direction, in the cache);
    OpenVINO on that graph's Winograd form (in bf16 where native, else FP32); and the
    checkpoint's int8 form where one is cached or `calibration` images are given to make it
    (see `derived.calibration_from`)."""
    from cyclegan_tool.devices import cpu_has_native_bf16
    from cyclegan_tool.runtime.torch_backend import TorchBackend

    kwargs = dict(device=device, direction=direction, spec=spec)
    found = [Candidate("pytorch-fp32", lambda: TorchBackend(path, precision="fp32", **kwargs))]
    if cpu_has_native_bf16():
        found.append(Candidate("pytorch-bf16", lambda: TorchBackend(path, precision="bf16", **kwargs)))
        if openvino_version():
            from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

            found.append(Candidate("onnx-openvino-bf16", lambda: OpenVINOBackend(
                derived.exported_onnx(path, direction, spec), device=device, compute="bf16")))
    if openvino_version():
        found.append(winograd_candidate(lambda: derived.exported_onnx(path, direction, spec), device,
                                        cpu_has_native_bf16(), tag="onnx-"))
    int8 = derived.int8_onnx_path(path, direction, spec)
    if int8.is_file() or calibration:
        made = derived.made_once(lambda: derived.calibrated_int8(path, direction, spec, calibration, int8,
                                                                 MIN_PSNR_DB))
        found += onnx_candidates(made, device, tag="int8-")
    return found


def openvino_hint() -> str:
    """For the reason line where OpenVINO is missing: the CPU forms that win here need it."""
    if openvino_version():
        return ""
    return "; OpenVINO, not installed, adds faster CPU forms (`pip install openvino`)"


def openvino_version() -> str | None:
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__.split("-")[0]


def machine_key() -> str:
    import onnxruntime

    from cyclegan_tool.devices import cpu_has_native_bf16, cpu_model

    return (f"{cpu_model()}|{os.cpu_count()} cpus|bf16 {cpu_has_native_bf16()}|onnxruntime {onnxruntime.__version__}"
            f"|openvino {openvino_version()}|torch {torch.__version__}")


def cache_path() -> Path:
    return user_cache_dir() / "backends.json"


def _read_cache() -> dict:
    try:
        return json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, record: dict) -> None:
    cache = _read_cache()
    cache[key] = record
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache_path(), cache)
    except OSError:
        pass  # a read-only cache only costs a new measurement next time


def _summary(record: dict) -> str:
    ms, psnrs = record["ms"], record["psnr"]

    def other(k: str) -> str:  # a faster one that was not chosen says why
        low = psnrs.get(k, 99.0) < MIN_PSNR_DB
        return f"{k} {ms[k]:.0f} ms" + (f" ({psnrs[k]:.1f} dB: under the {MIN_PSNR_DB:.0f} dB bar)" if low else "")

    others = ", ".join(other(k) for k in ms if k != record["choice"])
    psnr = psnrs.get(record["choice"])
    fidelity = f", {psnr:.1f} dB from {next(iter(ms))}" if psnr is not None and psnr < 99 else ""
    return (f"{record['choice']} {ms[record['choice']]:.0f} ms per {record['size']} image{fidelity}"
            + (f"; {others}" if others else ""))


def choose(found: list[Candidate], path: Path, sample: Callable[[Backend], torch.Tensor | None] | None,
           variant: str = "") -> tuple[Backend, str]:
    """A backend for `path` (opened if it was measured now) and the reason. `found[0]` is the
    reference; `sample(reference_backend)` gives the network input to measure on; None: use a
    cached result only. `variant` tells apart models in one file (a checkpoint's directions)."""
    reference = found[0]
    if len(found) == 1:
        return reference.make(), reference.key
    by_key = {c.key: c for c in found}
    # The candidates are part of the key: a release that adds one measures again.
    key = f"{derived.file_digest(path)}{variant}|{machine_key()}|{','.join(c.key for c in found)}"
    record = _read_cache().get(key)
    if record and record.get("choice") in by_key:
        return by_key[record["choice"]].make(), f"{_summary(record)} (measured on this machine before)"
    if sample is None:
        return reference.make(), f"{reference.key} (the alternatives not measured here yet)"
    opened = reference.make().open()
    x = sample(opened)
    if x is None:
        return opened, f"{reference.key} (no readable image to measure the alternatives on)"
    kept: dict[str, Backend] = {}
    record = measure(opened, found[1:], x, reference.key, keep=kept)
    _write_cache(key, record)
    chosen = kept.pop(record["choice"], None)  # as measured: compiled for the sample's shape, warm
    for backend in kept.values():
        backend.close()
    if record["choice"] == reference.key:
        return opened, f"{_summary(record)} (measured now)"
    opened.close()
    return chosen or by_key[record["choice"]].make(), f"{_summary(record)} (measured now)"


def measure(reference: Backend, others: list[Candidate], x: torch.Tensor, ref_key: str = "onnxruntime",
            keep: dict | None = None) -> dict:
    """Median milliseconds per pass of each runtime on `x`, its PSNR against the reference's
    output (capped at 99 dB), and the fastest one within MIN_PSNR_DB. Every runtime runs `x`
    twice (its output, then one timed pass); those within the bar and within SCREEN_MARGIN of
    the fastest such pass are then timed in ROUNDS alternating rounds, each timed pass right
    after an untimed one, so that no runtime pays for the idle threads of the one before (ONNX
    Runtime spins). The others keep their single timing: they cannot win, and a first run on a
    small folder should not pay seconds to time them. The chosen runtime, if not the reference, is
    left open in `keep` (by its key) where given; the others are closed."""
    from cyclegan_tool.export import parity

    opened = {ref_key: reference}
    for c in others:
        try:
            opened[c.key] = c.make().open()
        except Exception:  # a runtime that cannot load this model is simply not a candidate
            continue
    outputs, times, choice = {}, {}, None
    try:
        for k in list(opened):
            try:
                outputs[k] = opened[k].infer(x)
                start = time.perf_counter()
                opened[k].infer(x)
                times[k] = [time.perf_counter() - start]
            except Exception:  # nor is one that fails on this input
                if k == ref_key:
                    raise
                opened.pop(k).close()
        lo, hi = reference.info.value_range
        psnr = {k: min(99.0, parity.psnr(outputs[k].numpy(), outputs[ref_key].numpy(), hi - lo)) for k in opened}
        eligible = [k for k in opened if psnr[k] >= MIN_PSNR_DB]
        best = min(times[k][0] for k in eligible)
        contenders = [k for k in eligible if times[k][0] <= SCREEN_MARGIN * best]
        for _ in range(ROUNDS if len(contenders) > 1 else 0):
            for k in contenders:
                opened[k].infer(x)  # untimed: the previous runtime's idle threads settle first
                start = time.perf_counter()
                opened[k].infer(x)
                times[k].append(time.perf_counter() - start)
        ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
        choice = min(eligible, key=ms.__getitem__)
    finally:
        for k, be in opened.items():
            if k == ref_key:
                continue
            if keep is not None and k == choice:
                keep[k] = be
            else:
                be.close()
    return {"choice": choice, "ms": ms, "psnr": psnr, "size": "x".join(map(str, x.shape[-2:])),
            "when": time.strftime("%Y-%m-%d %H:%M")}


def sample_from(jobs: list, opts) -> Callable[[Backend], torch.Tensor | None] | None:
    """The measuring input for a planned run: its first readable image as the network will see
    it (cropped to at most SAMPLE_SIDE square); None for runs under MIN_IMAGES images."""
    if len(jobs) < MIN_IMAGES:
        return None

    def sample(backend: Backend) -> torch.Tensor | None:
        from cyclegan_tool.conventions import padded_size
        from cyclegan_tool.imageio import decode
        from cyclegan_tool.runtime.translate import min_side, pad_batch, prepare

        for job in jobs[:3]:
            try:
                x = prepare(decode(job.src, max_pixels=opts.max_pixels), backend.info, opts).x
            except Exception:
                continue
            x = x[..., :SAMPLE_SIDE, :SAMPLE_SIDE]
            h, w = padded_size(*x.shape[-2:], backend.info.pad_multiple)
            low = min_side(backend.info)
            return pad_batch([x], (max(h, low), max(w, low)))
        return None

    return sample
