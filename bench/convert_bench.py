"""End-to-end images/s of `cyclegan-tool convert` against a plain per-image PyTorch loop.

The baseline is the way the reference test script works: one image at a time, batch 1,
FP32, decode -> forward -> PNG encode, no overlap between the steps. Both use the same
ResNet-9 (ngf 64) generator with random weights: speed does not depend on the weights.
Every variant runs in this one process, --repeat times, alternating; the table gives medians.
`--mode user` times whole processes of the default install instead (bench/convert_user.py).
Variants: the defaults (`--backend auto`: the first of the plan's ways within its fidelity bar,
runtime/plan.py), PyTorch, ONNX Runtime and OpenVINO (if installed) on the FP32 graph, and
both on an int8 graph calibrated on the same images (`export --int8`).

    python bench/convert_bench.py                                   # CPU, 24 testA images
    python bench/convert_bench.py --images ../shared/data/horse2zebra/testA --limit 0 --device cuda
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, command_line, machine, psnr_folders, shipped_as_pth, write_results  # noqa: E402
from reference_loop import reference_loop  # noqa: E402

from cyclegan_tool import checkpoints  # noqa: E402
from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights  # noqa: E402


def tool_convert(src: Path, model: Path | str, out: Path, device: str, backend: str = "auto", **opts) -> str:
    """`cyclegan_tool.convert` as the CLI runs it; returns the line saying which backend ran."""
    import cyclegan_tool as ct

    said = []
    summary = ct.convert(src, out, model=model, device=device, backend=backend, on_start=said.append, **opts)
    if summary.failed:
        raise SystemExit(f"{summary.failed} image(s) failed in {out}")
    return said[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["variants", "user"], default="variants",
                    help="variants: every runtime and form in one process; user: the default install as whole "
                         "processes, first and warm runs, against the reference loop (bench/convert_user.py)")
    ap.add_argument("--counts", default="1,24,400", help="--mode user: the folder sizes")
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "horse2zebra" / "testA"))
    ap.add_argument("--limit", type=int, default=24, help="first N images (0: all)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=0, help="0: the tool's default for the device")
    ap.add_argument("--replicate", type=int, default=1, help="copy each image this many times (GPU runs)")
    ap.add_argument("--only", default="",
                    help="comma-separated words: run only the variants whose label contains one (the reference "
                         "loop always runs)")
    ap.add_argument("--weights", choices=["random", "horse2zebra"], default="random",
                    help="ResNet-9 ngf 64 with random weights (speed), or the shipped horse2zebra generator's "
                         "weights (speed and a meaningful PSNR of each variant against FP32)")
    args = ap.parse_args()
    if args.mode == "user":
        from convert_user import run

        return run(args)
    src_all = sorted(Path(args.images).glob("*.jpg"))
    if not src_all:
        sys.exit(f"no .jpg images in {args.images}")
    files = src_all[: args.limit] if args.limit else src_all
    work = Path(tempfile.mkdtemp(prefix="convert_bench_"))
    src = work / "in"
    src.mkdir()
    for k in range(args.replicate):
        for f in files:
            shutil.copy(f, src / f"{f.stem}_{k}{f.suffix}")
    files = sorted(src.glob("*.jpg"))
    torch.manual_seed(0)
    weights = work / "latest_net_G.pth"
    if args.weights == "horse2zebra":
        shipped_as_pth("horse2zebra", weights)
        spec = checkpoints.load_generator(weights).spec
    else:
        spec = GeneratorSpec()
        torch.save(init_weights(build_generator(spec)).state_dict(), weights)
    arch = f"{spec.name} ngf {spec.ngf}"
    from cyclegan_tool.export.onnx_export import export_onnx

    onnx_path = export_onnx(checkpoints.load_generator(weights), work / "g.onnx", check=False).path
    t0 = time.perf_counter()
    int8_path = export_onnx(checkpoints.load_generator(weights), work / "g_int8.onnx", int8_calibration=src,
                            calib_count=min(len(files), 64), int8_min_psnr=0).path
    int8_export_s = time.perf_counter() - t0
    from cyclegan_tool.onnx_metadata import read_metadata

    import onnx

    int8_psnr = read_metadata(onnx.load(str(int8_path)))["calibration"]["psnr_db_vs_fp32"]
    has_ov = importlib.util.find_spec("openvino") is not None
    # `--backend auto` checks the fidelity of its first way once per model and caches the figure:
    # check here in a private cache, before the timed runs (a user's first run pays it once).
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    measured_lines = []

    def chosen(said: str) -> str:  # "g.onnx: ONNX model on cpu -> openvino-bf16, 48.1 dB from ..." -> "openvino-bf16"
        print(said)
        measured_lines.append(said.split(": ", 1)[0] + ": " + said.split("-> ", 1)[1].split(" (checked", 1)[0])
        return said.split("-> ", 1)[1].split(" ", 1)[0].rstrip(",;:")

    auto = chosen(tool_convert(src, onnx_path, work / "warm", args.device, batch_size=args.batch, format="png"))
    auto8 = chosen(tool_convert(src, int8_path, work / "warm_int8", args.device, batch_size=args.batch,
                                format="png"))
    # The checkpoint too; the "first run on this machine" variant below pays its export, forms and
    # fidelity check on every run, in a fresh cache.
    auto_pth = chosen(tool_convert(src, weights, work / "warm_pth", args.device, batch_size=args.batch,
                                   format="png"))
    batch = args.batch or "auto"
    variants = [
        ("reference-style loop: PyTorch FP32, batch 1, PNG", lambda o: reference_loop(files, weights, o, args.device)),
        (f"convert --checkpoint, defaults (auto: {auto_pth}), batch {batch}, PNG",
         lambda o: tool_convert(src, weights, o, args.device, batch_size=args.batch, format="png")),
        (f"convert --onnx --backend onnxruntime (FP32), batch {batch}, PNG",
         lambda o: tool_convert(src, onnx_path, o, args.device, "onnxruntime", batch_size=args.batch, format="png")),
        (f"convert --onnx, defaults (auto: {auto}), PNG",
         lambda o: tool_convert(src, onnx_path, o, args.device, batch_size=args.batch, format="png")),
        (f"convert --onnx, defaults (auto: {auto}), JPEG (keep)",
         lambda o: tool_convert(src, onnx_path, o, args.device, batch_size=args.batch)),
        (f"convert --onnx int8, defaults (auto: {auto8}), PNG",
         lambda o: tool_convert(src, int8_path, o, args.device, batch_size=args.batch, format="png")),
        (f"convert --onnx int8 --backend onnxruntime, batch {batch}, PNG",
         lambda o: tool_convert(src, int8_path, o, args.device, "onnxruntime", batch_size=args.batch, format="png")),
    ]
    if has_ov and args.device == "cpu":
        variants += [
            (f"convert --onnx --backend openvino (FP32), batch {batch}, PNG",
             lambda o: tool_convert(src, onnx_path, o, args.device, "openvino", batch_size=args.batch, format="png")),
            (f"convert --onnx int8 --backend openvino, batch {batch}, PNG",
             lambda o: tool_convert(src, int8_path, o, args.device, "openvino", batch_size=args.batch, format="png")),
        ]

    def first_run(o):  # a fresh cache: the run exports, makes the forms and checks fidelity itself
        os.environ["XDG_CACHE_HOME"] = str(o) + "_cache"
        try:
            tool_convert(src, weights, o, args.device, batch_size=args.batch, format="png")
        finally:
            os.environ["XDG_CACHE_HOME"] = str(work / "cache")

    variants.insert(2, (f"convert --checkpoint, defaults (auto), first run on this machine, batch {batch}, PNG",
                        first_run))
    if args.weights == "horse2zebra":
        said = tool_convert(src, "horse2zebra", work / "warm_model", args.device, format="png")
        form = "its int8 form" if "int8 form" in said else "its FP32 graph"
        variants.append((f"convert --model horse2zebra, defaults ({form}), PNG",
                         lambda o: tool_convert(src, "horse2zebra", o, args.device, format="png")))
    if args.only:
        words = args.only.split(",")
        variants = [v for i, v in enumerate(variants) if i == 0 or any(w in v[0] for w in words)]
    fp32_onnx = next((i for i, (label, _) in enumerate(variants) if "--backend onnxruntime (FP32)" in label), 0)
    times: dict[int, list[float]] = {i: [] for i in range(len(variants))}
    for r in range(args.repeat):  # alternate the variants, so load from other processes hits all alike
        for i, (label, fn) in enumerate(variants):
            out = work / f"out_{i}_{r}"
            t0 = time.perf_counter()
            fn(out)
            times[i].append(time.perf_counter() - t0)
            if r:
                shutil.rmtree(out)
            print(f"run {r + 1}: {label:58s} {len(files) / times[i][-1]:8.2f} images/s", flush=True)
    rows = []
    for i, (label, _) in enumerate(variants):
        med = statistics.median(times[i])
        rows.append({"variant": label, "seconds": times[i], "median_s": med, "images_per_s": len(files) / med,
                     "psnr_vs_fp32_onnx": psnr_folders(work / f"out_{i}_0", work / f"out_{fp32_onnx}_0")})
    shutil.rmtree(work)
    base = rows[0]["images_per_s"]
    copies = f", each copied {args.replicate} times" if args.replicate > 1 else ""
    title = ("" if args.weights == "random" else ", shipped horse2zebra weights") + (
        f", {len(files)} images" if copies else "")
    lines = [f"## Folder conversion ({args.device}{title})", "", f"Machine: {machine()}  ",
             f"Command: `{command_line()}`  ",
             f"{len(files)} horse2zebra testA JPEGs (256x256{copies}), {arch} generator; wall time of the whole "
             f"run including model load, decode and encode; median of {args.repeat} runs.", "",
             f"Weights: {args.weights}. The int8 graph is calibrated on these images "
             f"({int8_psnr:.1f} dB from FP32 on them; making it, calibration and fidelity check included, took "
             f"{int8_export_s:.1f} s); PSNR compares each variant's PNGs with those of "
             f"'{variants[fp32_onnx][0]}' (the reference loop truncates where the tool rounds).", "",
             "What `--backend auto` chose (the first of its ways within the fidelity bar on the first image):", "",
             *[f"- {line}" for line in measured_lines], "",
             "| variant | images/s | vs. reference loop | time vs. reference | PSNR vs FP32 (dB) |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['variant']} | {r['images_per_s']:.2f} | {r['images_per_s'] / base:.2f}x | "
              f"{base / r['images_per_s']:.2f} | {r['psnr_vs_fp32_onnx']:.1f} |".replace('nan', '-') for r in rows]
    suffix = ("" if args.weights == "random" else f"_{args.weights}") + (f"_{len(files)}" if copies else "")
    write_results(f"convert_{torch.device(args.device).type}{suffix}",
                  {"machine": machine(), "command": command_line(), "images": len(files), "rows": rows,
                   "int8_export_s": int8_export_s},
                  "\n".join(lines))


if __name__ == "__main__":
    main()
