"""Video: frames/s of `convert` on a 10-second 256p clip against converting the same frames
extracted as PNGs, and flicker with and without `--temporal-blend`.

The clip is a camera panning across real photos (horse2zebra trainA images side by side, so the
content moves as in a real shot), 448x256 at 25 fps with a sound track, H.264. Both variants
are whole processes of the default install, timed launch to exit, alternating, median of
--repeat: `cyclegan-tool convert --model horse2zebra clip.mp4 out.mp4` against
`cyclegan-tool convert --model horse2zebra frames/ out/` on its 250 frames as PNG files
(extracting them is not counted; encoding the PNGs back into a clip would come on top).
Flicker is what the summary reports: the mean absolute change between consecutive output
frames over that of the input frames (1.0: the output changes exactly as much as the input).

    python bench/video_bench.py [--data ../shared/data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, command_line, machine, write_results  # noqa: E402

SIZE = (448, 256)  # width, height: 256p
FPS, SECONDS = 25, 10


def make_clip(photos: list[Path], path: Path) -> int:
    """A pan across `photos` side by side, with a tone; returns the frame count."""
    import av
    from PIL import Image

    w, h = SIZE
    strip = np.concatenate([np.asarray(Image.open(p).convert("RGB").resize((h, h))) for p in photos], axis=1)
    n = FPS * SECONDS
    span = strip.shape[1] - w
    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=FPS)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    v.options = {"crf": "18"}
    a = out.add_stream("aac", rate=16000)
    for i in range(n):
        x = round(span * i / (n - 1))
        for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(strip[:, x:x + w]), format="rgb24")):
            out.mux(p)
    for p in v.encode():
        out.mux(p)
    t = np.arange(16000 * SECONDS) / 16000
    af = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp",
                                    layout="mono")
    af.sample_rate = 16000
    for p in a.encode(af):
        out.mux(p)
    for p in a.encode():
        out.mux(p)
    out.close()
    return n


def extract_pngs(clip: Path, folder: Path) -> int:
    import av

    folder.mkdir()
    with av.open(str(clip)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            frame.to_image().save(folder / f"frame_{i:05d}.png")
    return i + 1


def tool() -> list[str]:
    exe = shutil.which("cyclegan-tool")
    return [exe] if exe else [sys.executable, "-m", "cyclegan_tool"]


def run(args: list[str], cache: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(tool() + args, capture_output=True, text=True, env=dict(os.environ, XDG_CACHE_HOME=str(cache)))
    took = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return took, res.stdout + res.stderr


def flicker(output: str) -> float:
    found = re.search(r"flicker ([0-9.]+)", output)
    if not found:
        raise SystemExit(f"no flicker figure in:\n{output}")
    return float(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--blends", default="0.3,0.5", help="--temporal-blend weights to show beside 0")
    args = ap.parse_args()
    photos = sorted((args.data / "horse2zebra" / "trainA").glob("*.jpg"))[:6]
    if len(photos) < 6:
        raise SystemExit(f"needs horse2zebra/trainA images under {args.data}")
    work = Path(tempfile.mkdtemp(prefix="video_bench_"))
    clip = work / "clip.mp4"
    frames = make_clip(photos, clip)
    extract_pngs(clip, work / "frames")
    cache = work / "cache"
    run(["convert", "--model", "horse2zebra", str(clip), str(work / "warm.mp4")], cache)  # forms and checks cached
    times: dict[str, list[float]] = {"clip": [], "pngs": []}
    out_line = ""
    for r in range(args.repeat):
        took, out_line = run(["convert", "--model", "horse2zebra", str(clip), str(work / f"out_{r}.mp4")], cache)
        times["clip"].append(took)
        took, _ = run(["convert", "--model", "horse2zebra", str(work / "frames"), str(work / f"png_{r}")], cache)
        times["pngs"].append(took)
        print(f"run {r + 1}: clip {times['clip'][-1]:.1f} s, PNG frames {times['pngs'][-1]:.1f} s", flush=True)
    blends = {0.0: flicker(out_line)}
    for b in (float(v) for v in args.blends.split(",") if v):
        _, said = run(["convert", "--model", "horse2zebra", str(clip), str(work / f"blend_{b}.mp4"),
                       "--temporal-blend", str(b)], cache)
        blends[b] = flicker(said)
    backend = next((ln for ln in out_line.splitlines() if " -> " in ln), "").split(": ", 1)[-1]
    shutil.rmtree(work)
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = ["## Video (cpu)", "", f"Machine: {machine()}  ", f"Command: `{command_line()}`  ",
             f"A {SECONDS}-second {SIZE[0]}x{SIZE[1]} clip at {FPS} fps ({frames} frames, H.264 CRF 18, AAC sound): "
             "a camera panning across six horse2zebra trainA photos. Whole processes of `cyclegan-tool convert "
             "--model horse2zebra`, warm cache, alternating, median of "
             f"{args.repeat}. Backend: {backend or 'see the start line'}.", "",
             "| input | wall (s) | frames/s |", "|---|---:|---:|",
             f"| clip.mp4 -> out.mp4 (decode, translate, encode H.264, copy the sound) | {med['clip']:.1f} | "
             f"{frames / med['clip']:.1f} |",
             f"| its {frames} frames as PNG files -> PNG files (extraction not counted) | {med['pngs']:.1f} | "
             f"{frames / med['pngs']:.1f} |", "",
             "Flicker (mean change between consecutive output frames over the input's; the summary's figure):", "",
             "| --temporal-blend | flicker |", "|---:|---:|",
             *[f"| {b:g} | {f:.2f} |" for b, f in blends.items()], "",
             "A blend weight W keeps W of the previous output frame in each frame: it lowers flicker and "
             "ghosts moving edges by as much; it is off by default."]
    write_results("video_cpu", {"machine": machine(), "command": command_line(), "frames": frames,
                                "seconds": times, "flicker": {str(k): v for k, v in blends.items()}},
                  "\n".join(lines))


if __name__ == "__main__":
    main()
