"""The export's self-check: ONNX Runtime output against PyTorch FP32 on random inputs.

Tolerances (outputs live in [-1, 1]):
- FP32 graph: max |onnx - torch| <= 1e-3.
- FP16 graph: PSNR >= 40 dB over the [-1, 1] range and max |diff| <= 0.1, no NaN. ONNX
  Runtime's CPU provider runs FP16 Conv by casting to FP32 internally, so on a CPU this
  checks the graph and its FP16-rounded weights; FP16 arithmetic itself is checked where
  a GPU runs the engine.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cyclegan_tool.checkpoints import LoadedGenerator
from cyclegan_tool.errors import ExportError
from cyclegan_tool.fidelity import psnr
from cyclegan_tool.models import min_side, pad_multiple, value_range

FP32_MAX_ABS = 1e-3
FP16_MIN_PSNR = 40.0
FP16_MAX_ABS = 0.1


def default_sizes(loaded: LoadedGenerator) -> tuple[tuple[int, int], ...]:
    m = pad_multiple(loaded.spec)
    if m > 4:  # U-Nets need multiples of 8 (Keras) up to 256
        s = -(-max(m, min_side(loaded.spec)) // m) * m
        return ((s, s), (s, 2 * s))
    return ((128, 128), (68, 100))


def ort_session(model_bytes: bytes, providers: list[str] | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, opts, providers=providers or ["CPUExecutionProvider"])


def check_parity(model, loaded: LoadedGenerator, precision: str,
                 sizes: tuple[tuple[int, int], ...] | None = None) -> dict:
    """Run both and compare; raises ExportError past the tolerance, else returns the figures."""
    session = ort_session(model.SerializeToString())
    gen = torch.Generator().manual_seed(0)
    lo, hi = value_range(loaded.spec)
    results = []
    for h, w in sizes or default_sizes(loaded):
        x = torch.rand(1, loaded.spec.input_nc, h, w, generator=gen) * (hi - lo) + lo
        with torch.no_grad():
            ref = loaded.net.float()(x).numpy()
        feed = x.numpy().astype(np.float16 if precision == "fp16" else np.float32)
        out = session.run(None, {session.get_inputs()[0].name: feed})[0].astype(np.float32)
        max_abs = float(np.abs(out - ref).max()) if np.isfinite(out).all() else math.inf
        p = psnr(out, ref, hi - lo) if np.isfinite(out).all() else 0.0
        results.append({"shape": [1, loaded.spec.input_nc, h, w], "max_abs": max_abs, "psnr_db": round(p, 2)})
        if precision == "fp32" and not max_abs <= FP32_MAX_ABS:
            raise ExportError(f"ONNX Runtime output differs from PyTorch by {max_abs:.2e} (max abs) at "
                              f"{h}x{w}; tolerance {FP32_MAX_ABS:.0e}; nothing was written")
        if precision == "fp16" and not (p >= FP16_MIN_PSNR and max_abs <= FP16_MAX_ABS):
            raise ExportError(f"FP16 ONNX output is off from PyTorch FP32 at {h}x{w}: PSNR {p:.1f} dB "
                              f"(need {FP16_MIN_PSNR:.0f}), max abs {max_abs:.3f} (need {FP16_MAX_ABS}); "
                              "nothing was written")
    return {"runtime": "onnxruntime CPU", "precision": precision, "checks": results}
