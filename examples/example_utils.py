"""What the two Keras-chapter examples share: finding ../shared/data, unpacking an archive
once, training through the public API, image grids, and the docs/EXAMPLES.md section."""

from __future__ import annotations

import json
import re
import tarfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import cyclegan_tool as ct

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
DOCS = REPO / "docs"


def unpack(archive: Path, into: Path) -> Path:
    """Extract `archive` under `into` once (a marker file says it is complete); returns `into`."""
    done = into / ".unpacked"
    if done.exists():
        return into
    if not archive.is_file():
        raise SystemExit(f"{archive}: not found (the examples read ../shared/data beside the clone; "
                         "give --shared-data DIR)")
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    done.write_text(archive.name)
    return into


def save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if array.ndim == 2 else "RGB"
    Image.fromarray(array, mode).save(path)


def load(path: Path) -> np.ndarray:
    """uint8 [H, W, 3] (gray files replicated)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class EpochLines:
    """A training reporter (see cyclegan_tool.train.trainer.Reporter) that prints one line per epoch."""

    def start(self, *, total_steps, done_steps, info):
        print(f"training: {total_steps} steps to go, run folder {info['run_dir']}", flush=True)

    def step(self, **_):
        pass

    def epoch_end(self, *, epoch, total_epochs, seconds, lr, metrics=None, best=False):
        kid = f", test KID a2b {metrics['kid_a2b']:.4f} b2a {metrics['kid_b2a']:.4f}" if metrics else ""
        print(f"epoch {epoch}/{total_epochs} in {seconds:.0f} s{kid}{' (best)' if best else ''}", flush=True)

    def close(self):
        pass


def train(dataroot: Path, run_root: Path, name: str, preset: str, epochs: int, **options) -> Path:
    """Train (or resume, with a longer schedule) through `cyclegan_tool.train`; returns the run folder."""
    run_dir = run_root / name
    resume = (run_dir / "latest.pt").exists()
    t0 = time.perf_counter()
    ct.train(dataroot, preset=None if resume else preset, resume=resume, name=name, reporter=EpochLines(),
             checkpoints_dir=str(run_root), n_epochs=epochs, n_epochs_decay=0, **options)
    print(f"trained {name} in {time.perf_counter() - t0:.0f} s")
    return run_dir


def best_checkpoint(run_dir: Path) -> Path:
    return run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "latest.pt"


STOPPED_GAP_S = 1800  # records come every few minutes at most; a longer silence is a stopped run


def training_hours(run_dir: Path) -> float:
    """Wall-clock hours of the run's logged training: the time between consecutive log.jsonl
    records, leaving out the gaps while the run was stopped (a resumed run's pause)."""
    times = sorted(r["time"] for r in run_log(run_dir) if "time" in r)
    return sum(b - a for a, b in zip(times, times[1:]) if b - a < STOPPED_GAP_S) / 3600


def best_epoch(log: list[dict], key: str = "kid_a2b") -> dict:
    """The per-epoch test record with the lowest KID (the one `best.pt` holds)."""
    return min(log, key=lambda e: e[key])


def chosen(r: dict) -> str:
    """Which checkpoint the example kept, for the docs."""
    if not r["log"]:
        return f"`{r['checkpoint']}`"
    best = best_epoch(r["log"])
    return f"`{r['checkpoint']}`: epoch {best['epoch']}, step {best['step']:,}"


def kid_trend(log: list[dict], key: str = "kid_a2b") -> str:
    """How the per-epoch test KID went, in words, for the docs."""
    if len(log) < 2:
        return "one epoch was scored"
    best = log.index(best_epoch(log, key))
    later = len(log) - 1 - best
    if not later:
        return "the test KID was still falling at the last epoch; train longer with `--epochs`"
    return (f"the test KID was lowest after epoch {log[best]['epoch']} of {log[-1]['epoch']} and the {later} "
            f"later epoch{'s' if later > 1 else ''} did not improve on it, so that epoch's checkpoint is kept")


def run_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def scored(work: Path, run_dir: Path, score, reuse: bool) -> dict:
    """The example's results: WORK/results.json as saved (`reuse`), or `score()` plus the run's
    training hours, steps and per-epoch test KID, saved there."""
    if reuse:
        return json.loads((work / "results.json").read_text())
    results, log = score(), run_log(run_dir)
    results["cpu_hours"] = round(training_hours(run_dir), 2)
    results["steps"] = max(r.get("step", 0) for r in log)
    results["log"] = [r for r in log if "kid_a2b" in r]
    (work / "results.json").write_text(json.dumps(results, indent=2))
    return results


def grid(rows: list[list[np.ndarray]], scale: int = 3, gap: int = 2) -> np.ndarray:
    """Tiles (uint8 [H, W, 3] or [H, W]) in rows, enlarged `scale` x (nearest), on white."""
    def rgb(t):
        return np.repeat(t[..., None], 3, 2) if t.ndim == 2 else t

    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + gap), cols * (w + gap), 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            out[i * (h + gap): i * (h + gap) + h, j * (w + gap): j * (w + gap) + w] = rgb(tile)
    return np.kron(out, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else out


def sample_folder(src: Path, dst: Path, n: int) -> Path:
    """`dst` holding links to `n` images evenly spread over `src`'s sorted files (made once)."""
    if not dst.exists():
        files = sorted(src.glob("*.png"))
        dst.mkdir(parents=True)
        for i in range(min(n, len(files))):
            f = files[i * len(files) // min(n, len(files))]
            (dst / f.name).symlink_to(f.resolve())
    return dst


def rgb_sample(src: Path, dst: Path, n: int) -> Path:
    """`dst` holding RGB copies of `n` images evenly spread over `src` (made once): gray images
    as 3-channel ones, for KID against a color folder (the metric compares like with like)."""
    if not dst.exists():
        files = sorted(src.glob("*.png"))
        dst.mkdir(parents=True)
        for i in range(min(n, len(files))):
            f = files[i * len(files) // min(n, len(files))]
            save_png(load(f), dst / f.name)
    return dst


PSNR_CAP = 60.0  # identical images (CIFAR-10 has gray photos) count as 60 dB, so a mean stays finite


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images, capped at PSNR_CAP."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * np.log10(255.0**2 / mse))


def write_section(key: str, text: str, path: Path = DOCS / "EXAMPLES.md") -> None:
    """Replace (or append) the section between `<!-- key -->` markers in docs/EXAMPLES.md."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    doc = path.read_text(encoding="utf-8") if path.exists() else "# Examples\n"
    if begin in doc:
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc, encoding="utf-8")


def register_zoo(entries: dict[str, dict]) -> None:
    """Add or replace shipped models in cyclegan_tool/zoo/models.json."""
    path = REPO / "cyclegan_tool" / "zoo" / "models.json"
    catalogue = json.loads(path.read_text())
    catalogue.update(entries)
    path.write_text(json.dumps(catalogue, indent=2) + "\n")


def write_card(name: str, text: str) -> Path:
    path = DOCS / f"MODEL_CARD_{name}.md"
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path
