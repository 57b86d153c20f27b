"""Seconds per training iteration (one G step + one D step) of the CycleGAN trainer.

Times `CycleGAN.train_step` on random images already on the device (data loading is
not included), median of --repeat iterations after --warmup. Variants run in one
process, alternating iteration by iteration, so their ratios compare. With --loss-steps,
FP32 eager and `--amp auto` also train side by side on real horse2zebra crops to show
whether the faster setting changes the losses. "Stacked calls": each network runs once on
two stacked batches where the reference calls it twice (`CycleGAN.stack_calls`, the same
numbers for per-image norms); the reference-style rows call separately, as the reference does.

    python bench/train_bench.py                      # CPU: reference config and a small one
    python bench/train_bench.py --device cuda        # GPU: fp32 eager vs. the speed switches
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, command_line, machine, write_results  # noqa: E402

from cyclegan_tool.train.config import TrainConfig  # noqa: E402
from cyclegan_tool.train.cyclegan import CycleGAN  # noqa: E402

CPU_VARIANTS = [  # (label, options); the first of each crop is the reference: eager FP32, torch's default Adam
    ("crop 64: reference-style, resnet_9blocks ngf64, batch 1, fp32 eager", dict(amp="none", crop_size=64,
                                                                               reference_adam=True)),
    ("crop 64: defaults (--amp auto, fused Adam, stacked calls)", dict(amp="auto", crop_size=64)),
    ("crop 64: --amp auto, fused Adam, separate calls", dict(amp="auto", crop_size=64, stack_calls=False)),
    ("crop 64: fp32, fused Adam, stacked calls", dict(amp="none", crop_size=64)),
    ("crop 64: channels-last, fp32, stacked calls", dict(amp="none", crop_size=64, channels_last=True)),
    ("crop 256: reference-style, resnet_9blocks ngf64, batch 1, fp32 eager", dict(amp="none", reference_adam=True)),
    ("crop 256: defaults (--amp auto, fused Adam, stacked calls)", dict(amp="auto")),
    ("crop 256: --amp auto, fused Adam, separate calls", dict(amp="auto", stack_calls=False)),
    ("crop 256: fp32, fused Adam, stacked calls", dict(amp="none")),
]
CUDA_VARIANTS = [
    ("reference-style: fp32 eager, batch 1", dict(reference_adam=True)),
    ("bf16 + channels-last, batch 1", dict(amp="bf16", channels_last=True)),
    ("bf16 + channels-last + compile, batch 1", dict(amp="bf16", channels_last=True, compile=True)),
    ("bf16 + channels-last + compile, batch 4", dict(amp="bf16", channels_last=True, compile=True, batch_size=4)),
]


def build(device: torch.device, opts: dict, seed: int = 0) -> tuple[CycleGAN, TrainConfig]:
    opts = dict(opts)
    reference = opts.pop("reference_adam", False)
    stack = opts.pop("stack_calls", not reference)
    cfg = TrainConfig(**{"device": str(device), **opts})
    torch.manual_seed(seed)  # every variant starts from the same weights
    model = CycleGAN(cfg, device)
    model.stack_calls = model.stack_calls and stack  # the reference calls each network once per image batch
    model.wrap(ddp=False, compile=cfg.compile)
    if reference:  # the reference implementation's optimizer: torch's default Adam, not fused
        nets = model.nets
        model.opt_gen = torch.optim.Adam([*nets["gen_a2b"].parameters(), *nets["gen_b2a"].parameters()],
                                         lr=cfg.lr, betas=(cfg.beta1, 0.999))
        model.opt_disc = torch.optim.Adam([*nets["disc_a"].parameters(), *nets["disc_b"].parameters()],
                                          lr=cfg.lr, betas=(cfg.beta1, 0.999))
    return model, cfg


def random_pair(cfg: TrainConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    shape = (cfg.batch_size, 3, cfg.crop_size, cfg.crop_size)
    return tuple((torch.rand(shape, device=device) * 2 - 1).contiguous(memory_format=fmt) for _ in range(2))


def time_variants(device: torch.device, variants: list, warmup: int, repeat: int) -> list[list[float]]:
    """Seconds per iteration of every variant, the variants alternating within each round (so
    load from other processes falls on all of them alike)."""
    import time

    built = [build(device, opts) for _, opts in variants]
    inputs = [random_pair(cfg, device) for _, cfg in built]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: list[list[float]] = [[] for _ in variants]
    for r in range(warmup + repeat):
        for i, ((model, _), (a, b)) in enumerate(zip(built, inputs)):
            sync()
            t0 = time.perf_counter()
            model.train_step(a, b)
            sync()
            if r >= warmup:
                times[i].append(time.perf_counter() - t0)
    return times


def real_crops(root: Path, n: int, crop: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`n` (A, B) pairs of random `crop` crops of horse2zebra training images, in [-1, 1]."""
    import numpy as np
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)
    files = {d: sorted((root / d).glob("*.jpg")) for d in ("trainA", "trainB")}
    pairs = []
    for _ in range(n):
        pair = []
        for d in ("trainA", "trainB"):
            f = files[d][int(torch.randint(len(files[d]), (1,), generator=gen))]
            x = torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32)).permute(2, 0, 1) / 127.5 - 1
            top, left = (int(torch.randint(s - crop + 1, (1,), generator=gen)) for s in x.shape[1:])
            pair.append(x[None, :, top:top + crop, left:left + crop].contiguous())
        pairs.append(tuple(pair))
    return pairs


def compare_losses(device: torch.device, steps: int, data: Path, crop: int) -> dict:
    """FP32 eager and `--amp auto` trained side by side from the same weights on the same
    batches: the mean of each loss term over the last half of the steps."""
    from cyclegan_tool.devices import resolve_amp

    amp = resolve_amp("auto", device)
    runs = {"fp32": build(device, dict(amp="none", crop_size=crop, reference_adam=True)),
            amp: build(device, dict(amp=amp, crop_size=crop))}
    history: dict[str, list[dict]] = {k: [] for k in runs}
    for a, b in real_crops(data, steps, crop, seed=1):
        for k, (model, _) in runs.items():
            history[k].append({t: float(v) for t, v in model.train_step(a.to(device), b.to(device)).items()})
    half = history["fp32"][steps // 2:]
    terms = list(half[0])
    means = {k: {t: sum(h[t] for h in v[steps // 2:]) / len(half) for t in terms} for k, v in history.items()}
    return {"steps": steps, "crop": crop, "amp": amp, "means_last_half": means}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--loss-steps", type=int, default=300,
                    help="also train FP32 and --amp auto side by side on real crops for N steps and compare "
                         "their losses (0: skip)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "horse2zebra"))
    args = ap.parse_args()
    device = torch.device(args.device)
    variants = CUDA_VARIANTS if device.type == "cuda" else CPU_VARIANTS
    rows = []
    for (label, opts), times in zip(variants, time_variants(device, variants, args.warmup, args.repeat)):
        sec = statistics.median(times)
        rows.append({"variant": label, "options": opts, "seconds": times, "s_per_iter": sec,
                     "s_per_image_pair": sec / opts.get("batch_size", 1)})
        print(f"{label:60s} {sec * 1000:10.1f} ms/iter", flush=True)
    losses = compare_losses(device, args.loss_steps, Path(args.data), 64) if args.loss_steps else None
    from cyclegan_tool.devices import resolve_amp

    auto = resolve_amp("auto", device)
    for r in rows:  # each row against the reference-style row of its own crop size
        ref = next(x for x in rows if "reference-style" in x["variant"]
                   and x["options"].get("crop_size") == r["options"].get("crop_size"))
        r["speedup_vs_reference"] = ref["s_per_iter"] / r["s_per_iter"]
    lines = [f"## Training speed ({device.type})", "",
             f"Machine: {machine()}  ", f"Command: `{command_line()}`  ",
             f"Median of {args.repeat} iterations after {args.warmup} warm-up, the variants alternating "
             "iteration by iteration; one iteration = one generator "
             "and one discriminator update on random images already in memory (no data loading). "
             f"`--amp auto` resolves to `{auto}` on this machine.", "",
             "| variant | ms / iteration | ms / image pair | speed-up vs. reference-style (same crop) |",
             "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['s_per_iter'] * 1000:.1f} | {r['s_per_image_pair'] * 1000:.1f} | "
                     f"{r['speedup_vs_reference']:.2f}x |")
    if losses:
        terms = list(losses["means_last_half"]["fp32"])
        lines += ["", f"Losses: resnet_9blocks ngf64, crop {losses['crop']}, FP32 eager (torch's default Adam) and "
                  f"the defaults (`--amp {losses['amp']}`, fused Adam, stacked calls) "
                  f"trained side by side from the same weights on the same {losses['steps']} batches of real "
                  "horse2zebra crops; mean of each term over the last half:", "",
                  "| run | " + " | ".join(terms) + " |", "|---|" + "---:|" * len(terms)]
        for k, m in losses["means_last_half"].items():
            lines.append(f"| {k} | " + " | ".join(f"{m[t]:.4f}" for t in terms) + " |")
    write_results(f"train_{device.type}", {"machine": machine(), "command": command_line(), "rows": rows,
                                           "losses": losses},
                  "\n".join(lines))


if __name__ == "__main__":
    main()
