"""`training.png`: the loss terms and the test metrics over training, drawn with Pillow alone.

One panel per series group (generator losses, discriminator losses, KID, FID), each a line
per term against the step, with the min and max on the y axis.
"""

from __future__ import annotations

import io
from pathlib import Path

from cyclegan_tool.fileio import atomic_write

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
W, H, PAD = 560, 220, 44


def _panel(title: str, series: dict[str, list[tuple[float, float]]]):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    points = [p for pts in series.values() for p in pts]
    d.text((PAD, 4), title, fill="black")
    x0, y0, x1, y1 = PAD, 20, W - 10, H - 24
    d.rectangle((x0, y0, x1, y1), outline=(160, 160, 160))
    if not points:
        d.text((x0 + 8, y0 + 8), "no data yet", fill="gray")
        return img
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    xmin, xmax = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    ymin, ymax = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def at(x: float, y: float) -> tuple[float, float]:
        return (x0 + (x - xmin) / (xmax - xmin) * (x1 - x0), y1 - (y - ymin) / (ymax - ymin) * (y1 - y0))

    d.text((2, y0), f"{ymax:.3g}", fill="black")
    d.text((2, y1 - 10), f"{ymin:.3g}", fill="black")
    d.text((x0, y1 + 4), f"step {xmin:.0f}", fill="black")
    d.text((x1 - 70, y1 + 4), f"step {xmax:.0f}", fill="black")
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        xy = [at(x, y) for x, y in pts]
        if len(xy) > 1:
            d.line(xy, fill=color, width=2)
        for px, py in xy if len(xy) < 30 else []:
            d.ellipse((px - 2, py - 2, px + 2, py + 2), fill=color)
        d.text((x0 + 8 + 86 * i, y0 + 4), name, fill=color)
    return img


def write_training_plot(path: Path, records: list[dict]) -> Path:
    """Draw the records of log.jsonl (losses, and `metrics` entries) into one PNG."""
    from PIL import Image

    groups: dict[str, dict[str, list[tuple[float, float]]]] = {
        "generator losses": {}, "discriminator losses": {}, "KID (test)": {}, "FID (test)": {}}
    for r in records:
        step = r.get("step", 0)
        for k, v in r.items():
            if not isinstance(v, (int, float)) or k in ("epoch", "step", "lr", "time") or "std" in k:
                continue
            group = ("KID (test)" if k.startswith("kid") else "FID (test)" if k.startswith("fid")
                     else "discriminator losses" if k.startswith("disc") else "generator losses")
            groups[group].setdefault(k, []).append((step, float(v)))
    panels = [_panel(title, series) for title, series in groups.items()]
    sheet = Image.new("RGB", (W * 2, H * 2), "white")
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % 2) * W, (i // 2) * H))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
