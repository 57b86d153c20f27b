"""Model files derived from a user's model and kept in the user cache (`forms_dir`): a
checkpoint's generator as an FP32 ONNX graph, an FP32 graph's Winograd form
(`export/winograd.py`), and a checkpoint's int8 form calibrated on images of a run.

Each is named by the SHA-256 of the file it comes from (and the direction and architecture
where a checkpoint holds several), made on first use and reused by later runs; the least
recently used go once they pass `FORMS_BYTES`. `--backend auto` (runtime/autotune.py)
measures them like any runtime and keeps one only within its fidelity bar.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

from cyclegan_tool.fileio import mark_used, prune_lru, sha256_file, user_cache_dir

# Making a checkpoint's int8 form (calibration, fidelity check, measuring it) costs ~4 s for the
# shipped horse2zebra weights and ~9 s for ResNet-9 ngf64 on 2 cores, and saves 19-100 ms per
# converted image: a first run of 192 horse2zebra images took the same time with it as without
# it (docs/BENCHMARKS.md); larger generators gain from fewer images.
INT8_MIN_IMAGES = 200
INT8_CALIBRATION_IMAGES = 8  # export/int8.py's minimum
# Forms kept, least recently used removed first: 2 GiB holds those of ~15 ResNet-9 ngf64
# checkpoints (45 MB exported, 80 MB Winograd form, 12 MB int8 form each).
FORMS_BYTES = 2 << 30
IN_USE_S = 120  # a form used this recently is not removed


def file_digest(path: Path) -> str:
    """SHA-256 of a model file, hashed once per process while the file is unchanged."""
    st = os.stat(path)
    return _digest(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def forms_dir() -> Path:
    """Where the derived files live: `$XDG_CACHE_HOME/cyclegan-tool/onnx`."""
    return user_cache_dir() / "onnx"


def _kept(out: Path, make: Callable[[], object]) -> Path:
    """`out`, made by `make()` unless it exists. Using a form marks it recently used; making one
    removes the least recently used forms past FORMS_BYTES (never one used in the last
    IN_USE_S seconds: the run's other forms, or another process's): a user who converts with
    checkpoint after checkpoint does not fill the disk, and a removed form is made again when
    its checkpoint comes back. Use is stamped beside the form (`fileio.used_stamp`): the form's
    own mtime names its compiled OpenVINO forms, and touching it would compile them anew."""
    if out.is_file():
        mark_used(out)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    make()
    mark_used(out)
    prune_lru(out.parent, "*.onnx", FORMS_BYTES, keep=(out,), min_age_s=IN_USE_S, stamps=True)
    return out


def exported_onnx(path: Path, direction: str | None, spec) -> Path:
    """A checkpoint's generator as an FP32 ONNX file in the cache, exported on first use. Its
    fidelity is not assumed: `autotune.measure` compares it with PyTorch FP32 like any candidate."""
    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.onnx_export import export_onnx

    out = forms_dir() / f"{file_digest(path)[:24]}-{direction or 'default'}-{_spec_tag(spec)}.onnx"
    return _kept(out, lambda: export_onnx(checkpoints.load_generator(path, direction=direction, spec=spec), out,
                                          check=False))


def winograd_onnx(src: Path) -> Path:
    """The Winograd form of an FP32 ONNX generator (`export/winograd.py`) in the cache, made on
    first use; BackendError where the graph has no 3x3 convolution it applies to."""
    from cyclegan_tool.errors import BackendError
    from cyclegan_tool.export.winograd import FORM_VERSION, rewrite

    out = forms_dir() / f"{file_digest(src)[:24]}.winograd{FORM_VERSION}.onnx"

    def make() -> None:
        import onnx

        from cyclegan_tool.export.onnx_export import save_model

        model, counts = rewrite(onnx.load(str(src)))
        if not counts["winograd"]:
            raise BackendError(f"{src}: no FP32 3x3 convolution to compute by Winograd")
        save_model(model, out, full_check=False)  # tests/test_winograd.py proves the rewrite

    return _kept(out, make)


def int8_onnx_path(path: Path, direction: str | None, spec) -> Path:
    """Where a checkpoint's int8 form is cached (one per file, direction and architecture)."""
    return forms_dir() / f"{file_digest(path)[:24]}-{direction or 'default'}-{_spec_tag(spec)}.int8.onnx"


def calibrated_int8(path: Path, direction: str | None, spec, calibration: list[Path] | None, out: Path,
                    min_psnr: float) -> Path:
    """The cached int8 form of a checkpoint's generator, calibrated on `calibration` (images of
    the run: its input domain) on first use and recorded in its metadata; written only within
    `min_psnr` dB of the FP32 graph on those images (`export/int8.py`)."""
    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.onnx_export import export_onnx

    if not out.is_file() and not calibration:
        raise FileNotFoundError(out)
    return _kept(out, lambda: export_onnx(checkpoints.load_generator(path, direction=direction, spec=spec), out,
                                          check=False, int8_calibration=list(calibration),
                                          calib_count=len(calibration), int8_min_psnr=min_psnr))


def describe_int8(path: Path) -> str:
    """What a cached int8 form says about its calibration, for the reason line."""
    from cyclegan_tool.runtime.ov_backend import onnx_metadata

    cal = onnx_metadata(path).get("calibration", {})
    return (f"int8 form calibrated on {cal.get('images', '?')} images of {cal.get('folder', '?')} "
            f"({cal.get('psnr_db_vs_fp32', '?')} dB from FP32 on them), cached as {path}")


def calibration_from(jobs: list) -> list[Path] | None:
    """The images of a planned run to calibrate a checkpoint's int8 form on (`calibration_pick`),
    where the run is large enough to pay for it (INT8_MIN_IMAGES); None for smaller runs."""
    return calibration_pick([job.src for job in jobs]) if len(jobs) >= INT8_MIN_IMAGES else None


def calibration_pick(files: list[Path]) -> list[Path]:
    """INT8_CALIBRATION_IMAGES of a run's `files`, spread over them after the first three (the
    measuring sample comes from those, so the fidelity bar is checked on an image the
    calibration did not see)."""
    from cyclegan_tool.imageio import spread

    return spread(files[3:], INT8_CALIBRATION_IMAGES)


def made_once(make: Callable[[], Path]) -> Callable[[], Path]:
    """`make`, run at most once per process: its file, or the error it raised, for every caller."""
    done: dict = {}

    def once() -> Path:
        if not done:
            try:
                done["path"] = make()
            except Exception as e:
                done["error"] = e
        if "error" in done:
            raise done["error"]
        return done["path"]

    return once


def _spec_tag(spec) -> str:
    import hashlib

    return "auto" if spec is None else hashlib.sha256(repr(spec).encode()).hexdigest()[:8]
