"""`convert_bench.py --mode user`: the README's default install, run as a user runs it.

Whole processes, timed from launch to exit (interpreter start, imports, model load, decode,
encode): `cyclegan-tool convert --checkpoint latest_net_G.pth IN OUT --format png` against
the reference-style loop (`bench/reference_loop.py`, one image at a time in PyTorch FP32) on
the same weights: a reference ResNet-9 ngf 64 `.pth` (random weights: speed does not depend on
them), or with `--weights horse2zebra` the shipped generator saved as a `.pth`.
For each folder size the tool runs twice: first run (an empty cache: export, forms and the
fidelity check are all paid inside the run) and warm run (the cache of an earlier run).
The variants alternate within each repeat, so load from other processes hits all alike.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import bench_weights, command_line, machine, psnr_folders, write_results

HERE = Path(__file__).resolve().parent


def tool_command() -> list[str]:
    exe = shutil.which("cyclegan-tool")
    return [exe] if exe else [sys.executable, "-m", "cyclegan_tool"]


def timed(cmd: list[str], cache: Path) -> float:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return took


def torch_imported(one_image: Path, out: Path, cache: Path) -> bool:
    """Whether `convert --model horse2zebra` on one image imports torch (`-X importtime`)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "cyclegan_tool", "convert", "--model", "horse2zebra",
           str(one_image), str(out)]
    res = subprocess.run(cmd, env=dict(os.environ, XDG_CACHE_HOME=str(cache)), capture_output=True, text=True)
    return any(line.rsplit("|", 1)[-1].strip().split(".")[0] == "torch" for line in res.stderr.splitlines())


def run(args) -> None:
    counts = [int(c) for c in args.counts.split(",")]
    data = Path(args.images)
    pool = sorted(data.glob("*.jpg")) + sorted((data.parent / "trainA").glob("*.jpg"))
    if len(pool) < max(counts):
        raise SystemExit(f"{len(pool)} images in {data} and its sibling trainA; --counts asks for {max(counts)}")
    work = Path(tempfile.mkdtemp(prefix="convert_user_"))
    weights = work / "latest_net_G.pth"
    arch = bench_weights(args.weights, weights)
    folders = {}
    for n in counts:
        folders[n] = work / f"in_{n}"
        folders[n].mkdir()
        for f in pool[:n]:
            shutil.copy(f, folders[n] / f.name)
    tool = tool_command()

    def ref(n, out, cache):
        return timed([sys.executable, str(HERE / "reference_loop.py"), str(weights), str(folders[n]), str(out)], cache)

    def convert(n, out, cache):
        return timed(tool + ["convert", "--checkpoint", str(weights), str(folders[n]), str(out), "--format", "png"],
                     cache)

    def named_one(out, cache):
        return timed(tool + ["convert", "--model", "horse2zebra", str(next(folders[1].iterdir())), str(out)], cache)

    warm = work / "cache_warm"
    for n in counts:  # a user's earlier runs: the checkpoint's forms and measurements are cached
        convert(n, work / f"prime_{n}", warm)
    named_one(work / "prime_named", warm)
    variants = {"reference": lambda n, o: ref(n, o, work / "cache_ref"),
                "first": lambda n, o: convert(n, o, work / f"cache_first_{o.name}"),
                "warm": lambda n, o: convert(n, o, warm)}
    times = {(n, v): [] for n in counts for v in variants}
    named = []
    for r in range(args.repeat):
        for n in counts:
            for v, fn in variants.items():
                out = work / f"out_{n}_{v}_{r}"
                times[n, v].append(fn(n, out))
                print(f"run {r + 1}: {n:4d} images  {v:9s} {times[n, v][-1]:7.2f} s", flush=True)
        named.append(named_one(work / f"out_named_{r}", warm))
        print(f"run {r + 1}: convert --model horse2zebra, one image {named[-1]:.2f} s", flush=True)
    imports_torch = torch_imported(next(folders[1].iterdir()), work / "out_importtime", warm)
    rows = []
    for n in counts:
        med = {v: statistics.median(times[n, v]) for v in variants}
        rows.append({"images": n, **{f"{v}_s": times[n, v] for v in variants},
                     **{f"{v}_median_s": med[v] for v in variants},
                     "psnr_warm_vs_reference": psnr_folders(work / f"out_{n}_warm_0", work / f"out_{n}_reference_0"),
                     "psnr_first_vs_reference": psnr_folders(work / f"out_{n}_first_0",
                                                             work / f"out_{n}_reference_0")})
    shutil.rmtree(work)
    lines = [f"## The default install, as a user runs it (cpu, whole processes; {arch})", "",
             f"Machine: {machine()}  ", f"Command: `{command_line()}`  ",
             "Installed as the README's first command installs (OpenVINO included). Wall time of whole processes, "
             "launch to exit: `cyclegan-tool convert --checkpoint latest_net_G.pth IN OUT --format png` against "
             "`python bench/reference_loop.py` (the reference test.py's way: PyTorch FP32, one image at a time) "
             f"on the same weights: a reference-layout `.pth` of {arch}. "
             "Images: horse2zebra testA, then trainA for the 400 (256x256 JPEGs). *First run*: an empty cache "
             "(ONNX export, forms and the fidelity check inside the run). *Warm run*: the cache of an "
             f"earlier run. Median of {args.repeat} runs, the variants alternating. PSNR compares the tool's PNGs "
             "with the reference loop's (which truncates where the tool rounds).", "",
             "| images | reference loop (s) | first run (s) | first vs. reference | warm run (s) | "
             "warm vs. reference | PSNR warm / first (dB) |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        ref_s, first_s, warm_s = (row[f"{v}_median_s"] for v in ("reference", "first", "warm"))
        lines.append(f"| {row['images']} | {ref_s:.2f} | {first_s:.2f} | {ref_s / first_s:.2f}x | {warm_s:.2f} | "
                     f"{ref_s / warm_s:.2f}x | {row['psnr_warm_vs_reference']:.1f} / "
                     f"{row['psnr_first_vs_reference']:.1f} |")
    lines += ["", f"`cyclegan-tool convert --model horse2zebra one.jpg out/` (warm): "
              f"{statistics.median(named):.2f} s wall (median of {len(named)}); "
              f"`python -X importtime` shows torch imported: {'yes' if imports_torch else 'no'}."]
    section = "convert_user_cpu" + ("_horse2zebra" if args.weights == "horse2zebra" else "")
    write_results(section, {"machine": machine(), "command": command_line(), "rows": rows,
                                       "named_one_image_s": named, "torch_imported": imports_torch},
                  "\n".join(lines))
