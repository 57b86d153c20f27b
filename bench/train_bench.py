"""Seconds per training iteration (one G step + one D step) of the CycleGAN trainer.

Times `CycleGAN.train_step` on random images already on the device (data loading is
not included), median of --repeat iterations after --warmup. Variants run in one
process so their ratios compare.

    python bench/train_bench.py                      # CPU: reference config and a small one
    python bench/train_bench.py --device cuda        # GPU: fp32 eager vs. the speed switches
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, median_time, write_results  # noqa: E402

from cyclegan_tool.train.config import TrainConfig  # noqa: E402
from cyclegan_tool.train.cyclegan import CycleGAN  # noqa: E402

CPU_VARIANTS = [  # (label, options); the first of each crop is the reference: eager FP32
    ("crop 64: reference-style, resnet_9blocks ngf64, batch 1, fp32 eager", dict(amp="none", crop_size=64)),
    ("crop 64: --amp auto (the CPU default)", dict(amp="auto", crop_size=64)),
    ("crop 64: channels-last, fp32", dict(amp="none", crop_size=64, channels_last=True)),
    ("crop 256: reference-style, resnet_9blocks ngf64, batch 1, fp32 eager", dict(amp="none")),
    ("crop 256: --amp auto (the CPU default)", dict(amp="auto")),
    ("crop 256: channels-last, fp32", dict(amp="none", channels_last=True)),
]
CUDA_VARIANTS = [
    ("reference-style: fp32 eager, batch 1", dict()),
    ("bf16 + channels-last, batch 1", dict(amp="bf16", channels_last=True)),
    ("bf16 + channels-last + compile, batch 1", dict(amp="bf16", channels_last=True, compile=True)),
    ("bf16 + channels-last + compile, batch 4", dict(amp="bf16", channels_last=True, compile=True, batch_size=4)),
]


def time_variant(device: torch.device, opts: dict, warmup: int, repeat: int) -> float:
    cfg = TrainConfig(**{"device": str(device), **opts})
    model = CycleGAN(cfg, device)
    model.wrap(ddp=False, compile=cfg.compile)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    shape = (cfg.batch_size, 3, cfg.crop_size, cfg.crop_size)
    real_a = (torch.rand(shape, device=device) * 2 - 1).contiguous(memory_format=fmt)
    real_b = (torch.rand(shape, device=device) * 2 - 1).contiguous(memory_format=fmt)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    med, _ = median_time(lambda: model.train_step(real_a, real_b), warmup=warmup, repeat=repeat, sync=sync)
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    device = torch.device(args.device)
    variants = CUDA_VARIANTS if device.type == "cuda" else CPU_VARIANTS
    rows = []
    for label, opts in variants:
        sec = time_variant(device, opts, args.warmup, args.repeat)
        per_image = sec / opts.get("batch_size", 1)
        rows.append({"variant": label, "options": opts, "s_per_iter": sec, "s_per_image_pair": per_image})
        print(f"{label:60s} {sec * 1000:10.1f} ms/iter", flush=True)
    from cyclegan_tool.devices import resolve_amp

    auto = resolve_amp("auto", device)
    for r in rows:  # each row against the reference-style row of its own crop size
        ref = next(x for x in rows if "reference-style" in x["variant"]
                   and x["options"].get("crop_size") == r["options"].get("crop_size"))
        r["speedup_vs_reference"] = ref["s_per_iter"] / r["s_per_iter"]
    lines = [f"## Training speed ({device.type})", "",
             f"Machine: {machine()}  ", f"Command: `{command_line()}`  ",
             f"Median of {args.repeat} iterations after {args.warmup} warm-up; one iteration = one generator "
             "and one discriminator update on random images already in memory (no data loading). "
             f"`--amp auto` resolves to `{auto}` on this machine.", "",
             "| variant | ms / iteration | ms / image pair | speed-up vs. reference-style (same crop) |",
             "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['s_per_iter'] * 1000:.1f} | {r['s_per_image_pair'] * 1000:.1f} | "
                     f"{r['speedup_vs_reference']:.2f}x |")
    write_results(f"train_{device.type}", {"machine": machine(), "command": command_line(), "rows": rows},
                  "\n".join(lines))


if __name__ == "__main__":
    main()
