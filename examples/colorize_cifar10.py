"""Grayscale <-> color on CIFAR-10 with the Keras chapter's CycleGAN (`--preset keras-colorize`).

    python examples/colorize_cifar10.py                 # build data, train, evaluate, render
    python examples/colorize_cifar10.py --epochs 12     # train longer (resumes the run)
    python examples/colorize_cifar10.py --skip-train    # evaluate the run as it is

Domain A is the grayscale (ITU-R 601 luma, 1 channel) version of the 20,000 CIFAR-10
training images of ../shared/data/cifar10.tar.gz, domain B the color originals, drawn
unpaired as in the chapter. Evaluation on the 2,000 test images: PSNR and colorfulness
against the true colors, KID against real color images (cyclegan_tool.evaluate), next to the
grayscale-as-RGB baseline; figures and numbers go to docs/EXAMPLES.md, and with --ship the
generators become the zoo models gray2color / color2gray.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

import cyclegan_tool as ct
from cyclegan_tool.conventions import luma

from example_utils import (DOCS, REPO, SHARED_DATA, best_checkpoint, chosen, grid, kid_trend, load, psnr, register_zoo,
                           rgb_sample, sample_folder, save_png, scored, train, unpack, write_card, write_section)

NAME = "colorize"


def build_dataset(shared: Path, work: Path) -> Path:
    data = work / "data"
    if (data / ".built").exists():
        return data
    src = unpack(shared / "cifar10.tar.gz", work / "source") / "cifar10"
    for split, gray_dir, color_dir in (("train", "trainA", "trainB"), ("test", "testA", "testB")):
        files = sorted((src / split).glob("*/*.jpg"))
        for path in files:
            name = f"{path.parent.name}_{path.stem}.png"
            rgb = load(path)
            save_png(rgb, data / color_dir / name)
            save_png(luma(rgb)[..., 0], data / gray_dir / name)
        print(f"{split}: {len(files)} images")
    (data / ".built").write_text("cifar10")
    return data


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colorfulness of one image (0 for gray)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def evaluate(data: Path, run_dir: Path, work: Path, kid_images: int = 1000) -> dict:
    ckpt = best_checkpoint(run_dir)
    out = work / "outputs"
    shutil.rmtree(out, ignore_errors=True)
    ct.convert(data / "testA", out / "colorized", model=ckpt, direction="a2b")
    ct.convert(data / "testB", out / "gray", model=ckpt, direction="b2a")
    ct.convert(out / "colorized", out / "regray", model=ckpt, direction="b2a")
    ct.convert(out / "gray", out / "recolor", model=ckpt, direction="a2b")
    names = sorted(p.name for p in (data / "testB").glob("*.png"))
    truth = [load(data / "testB" / n) for n in names]
    gray = [load(data / "testA" / n) for n in names]
    color = [load(out / "colorized" / n) for n in names]
    fake_gray = [load(out / "gray" / n)[..., 0] for n in names]
    results = {
        "checkpoint": ckpt.name, "test_images": len(names),
        "psnr_colorized": float(np.mean([psnr(c, t) for c, t in zip(color, truth)])),
        "psnr_gray_baseline": float(np.mean([psnr(g, t) for g, t in zip(gray, truth)])),
        "colorfulness_true": float(np.mean([colorfulness(t) for t in truth])),
        "colorfulness_colorized": float(np.mean([colorfulness(c) for c in color])),
        "colorfulness_gray_baseline": 0.0,
        "psnr_color_to_gray": float(np.mean([psnr(f, g[..., 0]) for f, g in zip(fake_gray, gray)])),
    }
    # KID against real color images that are not the test images' own colors
    real = sample_folder(data / "trainB", work / f"real_color_{kid_images}", kid_images)
    results["kid_colorized"] = ct.evaluate(limit=kid_images, spread=True, fake=out / "colorized", real=real).kid
    gray_rgb = rgb_sample(data / "testA", work / f"gray_as_rgb_{kid_images}", kid_images)
    results["kid_gray_baseline"] = ct.evaluate(fake=gray_rgb, real=real).kid
    results["kid_true_colors"] = ct.evaluate(limit=kid_images, spread=True, fake=data / "testB", real=real).kid
    return results


def render(data: Path, work: Path, figures: Path, n: int = 10) -> list[Path]:
    """The chapter's figures: source | translated | reconstructed, for n test images."""
    out = work / "outputs"
    names = sorted(p.name for p in (data / "testB").glob("*.png"))[::200][:n]  # one of each class
    rows_a = [[load(data / "testA" / x) for x in names], [load(out / "colorized" / x) for x in names],
              [load(out / "regray" / x) for x in names], [load(data / "testB" / x) for x in names]]
    rows_b = [[load(data / "testB" / x) for x in names], [load(out / "gray" / x) for x in names],
              [load(out / "recolor" / x) for x in names]]
    paths = [figures / "colorize_gray2color.png", figures / "colorize_color2gray.png"]
    save_png(grid(rows_a), paths[0])
    save_png(grid(rows_b), paths[1])
    return paths


def ship(run_dir: Path, r: dict) -> None:
    """The chosen checkpoint's generators as the zoo models gray2color / color2gray, with a card."""
    zoo = REPO / "cyclegan_tool" / "zoo"
    ckpt = best_checkpoint(run_dir)
    for name, direction in (("gray2color", "a2b"), ("color2gray", "b2a")):
        ct.export(ckpt, output=zoo / f"{name}.onnx", direction=direction)
    card = "docs/MODEL_CARD_gray2color.md"
    register_zoo({
        "gray2color": {"file": "gray2color.onnx", "direction": "a2b", "arch": "keras_unet_k3 ngf=32 (1 -> 3 channels)",
                       "precision": "fp32", "card": card, "size": 32,
                       "summary": "grayscale -> color for small (32x32, CIFAR-10-like) images; the Keras chapter's "
                                  "U-Net, trained on the CPU (see the card)"},
        "color2gray": {"file": "color2gray.onnx", "direction": "b2a", "arch": "keras_unet_k3 ngf=32 (3 -> 1 channels)",
                       "precision": "fp32", "card": card, "size": 32,
                       "summary": "color -> grayscale (the same run's other generator)"},
    })
    limits = ("Its colors are closer to real color images than gray by KID, but blotchy and often wrong."
              if r["kid_colorized"] < r["kid_gray_baseline"] else
              "**By KID it is not yet better than leaving the image gray**: colors are blotchy, often "
              f"wrong, and {'more' if r['colorfulness_colorized'] > r['colorfulness_true'] else 'less'} "
              "saturated than the truth on average.")
    write_card("gray2color", f"""
# Model card: gray2color / color2gray

- **What:** CycleGAN generators between grayscale (1 channel, ITU-R 601 luma) and color 32x32
  images, the Keras textbook chapter's network (`keras_unet_k3`: 4-layer U-Net, 3x3 kernels,
  instance norm, sigmoid output, pixels in [0, 1]).
- **Data:** the 20,000 CIFAR-10 training images of `../shared/data/cifar10.tar.gz` (the first
  2,000 of each class): their luma as domain A, the color originals as domain B, drawn unpaired.
- **Training:** `python examples/colorize_cifar10.py` = `--preset keras-colorize` (RMSprop 1e-4 /
  2e-4 with Keras' decay, MSE adversarial, MAE cycle x10, no identity loss, no pool, batch 32,
  discriminators first) with bf16 autocast, {r['steps']:,} steps ({r['cpu_hours']} h of wall clock on 2
  shared AMD EPYC cores); checkpoint {chosen(r)}, chosen by test KID after each epoch.
- **Scale:** runs at shorter side 32 (`models.json` "size"); larger inputs are scaled down and
  the output scaled back, so expect CIFAR-like detail.
- **Results** (2,000 CIFAR-10 test images; docs/EXAMPLES.md has the figures):

| | PSNR vs true colors | colorfulness (true {r['colorfulness_true']:.1f}) | KID vs real color |
|---|---|---|---|
| grayscale as RGB | {r['psnr_gray_baseline']:.2f} dB | 0.0 | {r['kid_gray_baseline']:.4f} |
| gray2color | {r['psnr_colorized']:.2f} dB | {r['colorfulness_colorized']:.1f} | {r['kid_colorized']:.4f} |

  color2gray reproduces the true luma at {r['psnr_color_to_gray']:.2f} dB.
- **Limits:** trained for a tiny fraction of the chapter's 100,000 steps. {limits} A
  demonstration of 1 <-> 3 channel models, not a colorizer for real use; not for photographs
  at full resolution.
""")
    print(f"shipped {ckpt} as gray2color / color2gray")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-data", type=Path, default=SHARED_DATA)
    ap.add_argument("--work", type=Path, default=REPO / "examples" / "runs" / NAME,
                    help="data, run folder and outputs (outside git)")
    ap.add_argument("--epochs", type=int, default=2, help="total epochs of 625 steps (batch 32)")
    ap.add_argument("--eval-limit", type=int, default=500, help="test images scored after each epoch")
    ap.add_argument("--amp", default="bf16", choices=["none", "bf16"],
                    help="bf16 autocast: 1.15-1.3x faster steps on a CPU with AVX512-BF16 (measured here)")
    ap.add_argument("--kid-images", type=int, default=500,
                    help="images on each side of the final KID figures (evenly spread samples)")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--from-results", action="store_true",
                    help="skip training and scoring: rewrite the figures, docs and card from WORK/results.json")
    ap.add_argument("--ship", action="store_true", help="export the chosen checkpoint into the zoo")
    args = ap.parse_args()

    data = build_dataset(args.shared_data, args.work)
    run_root = args.work / "runs"
    if not (args.skip_train or args.from_results):
        train(data, run_root, NAME, "keras-colorize", args.epochs, eval_every=1, eval_limit=args.eval_limit,
              best_metric="kid_a2b", save_epoch_freq=1, amp=args.amp, save_latest_freq=200)
    run_dir = run_root / NAME
    def score() -> dict:
        return {**evaluate(data, run_dir, args.work, args.kid_images), "kid_images": args.kid_images}

    results = scored(args.work, run_dir, score, reuse=args.from_results)
    figures = render(data, args.work, DOCS / "examples")
    if args.ship:
        ship(run_dir, results)
    print(json.dumps({k: v for k, v in results.items() if k != "log"}, indent=2))
    write_section(NAME, report(results, figures))


def report(r: dict, figures: list[Path]) -> str:
    rel = [f.relative_to(DOCS).as_posix() for f in figures]
    epochs = "\n".join(f"| {e['epoch']} | {e['step']} | {e['kid_a2b']:.4f} | {e['kid_b2a']:.4f} |" for e in r["log"])
    better = r["kid_colorized"] < r["kid_gray_baseline"]
    verdict = (f"After {r['steps']:,} steps (the chapter trains on the order of 100,000), the colorized images are "
               + ("closer to real color images than the gray baseline by KID" if better else
                  "**not yet closer to real color images than the gray baseline** by KID, and further from the "
                  "true colors by PSNR (plausible but wrong hues cost more than none)") + "; " + kid_trend(r["log"]) + ".")
    return f"""
## Grayscale <-> color (CIFAR-10), `--preset keras-colorize`

`python examples/colorize_cifar10.py` builds the data from `../shared/data/cifar10.tar.gz`
(20,000 training images: domain A their luma, 1 channel; domain B the color originals, drawn
unpaired), trains the chapter's U-Net/PatchGAN (3x3 kernels) with its RMSprop recipe at batch
32 on the CPU ({r['cpu_hours']} h of wall clock on 2 shared cores), keeps the checkpoint with
the best test KID ({chosen(r)}), and scores the {r['test_images']} test images.

| | PSNR vs true colors (dB) | colorfulness (true: {r['colorfulness_true']:.1f}) | KID vs real color images |
|---|---|---|---|
| grayscale as RGB (baseline) | {r['psnr_gray_baseline']:.2f} | {r['colorfulness_gray_baseline']:.1f} | {r['kid_gray_baseline']:.4f} |
| colorized (gray -> color) | {r['psnr_colorized']:.2f} | {r['colorfulness_colorized']:.1f} | {r['kid_colorized']:.4f} |
| true colors (reference) | - | {r['colorfulness_true']:.1f} | {r['kid_true_colors']:.4f} |

{verdict}

PSNR: mean over the test images of each image's PSNR (identical images, such as CIFAR-10's few
gray photos against their gray copies, count as 60 dB). Color -> gray (the other generator)
reproduces the true luma at {r['psnr_color_to_gray']:.2f} dB PSNR. KID: {r['kid_images']} translated test images (evenly spread over the classes) against as many
real color training images; the true colors' own KID shows the floor for this sample size.
Test KID after each epoch (500 test images, chose the checkpoint):

| epoch | step | KID gray -> color | KID color -> gray |
|---|---|---|---|
{epochs}

Rows: grayscale source, colorized, reconstructed gray, true color.

![gray -> color]({rel[0]})

Rows: color source, translated to gray, reconstructed color.

![color -> gray]({rel[1]})
"""


if __name__ == "__main__":
    main()
