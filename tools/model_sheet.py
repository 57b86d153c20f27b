"""Side-by-side sheet and figures for a shipped model against the published reference model.

For each of the first N horse2zebra testA images that have a published output in
../shared/data/reference_outputs/horse2zebra_pretrained_AtoB/: input | ours | published.
Figures: mean absolute difference (0-255) of ours vs. published, next to input vs. published
as the baseline (how far "doing nothing" is from the published zebras).

    python tools/model_sheet.py --model horse2zebra --out docs/horse2zebra_sheet.jpg
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cyclegan_tool.conventions import batch_to_arrays
from cyclegan_tool.imageio import decode
from cyclegan_tool.runtime import ConvertOptions, make_backend
from cyclegan_tool.runtime.translate import finish, pad_batch, prepare
from cyclegan_tool.zoo import catalogue, model_file

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT.parent / "shared" / "data" / "reference_outputs" / "horse2zebra_pretrained_AtoB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="horse2zebra")
    ap.add_argument("--out", default=str(ROOT / "docs" / "horse2zebra_sheet.jpg"))
    ap.add_argument("--rows", type=int, default=8)
    args = ap.parse_args()
    reals = sorted(REF.glob("*_real.png"))
    backend, _ = make_backend(model_file(args.model), device="cpu")
    scale = catalogue()[args.model].get("size")  # as `convert --model` runs it
    opts = ConvertOptions(size=scale, keep_size=True) if scale else ConvertOptions()
    ours_vs_ref, input_vs_ref, rows = [], [], []
    with backend:
        for real_path in reals:
            fake_path = real_path.with_name(real_path.name.replace("_real", "_fake"))
            img = decode(real_path)
            real = img.rgb
            prep = prepare(img, backend.info, opts)
            ours = batch_to_arrays(finish(backend.infer(pad_batch([prep.x], prep.padded)), prep))[0]
            ref = decode(fake_path).rgb
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
    out.save(args.out, quality=90)
    figures = {"images": len(reals), "mae_ours_vs_published": round(float(np.mean(ours_vs_ref)), 2),
               "mae_input_vs_published": round(float(np.mean(input_vs_ref)), 2),
               "closer_than_input": sum(o < i for o, i in zip(ours_vs_ref, input_vs_ref))}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
