"""Post-training int8 quantization of an exported generator, calibrated on real images.

`export --int8 FOLDER` quantizes the FP32 graph's convolutions to int8 (QDQ format: weights
per output channel, activations per tensor and symmetric: zero points of 0 spare OpenVINO the
zero-point subtractions, 31.8 against 35.1 ms per 256x256 image for the shipped horse2zebra
generator, for 0.6 dB; instance norm and the transposed (upsampling)
convolutions stay float: on the shipped horse2zebra generator, quantizing everything gave
34.8 dB against FP32, leaving the two transposed convolutions float 42.1 dB (the first release), and no other
single layer mattered by more than 0.3 dB), with activation ranges
measured on images of the model's input domain from FOLDER, prepared the way `convert` feeds
them. There is no int8 model without calibration images. The file records the calibration
(folder, count, size, a digest of the files) in its metadata, and is written only if its
outputs stay within `MIN_PSNR_DB` of the FP32 graph's on those images (the PSNR is recorded
too). ONNX Runtime and OpenVINO both run QDQ graphs with int8 arithmetic on the CPU.

Calibration is one ONNX Runtime pass of the FP32 graph over the images that returns every
quantized tensor besides the output: each range is the PERCENTILE of |x| over all their values
(`UpperTail`, exact), and the FP32 outputs are what the int8 graph is measured against. The
graph itself is written by `qdq.py`. (ONNX Runtime's `quantize_static` gave the same graph to
within 0.001 dB on horse2zebra, in 2.3x the time, and printed its progress on stdout.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch.nn.functional as F

from cyclegan_tool.conventions import array_to_tensor
from cyclegan_tool.export import qdq
from cyclegan_tool.errors import ConfigError, ExportError
from cyclegan_tool.imageio import decode, spread
from cyclegan_tool.models import pad_multiple, value_range

MIN_PSNR_DB = 30.0  # refuse a quantized graph this far from FP32 on its own calibration images
MIN_IMAGES = 8
PERCENTILE = 99.99  # activation ranges clip the rarest 0.01 %: 32 dB vs 25 dB for min-max (horse2zebra)


def calibration_inputs(source: str | os.PathLike | list[Path], spec, *, count: int = 64,
                       size: int = 256) -> tuple[list, dict]:
    """`count` images of `source`, a folder or a list of files (evenly spread over the sorted
    files), as model inputs `float32 [1, C, S, S]`: shorter side scaled to `size`,
    centre-cropped, in the model's value range; and the record that goes into the metadata."""
    from cyclegan_tool.metrics.folders import image_files

    if isinstance(source, list):
        files = spread(source, count)
        folder = Path(os.path.commonpath([str(Path(f).parent) for f in files])) if files else Path(".")
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise ConfigError(f"--int8 {folder}: calibration needs a folder of images of the model's input domain")
        files = image_files(folder, limit=count, spread=True)
    m = pad_multiple(spec)
    side = max(m, size // m * m)
    inputs, digest = [], hashlib.sha256()
    for path in files:
        try:
            img = decode(path)
        except Exception:
            continue
        x = array_to_tensor(img.rgb, channels=spec.input_nc, value_range=value_range(spec))[None]
        h, w = x.shape[-2:]
        scale = side / min(h, w)
        x = F.interpolate(x, size=(max(side, round(h * scale)), max(side, round(w * scale))), mode="bicubic",
                          antialias=True, align_corners=False).clamp_(*value_range(spec))
        top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
        inputs.append(x[..., top:top + side, left:left + side].contiguous().numpy())
        digest.update(f"{Path(path).name}\n".encode())
    if len(inputs) < MIN_IMAGES:
        raise ConfigError(f"--int8 {folder}: {len(inputs)} readable image(s); calibration needs at least {MIN_IMAGES}")
    record = {"folder": folder.name, "images": len(inputs), "size": side, "files_sha256": digest.hexdigest(),
              "method": f"percentile {PERCENTILE}, activations per tensor (int8, symmetric), weights per channel (int8); "
                        "Conv quantized, ConvTranspose and InstanceNormalization float"}
    return inputs, record


class UpperTail:
    """The `PERCENTILE` of |x| over every value of `count` arrays, fed one at a time: it keeps
    only the largest values (a small share of each array), so it costs a pass per array."""

    def __init__(self, count: int):
        self.count, self.kept = count, np.empty(0, np.float32)

    def add(self, x: np.ndarray) -> None:
        a = np.abs(x.ravel())
        k = max(1, int(np.ceil(a.size * self.count * (1 - PERCENTILE / 100))))
        if self.kept.size >= k:
            a = a[a > self.kept.min()]  # nothing smaller can be among the k largest any more
        elif a.size > 64 * k:  # a first array: most values lie far below the tail
            floor = np.partition(a[::16], a[::16].size - k // 8 - 1)[a[::16].size - k // 8 - 1]
            if np.count_nonzero(a > floor) >= k:
                a = a[a > floor]
        both = np.concatenate([self.kept, a])
        self.kept = both if both.size <= k else np.partition(both, both.size - k)[both.size - k:]

    def value(self) -> float:
        return float(self.kept.min()) if self.kept.size else 0.0


def calibrate(fp32_model, inputs: list[np.ndarray]) -> tuple[dict[str, float], list[np.ndarray]]:
    """Run the FP32 graph on `inputs` (ONNX Runtime): the range of each tensor the int8 graph
    quantizes (`qdq.activation_tensors`), and the FP32 outputs to measure the int8 graph against."""
    import onnx
    from onnx import TensorProto, helper

    from cyclegan_tool.export.parity import ort_session

    names = qdq.activation_tensors(fp32_model)
    probe = onnx.ModelProto()
    probe.CopyFrom(fp32_model)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in names if t not in have)
    session = ort_session(probe.SerializeToString())
    feed, outputs = session.get_inputs()[0].name, [o.name for o in session.get_outputs()]
    tails, results = {t: UpperTail(len(inputs)) for t in names}, []
    for x in inputs:
        values = dict(zip(outputs, session.run(None, {feed: x})))
        for t in names:
            tails[t].add(values[t])
        results.append(values[fp32_model.graph.output[0].name])
    return {t: tail.value() for t, tail in tails.items()}, results


def quantize(fp32_model, inputs: list[np.ndarray]):
    """The int8 QDQ graph of `fp32_model` with activation ranges measured on `inputs`, and the
    FP32 graph's outputs on them: `(onnx.ModelProto, [np.ndarray])`."""
    ranges, references = calibrate(fp32_model, inputs)
    return qdq.insert_qdq(fp32_model, ranges), references


def fidelity(int8_model, inputs: list[np.ndarray], references: list[np.ndarray], peak_to_peak: float) -> float:
    """Mean PSNR (dB) of the int8 graph's outputs (ONNX Runtime) against the FP32 `references`."""
    from cyclegan_tool.export.parity import ort_session, psnr

    session = ort_session(int8_model.SerializeToString())
    name = session.get_inputs()[0].name
    scores = [psnr(session.run(None, {name: x})[0], ref, peak_to_peak) for x, ref in zip(inputs, references)]
    return float(np.mean(np.minimum(scores, 99.0)))


def check(psnr_db: float, min_psnr: float = MIN_PSNR_DB) -> None:
    if not psnr_db >= min_psnr:
        raise ExportError(f"the int8 graph is {psnr_db:.1f} dB from FP32 on its calibration images (need "
                          f"{min_psnr:.0f}); nothing was written")

