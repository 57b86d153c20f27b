"""CPU seconds per training iteration of CycleGAN, CUT and FastCUT (`train --model`).

Each model at its own defaults (CycleGAN: the reference's; CUT and FastCUT: the CUT code's,
anti-aliasing included) and with `--no-antialias --no-antialias-up`, ResNet-9 ngf 64,
batch 1, at crop 64 and 256, `--amp auto`. One iteration is one update of every network on
random images already in memory (no data loading). The variants alternate iteration by
iteration in one process, so their ratios compare; median of --repeat iterations after
--warmup.

    python bench/family_bench.py                 # writes docs/BENCHMARKS.md's section
    python bench/family_bench.py --crops 64      # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, write_results  # noqa: E402

from cyclegan_tool.train.config import TrainConfig  # noqa: E402
from cyclegan_tool.train.families import family_options  # noqa: E402
from cyclegan_tool.train.trainer import model_class  # noqa: E402

PLAIN = dict(antialias=False, antialias_up=False)


def variants(crops: list[int]) -> list[tuple[str, str, int, dict]]:
    out = []
    for crop in crops:
        for model in ("cyclegan", "cut", "fastcut"):
            out.append((f"{model}, defaults", model, crop, {}))
        for model in ("cut", "fastcut"):
            out.append((f"{model}, --no-antialias --no-antialias-up", model, crop, PLAIN))
    return out


def build(model: str, crop: int, extra: dict):
    given = dict(model=model, crop_size=crop, load_size=crop, device="cpu", **extra)
    cfg = TrainConfig(**family_options(model, given, frozenset(given))).validate()
    torch.manual_seed(0)
    return model_class(model)(cfg, torch.device("cpu"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--note", default="", help="a sentence on the machine's state, for the docs")
    args = ap.parse_args()
    rows = variants(args.crops)
    models = [build(model, crop, extra) for _, model, crop, extra in rows]
    pairs = [tuple(torch.rand(1, 3, crop, crop) * 2 - 1 for _ in range(2)) for _, _, crop, _ in rows]
    times: list[list[float]] = [[] for _ in rows]
    for r in range(args.warmup + args.repeat):
        for i, (model, (a, b)) in enumerate(zip(models, pairs)):
            t0 = time.perf_counter()
            model.train_step(a, b)
            if r >= args.warmup:
                times[i].append(time.perf_counter() - t0)
    results = []
    for (label, model, crop, extra), t in zip(rows, times):
        ref = statistics.median(times[next(i for i, row in enumerate(rows) if row[1] == "cyclegan" and row[2] == crop)])
        results.append({"variant": label, "model": model, "crop": crop, "options": extra, "seconds": t,
                        "s_per_iter": statistics.median(t), "vs_cyclegan": statistics.median(t) / ref})
        print(f"crop {crop:4d}  {label:45s} {statistics.median(t) * 1000:9.1f} ms", flush=True)
    from cyclegan_tool.devices import resolve_amp

    lines = ["## Training speed by model family (CPU)", "",
             f"Machine: {machine()}  ", f"Command: `{command_line()}`  ",
             f"ResNet-9 ngf 64 and the 70x70 PatchGAN, batch 1, `--amp auto` (`{resolve_amp('auto', torch.device('cpu'))}` "
             f"here), each family at its defaults; median of {args.repeat} iterations after {args.warmup} warm-up, "
             "the variants alternating iteration by iteration. One iteration updates every network once "
             "(CycleGAN: two generators and two discriminators; CUT: one of each and the patch MLPs).",
             *([args.note] if args.note else []), "",
             "| crop | model | seconds / iteration | vs. CycleGAN (same crop) |", "|---:|---|---:|---:|"]
    for r in results:
        lines.append(f"| {r['crop']} | {r['variant']} | {r['s_per_iter']:.3f} | {r['vs_cyclegan']:.2f}x |")
    lines += ["", "The CUT paper's table has CUT at about 0.6x and FastCUT at about 0.4x of CycleGAN's time per "
              "iteration on a GPU. On this CPU the anti-aliased layers, on by default in the CUT code, cost more "
              "than that: they turn each stride-2 convolution of the generator and discriminator into a stride-1 "
              "one at full resolution followed by a blur (4x the arithmetic of those layers)."]
    write_results("train_families_cpu", {"machine": machine(), "command": command_line(), "rows": results},
                  "\n".join(lines))


if __name__ == "__main__":
    main()
