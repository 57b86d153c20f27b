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
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch.nn.functional as F

from cyclegan_tool.conventions import array_to_tensor
from cyclegan_tool.errors import ConfigError, ExportError
from cyclegan_tool.imageio import decode, spread
from cyclegan_tool.models import pad_multiple, value_range

MIN_PSNR_DB = 30.0  # refuse a quantized graph this far from FP32 on its own calibration images
MIN_IMAGES = 8
QUANTIZED_OPS = ["Conv"]  # ConvTranspose stays float (see above)
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


def quantize(fp32_model, inputs: list[np.ndarray]):
    """An int8 QDQ `onnx.ModelProto` of `fp32_model` with activation ranges from `inputs`."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    name = fp32_model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(inputs)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {name: x}

    with tempfile.TemporaryDirectory(prefix="cyclegan-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(fp32_model, str(src))
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile, op_types_to_quantize=QUANTIZED_OPS,
                        extra_options={"CalibPercentile": PERCENTILE, "ActivationSymmetric": True})
        return onnx.load(str(dst))


def fidelity(fp32_model, int8_model, inputs: list[np.ndarray], peak_to_peak: float) -> float:
    """Mean PSNR (dB) of the int8 graph's outputs against the FP32 graph's, both on ONNX Runtime."""
    from cyclegan_tool.export.parity import ort_session, psnr

    ref, test = ort_session(fp32_model.SerializeToString()), ort_session(int8_model.SerializeToString())
    name = ref.get_inputs()[0].name
    scores = [psnr(test.run(None, {name: x})[0], ref.run(None, {name: x})[0], peak_to_peak) for x in inputs]
    return float(np.mean(np.minimum(scores, 99.0)))


def check(psnr_db: float, min_psnr: float = MIN_PSNR_DB) -> None:
    if not psnr_db >= min_psnr:
        raise ExportError(f"the int8 graph is {psnr_db:.1f} dB from FP32 on its calibration images (need "
                          f"{min_psnr:.0f}); nothing was written")

