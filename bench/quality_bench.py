"""Output quality of the fast paths: PSNR of FP16 (and bf16) output against FP32 output of
the same generator on real images, plus NaN / flat-image checks.

    python bench/quality_bench.py --model m.pt --device cuda       # PyTorch FP16 vs FP32
    python bench/quality_bench.py --model m.pt --onnx              # FP16 ONNX vs FP32 (ONNX Runtime)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, command_line, machine, write_results  # noqa: E402

from cyclegan_tool.conventions import array_to_tensor  # noqa: E402
from cyclegan_tool.export.parity import psnr  # noqa: E402
from cyclegan_tool.imageio import decode  # noqa: E402
from cyclegan_tool.runtime import make_backend  # noqa: E402


def run_all(backend, images: list[torch.Tensor]) -> list[np.ndarray]:
    with backend:
        return [backend.infer(x[None]).cpu().numpy()[0] for x in images]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint (.pt/.pth) of the generator")
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "horse2zebra" / "testA"))
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--onnx", action="store_true", help="compare FP16 and FP32 ONNX files on ONNX Runtime")
    args = ap.parse_args()
    files = sorted(Path(args.images).glob("*.jpg"))[: args.limit]
    images = [array_to_tensor(decode(f).rgb) for f in files]
    if args.onnx:
        import tempfile

        from cyclegan_tool import checkpoints
        from cyclegan_tool.export.onnx_export import export_onnx

        tmp = Path(tempfile.mkdtemp())
        loaded = checkpoints.load_generator(args.model)
        ref = run_all(make_backend(export_onnx(loaded, tmp / "f32.onnx").path, device=args.device)[0], images)
        fast = run_all(make_backend(export_onnx(loaded, tmp / "f16.onnx", fp16=True).path, device=args.device)[0],
                       images)
        label = f"FP16 ONNX vs FP32 ONNX (ONNX Runtime, {args.device})"
    else:
        ref = run_all(make_backend(args.model, device=args.device, precision="fp32")[0], images)
        fast = run_all(make_backend(args.model, device=args.device, precision="fp16")[0], images)
        label = f"PyTorch FP16 (instance norm FP32) vs FP32 ({args.device})"
    scores = [psnr(a, b) for a, b in zip(fast, ref)]
    nan = sum(not np.isfinite(a).all() for a in fast)
    flat = sum(float(a.std()) < 1e-3 for a in fast)
    line = (f"{label}: {len(files)} images, PSNR median {statistics.median(scores):.1f} dB, min {min(scores):.1f} dB, "
            f"NaN outputs {nan}, flat outputs {flat}")
    print(line)
    write_results(f"quality_{'onnx' if args.onnx else 'torch'}_{torch.device(args.device).type}",
                  {"machine": machine(), "command": command_line(), "psnr_db": scores, "nan": nan, "flat": flat},
                  f"## Fast-path quality ({label})\n\nMachine: {machine()}  \nCommand: `{command_line()}`  \n\n{line}")


if __name__ == "__main__":
    main()
