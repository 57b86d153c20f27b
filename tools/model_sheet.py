"""Side-by-side sheet and figures for a shipped model against the published reference model.

For each of the first N horse2zebra testA images that have a published output in
../shared/data/reference_outputs/horse2zebra_pretrained_AtoB/: input | ours | published.
The translation runs through `cyclegan_tool.convert`, exactly as `convert --model` runs it.
Figures: mean absolute difference (0-255) of ours vs. published, next to input vs. published
as the baseline (how far "doing nothing" is from the published zebras).

    python tools/model_sheet.py --model horse2zebra --out docs/horse2zebra_sheet.png
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import cyclegan_tool as ct
from cyclegan_tool.imageio import decode

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT.parent / "shared" / "data" / "reference_outputs" / "horse2zebra_pretrained_AtoB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="horse2zebra")
    ap.add_argument("--out", default=str(ROOT / "docs" / "horse2zebra_sheet.png"))
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--size", type=int, help="run at this shorter side (default: as convert --model does)")
    args = ap.parse_args()
    reals = sorted(REF.glob("*_real.png"))
    ours_vs_ref, input_vs_ref, rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        extra = {"size": args.size, "keep_size": True} if args.size else {}
        summary = ct.convert(reals, tmp, model=args.model, format="png", **extra)
        assert not summary.failed, summary.failed
        for real_path in reals:
            real = decode(real_path).rgb
            ours = decode(Path(tmp) / real_path.name).rgb
            ref = decode(real_path.with_name(real_path.name.replace("_real", "_fake"))).rgb
            ours_vs_ref.append(float(np.abs(ours.astype(int) - ref.astype(int)).mean()))
            input_vs_ref.append(float(np.abs(real.astype(int) - ref.astype(int)).mean()))
            if len(rows) < args.rows:
                rows.append(np.concatenate([real, ours, ref], axis=1))
    sheet = np.concatenate(rows, axis=0)
    header = Image.new("RGB", (sheet.shape[1], 28), "white")
    draw = ImageDraw.Draw(header)
    for i, text in enumerate(("input (testA)", f"ours: {args.model}", "published CycleGAN model")):
        draw.text((i * 256 + 8, 8), text, fill="black")
    out = Image.new("RGB", (sheet.shape[1], sheet.shape[0] + 28), "white")
    out.paste(header, (0, 0))
    out.paste(Image.fromarray(sheet), (0, 28))
    out.save(args.out, optimize=True)
    figures = {"images": len(reals), "mae_ours_vs_published": round(float(np.mean(ours_vs_ref)), 2),
               "mae_input_vs_published": round(float(np.mean(input_vs_ref)), 2),
               "closer_than_input": sum(o < i for o, i in zip(ours_vs_ref, input_vs_ref))}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
