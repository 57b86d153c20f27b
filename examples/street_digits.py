"""A synthetic street-number digit domain in the style of SVHN, with labels.

SVHN (Netzer et al., 2011) cannot be downloaded here, so this STANDS IN FOR IT: 32x32 color
crops centred on one house-number digit, drawn with the fonts found on the machine (and
Pillow's own), in varied colors on gradient, textured backgrounds, with neighbouring digits cut
at the left and right edges, small rotations, blur, noise and JPEG loss. The label is the
centre digit. It is an imitation of SVHN's look, not SVHN's statistics.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
SIZE, SCALE = 32, 2  # drawn at 64x64, then reduced (anti-aliased like a camera's resampling)


def find_fonts() -> list[Path]:
    """TrueType fonts on this machine (none is fine: Pillow's built-in font is always used too)."""
    fonts = sorted(p for d in FONT_DIRS if d.is_dir() for p in d.rglob("*.[to]tf"))
    return [p for p in fonts if "Math" not in p.name][:40]


def _font(fonts: list[Path], size: int, rng: np.random.Generator):
    choice = int(rng.integers(len(fonts) + 1))
    if choice < len(fonts):
        try:
            return ImageFont.truetype(str(fonts[choice]), size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def _luma(c) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _colors(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Two background colors and a digit color at least 70 luma levels away from both."""
    def color():  # muted more often than not, as painted walls and plates are
        c = rng.integers(0, 256, 3).astype(np.float64)
        gray = c.mean()
        return np.clip(gray + rng.uniform(0.15, 1.0) * (c - gray), 0, 255)

    while True:
        bg = color()
        bg2 = np.clip(bg + rng.integers(-60, 61, 3), 0, 255)
        fg = color()
        if min(abs(_luma(fg) - _luma(bg)), abs(_luma(fg) - _luma(bg2))) > 70:
            return tuple(map(int, bg)), tuple(map(int, bg2)), tuple(map(int, fg))


def _background(rng: np.random.Generator, c1, c2) -> Image.Image:
    n = SIZE * SCALE
    t = np.linspace(0, 1, n)
    angle = rng.uniform(0, np.pi)
    ramp = np.clip(0.5 + (np.cos(angle) * (t[None, :] - 0.5) + np.sin(angle) * (t[:, None] - 0.5)), 0, 1)
    img = np.asarray(c1, np.float64) * (1 - ramp[..., None]) + np.asarray(c2, np.float64) * ramp[..., None]
    coarse = rng.normal(0, rng.uniform(3, 18), (8, 8, 1))  # low-frequency texture (wall, plate, shadow)
    texture = np.asarray(Image.fromarray(coarse[..., 0].astype(np.float32), "F").resize((n, n), Image.BICUBIC))
    img += texture[..., None] + rng.normal(0, rng.uniform(0, 6), img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def street_digit(label: int, rng: np.random.Generator, fonts: list[Path]) -> np.ndarray:
    """One uint8 [32, 32, 3] image whose centre digit is `label`."""
    n = SIZE * SCALE
    bg, bg2, fg = _colors(rng)
    img = _background(rng, bg, bg2)
    font = _font(fonts, int(rng.integers(38, 54)), rng)
    left = str(rng.integers(10)) if rng.random() < 0.6 else ""
    right = str(rng.integers(10)) if rng.random() < 0.6 else ""
    text = f"{left}{label}{right}"
    layer = Image.new("L", (n * 3, n * 2), 0)
    draw = ImageDraw.Draw(layer)
    spacing = int(rng.integers(-2, 8))
    widths = [draw.textlength(ch, font=font) for ch in text]
    x = n * 1.5 - (sum(widths[: len(left)]) + len(left) * spacing) - widths[len(left)] / 2
    box = font.getbbox("0")
    y = n - (box[1] + box[3]) / 2 + rng.uniform(-3, 3)
    for ch, w in zip(text, widths):
        draw.text((x, y), ch, fill=255, font=font)
        x += w + spacing
    layer = layer.rotate(rng.uniform(-8, 8), resample=Image.BICUBIC, center=(n * 1.5, n))
    dx = rng.uniform(-3, 3)
    mask = layer.crop((int(n + dx), n // 2, int(n + dx) + n, n // 2 + n))
    if rng.random() < 0.25:  # a painted shadow or outline
        shadow = mask.filter(ImageFilter.MaxFilter(3)).transform(mask.size, Image.AFFINE, (1, 0, -2, 0, 1, -2))
        img.paste(tuple(int(c * 0.4) for c in bg), mask=shadow)
    img.paste(fg, mask=mask)
    img = img.resize((SIZE, SIZE), Image.LANCZOS)
    if rng.random() < 0.7:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.9)))
    arr = np.asarray(img).astype(np.float64) + rng.normal(0, rng.uniform(0, 7), (SIZE, SIZE, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:  # camera/JPEG loss
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(35, 90)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return np.asarray(img)


def make_split(folder: Path, count: int, seed: int) -> None:
    """`count` images, labels balanced, as folder/<label>_<index>.png."""
    rng = np.random.default_rng(seed)
    fonts = find_fonts()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = i % 10
        Image.fromarray(street_digit(label, rng, fonts)).save(folder / f"{label}_{i:05d}.png")
