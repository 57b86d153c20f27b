"""The reference-style conversion loop, as the reference test.py works: one image at a time,
batch 1, FP32, decode -> forward -> PNG encode, nothing overlapped.

Run as a process it is the whole-process baseline of `convert_bench.py --mode user`
(torch's import and the weights' load included):

    python bench/reference_loop.py latest_net_G.pth in/ out/
"""

from __future__ import annotations

import sys
from pathlib import Path


def reference_loop(files: list[Path], weights: Path, out: Path, device: str = "cpu") -> None:
    import numpy as np
    import torch
    from PIL import Image

    from cyclegan_tool import checkpoints

    net = checkpoints.load_generator(weights).net.to(device).eval()
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for f in files:
            img = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32)
            x = torch.from_numpy(img).permute(2, 0, 1)[None].to(device) / 127.5 - 1
            y = net(x)[0].float().cpu()
            arr = ((y.permute(1, 2, 0).numpy() + 1) / 2 * 255).astype(np.uint8)
            Image.fromarray(arr).save(out / (f.stem + ".png"))


if __name__ == "__main__":
    weights, src, dst = (Path(a) for a in sys.argv[1:4])
    reference_loop(sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".png")), weights, dst)
