"""Large images: one pass against band-by-band translation (runtime/banded.py), with the peak
memory of each, and how far per-tile statistics (the old tiling) strayed from one pass.

Every variant is a whole `cyclegan-tool convert` process on one large image; its peak resident
memory comes from the kernel (`wait4`'s ru_maxrss), and its bytes per pixel are that peak less
the same command's peak on a 256x256 image, over the large image's pixels. PSNR compares each
output with the one-pass PyTorch FP32 output. Variants:

- one pass, PyTorch FP32 (`--backend pytorch --precision fp32`): the exact reference;
- banded, FP32 (the same with `--tile 512`: an image over --tile, or over what one pass may
  take of the memory available, runs layer by layer in bands, each instance norm over the whole
  image);
- the defaults (`--backend auto`), as a user runs it;
- per-tile statistics (512-pixel tiles, 32 overlap, each tile normalised on its own), computed
  in this process with the same weights: what large images got before the banded path.

    python bench/memory_bench.py [--sizes 4200x1000,2500x2500] [--weights horse2zebra|random]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, bench_weights, command_line, machine, write_results  # noqa: E402


def tool() -> list[str]:
    exe = shutil.which("cyclegan-tool")
    return [exe] if exe else [sys.executable, "-m", "cyclegan_tool"]


def peak_run(args: list[str], cache: Path) -> tuple[float, int]:
    """(wall seconds, peak resident bytes) of one `cyclegan-tool` process."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    t0 = time.perf_counter()
    proc = subprocess.Popen(tool() + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{out.decode(errors='replace')}")
    return took, usage.ru_maxrss * 1024


def psnr(a: Path, b: Path) -> float:
    from PIL import Image

    x = np.asarray(Image.open(a), np.float64)
    y = np.asarray(Image.open(b), np.float64)
    mse = float(np.mean((x - y) ** 2))
    return 99.0 if mse == 0 else min(99.0, 10 * np.log10(255.0**2 / mse))


def per_tile_statistics(weights: Path, image: Path, out: Path) -> float:
    """The old way: overlapping tiles, each normalised on its own, blended; returns seconds."""
    import torch
    from PIL import Image

    from cyclegan_tool import checkpoints
    from cyclegan_tool.conventions import network_to_pixels
    from cyclegan_tool.imageio import decode
    from cyclegan_tool.runtime.base import ModelInfo
    from cyclegan_tool.runtime.options import ConvertOptions
    from cyclegan_tool.runtime.tiling import translate_tiled
    from cyclegan_tool.runtime.translate import finish, pad_batch, prepare

    loaded = checkpoints.load_generator(weights)
    info = ModelInfo(spec=loaded.spec, direction="a2b", precision="fp32", pad_multiple=4, source=str(weights))
    prep = prepare(decode(image), info, ConvertOptions())
    x = pad_batch([prep.x], prep.padded)
    t0 = time.perf_counter()
    with torch.no_grad():
        y = translate_tiled(x, lambda b: loaded.net(torch.from_numpy(b)).numpy(), 512, 32, 1)
    took = time.perf_counter() - t0
    rgb = finish(y, prep, info.value_range)
    Image.fromarray(network_to_pixels(rgb[0], info.value_range)).save(out)
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4200x1000,2500x2500", help="WxH of the large images")
    ap.add_argument("--weights", choices=["horse2zebra", "random"], default="horse2zebra",
                    help="the shipped generator as a .pth (ResNet-6 ngf 32), or a random reference ResNet-9 ngf 64")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    photo = sorted((args.data / "horse2zebra" / "testA").glob("*.jpg"))
    if not photo:
        raise SystemExit(f"needs horse2zebra/testA under {args.data}")
    from PIL import Image

    work = Path(tempfile.mkdtemp(prefix="memory_bench_"))
    weights = work / "latest_net_G.pth"
    arch = bench_weights(args.weights, weights)
    cache = work / "cache"
    small = work / "small.png"
    Image.open(photo[0]).convert("RGB").resize((256, 256)).save(small)
    variants = {
        "one pass, PyTorch FP32": ["--backend", "pytorch", "--precision", "fp32"],
        "banded, FP32 (--tile 512)": ["--backend", "pytorch", "--precision", "fp32", "--tile", "512"],
        "defaults (--backend auto)": [],
    }
    base = {}
    for name, flags in variants.items():  # each variant's peak on a small image: what is not per pixel
        peak_run(["convert", "--checkpoint", str(weights), str(small), str(work / "small_out"), "--format", "png",
                  *flags], cache)  # the forms are made and checked once, outside the figures
        base[name] = peak_run(["convert", "--checkpoint", str(weights), str(small), str(work / "small_out"),
                               "--format", "png", *flags], cache)[1]
    rows = []
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        image = work / f"large_{w}x{h}.png"
        Image.open(photo[0]).convert("RGB").resize((w, h), Image.BICUBIC).save(image)
        outs = {}
        for name, flags in variants.items():
            out = work / f"out_{w}x{h}_{len(outs)}"
            took, peak = peak_run(["convert", "--checkpoint", str(weights), str(image), str(out), "--format", "png",
                                   *flags], cache)
            outs[name] = out / f"{image.stem}.png"
            rows.append({"size": size, "variant": name, "seconds": took, "peak_bytes": peak,
                         "bytes_per_pixel": (peak - base[name]) / (w * h)})
            print(f"{size} {name}: {took:.1f} s, peak {peak / 2**30:.2f} GiB", flush=True)
        tiles = work / f"tiles_{w}x{h}.png"
        took = per_tile_statistics(weights, image, tiles)
        outs["per-tile statistics (512 tiles, the old way)"] = tiles
        rows.append({"size": size, "variant": "per-tile statistics (512 tiles, the old way)", "seconds": took,
                     "peak_bytes": None, "bytes_per_pixel": None})
        reference = outs["one pass, PyTorch FP32"]
        for row in rows:
            if row["size"] == size:
                row["psnr_vs_one_pass"] = psnr(outs[row["variant"]], reference)
    shutil.rmtree(work)
    lines = ["## Large images: one pass, banded, and peak memory (cpu)", "", f"Machine: {machine()}  ",
             f"Command: `{command_line()}`  ",
             f"{arch}; a horse2zebra testA photo scaled up to each size. Each row but the last of a size is a whole "
             "`cyclegan-tool convert` process: wall time, peak resident memory (the kernel's ru_maxrss), and bytes "
             "per pixel (that peak less the same command's on a 256x256 image, over the pixels). PSNR against the "
             "one-pass PyTorch FP32 output. The per-tile row is computed in the bench's process with the same "
             "weights (wall time of the network only).", "",
             "| size | variant | wall (s) | peak (GiB) | bytes / pixel | PSNR vs one pass (dB) |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        peak = f"{r['peak_bytes'] / 2**30:.2f}" if r["peak_bytes"] is not None else "-"
        bpp = f"{r['bytes_per_pixel']:.0f}" if r["bytes_per_pixel"] is not None else "-"
        lines.append(f"| {r['size']} | {r['variant']} | {r['seconds']:.1f} | {peak} | {bpp} | "
                     f"{r['psnr_vs_one_pass']:.1f} |")
    lines += ["", "An image runs in one pass while its pixels times the runtime's bytes per pixel stay under half the "
              "memory available when the run starts (runtime/translate.py); past that it runs banded, whose peak "
              "is one layer's input and output (memory-mapped past 2 GiB), so its size is bounded by disk, not RAM."]
    write_results("memory_cpu", {"machine": machine(), "command": command_line(), "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
