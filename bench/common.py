"""Shared by the bench scripts: machine description, medians, and results files.

Each script writes `results/<name>.json` and rewrites its own section of
docs/BENCHMARKS.md (between `<!-- bench:<name> -->` markers), so numbers in the docs
always come from a script run, with the machine and command next to them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    from cyclegan_tool.devices import cpu_model

    cpu = cpu_model()  # the name with family/model/stepping: "AMD EPYC (25/17/1)"
    if cpu == "cpu":
        cpu = platform.processor() or platform.machine()
    desc = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        desc += f"; GPU {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return desc


def median_time(fn, *, warmup: int, repeat: int, sync=None) -> tuple[float, list[float]]:
    """Median wall seconds of `fn()` over `repeat` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def command_line() -> str:
    import shlex

    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])


def write_results(name: str, payload: dict, markdown: str, doc_name: str = "BENCHMARKS.md") -> None:
    """Save the JSON and replace this benchmark's section of docs/DOC_NAME (BENCHMARKS.md)."""
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    doc = ROOT / "docs" / doc_name
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    section = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(text)


def shipped_as_pth(model: str, path: Path) -> Path:
    """A shipped model's generator saved as a reference-style `.pth` (a plain state_dict) at `path`."""
    from cyclegan_tool.models import build_generator
    from cyclegan_tool.weights import generator_weights

    spec, state = generator_weights(model)
    net = build_generator(spec)
    net.load_state_dict(state)
    torch.save(net.state_dict(), path)
    return path


def bench_weights(kind: str, path: Path) -> str:
    """Write the generator a bench runs to `path` as a reference-layout `.pth`: "horse2zebra" (the
    shipped weights) or "random" (a reference ResNet-9 ngf 64, seeded); returns its description."""
    from cyclegan_tool import checkpoints
    from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights

    if kind == "horse2zebra":
        shipped_as_pth("horse2zebra", path)
    else:
        torch.manual_seed(0)
        torch.save(init_weights(build_generator(GeneratorSpec())).state_dict(), path)
    spec = checkpoints.load_generator(path).spec
    return f"{spec.name} ngf {spec.ngf}, " + ("the shipped horse2zebra weights" if kind == "horse2zebra"
                                               else "random weights")


def psnr_folders(a: Path, b: Path) -> float:
    """Mean PSNR (dB, capped at 99) between same-named PNGs of two folders."""
    import numpy as np
    from PIL import Image

    scores = []
    for p in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(p), np.float64)
        y = np.asarray(Image.open(b / p.name), np.float64)
        mse = float(np.mean((x - y) ** 2))
        scores.append(99.0 if mse == 0 else min(99.0, 10 * np.log10(255.0**2 / mse)))
    return float(np.mean(scores)) if scores else float("nan")
