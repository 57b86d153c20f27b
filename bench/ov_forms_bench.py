"""OpenVINO's two kinds of compiled form (runtime/ov_compiled.py) side by side: the form for one
fixed input shape against the any-shape form, on the models `--backend auto` runs most.

Models: the Winograd form of a reference ResNet-9 ngf 64 (random weights, seeded) in bf16, and the
shipped horse2zebra int8 form with its float parts in bf16. Each size gets both forms compiled in
one process; one image's inference alternates between them, and the medians are written to
docs/BENCHMARKS.md with how far their outputs differ.

    python bench/ov_forms_bench.py [--repeat 15] [--sizes 256,512]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_weights, command_line, machine, write_results  # noqa: E402


def models(work: Path) -> list[tuple[str, Path, bool]]:
    """(label, ONNX path, fold) for each model benched."""
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.forms import winograd
    from cyclegan_tool.export.onnx_export import export_onnx
    from cyclegan_tool.model_files import digest
    from cyclegan_tool.zoo import int8_file

    pth, onnx_path = work / "latest_net_G.pth", work / "g.onnx"
    described = bench_weights("random", pth)
    export_onnx(checkpoints.load_generator(pth), onnx_path, check=False)
    return [(f"Winograd form of {described}, bf16", winograd(digest(onnx_path), lambda: onnx_path), True),
            ("shipped horse2zebra int8 form, float parts bf16", int8_file("horse2zebra"), False)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """dB between two outputs in [-1, 1] (peak 2)."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 99.0 if mse == 0 else float(10 * np.log10(4 / mse))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--sizes", default="256,512", help="square sides to compare at")
    args = ap.parse_args()
    import openvino as ov

    from cyclegan_tool.runtime.ov_compiled import fold_constants

    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="ov_forms_") as tmp:
        for label, path, fold in models(Path(tmp)):
            for side in map(int, args.sizes.split(",")):
                requests = {}
                for form, shape in (("fixed", [1, 3, side, side]), ("any", [-1, 3, -1, -1])):
                    model = core.read_model(str(path))
                    if fold:
                        fold_constants(model)
                    model.reshape(shape)
                    requests[form] = core.compile_model(model, "CPU", config).create_infer_request()
                x = np.random.default_rng(0).uniform(-1, 1, (1, 3, side, side)).astype(np.float32)
                outs = {form: r.infer({0: x})[0].copy() for form, r in requests.items()}
                times: dict[str, list[float]] = {form: [] for form in requests}
                for i in range(args.warmup + args.repeat):
                    for form, r in requests.items():
                        t0 = time.perf_counter()
                        r.infer({0: x})
                        if i >= args.warmup:
                            times[form].append(time.perf_counter() - t0)
                med = {form: statistics.median(t) * 1000 for form, t in times.items()}
                rows.append({"model": label, "side": side, "fixed_ms": med["fixed"], "any_ms": med["any"],
                             "max_abs_diff": float(np.abs(outs["fixed"] - outs["any"]).max()),
                             "psnr_db": psnr(outs["fixed"], outs["any"])})
                print(rows[-1], flush=True)
    lines = ["## OpenVINO forms: one fixed shape against any shape (cpu)", "",
             f"Machine: {machine()}, OpenVINO {ov.__version__.split('-')[0]}  ",
             f"Command: `{command_line()}`  ",
             f"One image, the two forms alternating in one process; median of {args.repeat} after {args.warmup} "
             "warm-up; the last columns compare the two forms' outputs (values in [-1, 1], PSNR with peak 2).", "",
             "| model | size | fixed-shape form, ms | any-shape form, ms | fixed faster by | PSNR between them | "
             "largest difference |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['side']}x{r['side']} | {r['fixed_ms']:.1f} | {r['any_ms']:.1f} | "
                     f"{r['any_ms'] / r['fixed_ms'] - 1:+.1%} | {r['psnr_db']:.1f} dB | {r['max_abs_diff']:.3f} |")
    write_results("ov_forms_cpu", {"machine": machine(), "command": command_line(), "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
