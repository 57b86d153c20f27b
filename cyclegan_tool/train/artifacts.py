"""What a run writes next to its checkpoints: config.json, log.jsonl, sample grids,
TensorBoard events, and the generators in the reference per-network layout."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from cyclegan_tool import __version__
from cyclegan_tool.conventions import VALUE_RANGE, tensor_to_array, to_channels
from cyclegan_tool.errors import MissingDependencyError
from cyclegan_tool.fileio import atomic_write, atomic_write_json
from cyclegan_tool.train.config import TrainConfig


def write_config(run_dir: Path, cfg: TrainConfig, extra: dict) -> Path:
    return atomic_write_json(run_dir / "config.json", {"tool_version": __version__, **extra,
                                                       "config": cfg.to_dict()})


class LossLog:
    """Appends one JSON object per logged step to `log.jsonl`."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "log.jsonl"

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

    def records(self) -> list[dict]:
        """Every record so far (a torn last line from a crash is skipped)."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def write_sample_grid(path: Path, visuals: tuple[tuple[torch.Tensor, ...], ...],
                      value_range: tuple[float, float] = VALUE_RANGE) -> Path:
    """A PNG of the model's rows of images (`visuals()`: for a CycleGAN real A | fake B |
    reconstructed A over real B | fake A | reconstructed B), the first image of each batch; gray
    domains shown as gray RGB."""
    from PIL import Image

    rows = [np.concatenate([to_channels(tensor_to_array(t[0], value_range), 3) for t in row], axis=1)
            for row in visuals]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(rows, axis=0)).save(buf, format="PNG")
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


REFERENCE_GENERATORS = ("resnet_", "unet_")  # the architectures the reference implementation has


def write_reference_generators(run_dir: Path, nets: dict, label: str = "latest", netG: str = "resnet_9blocks",
                               model: str = "cyclegan") -> None:
    """`<label>_net_G_A.pth` (A -> B) and `<label>_net_G_B.pth` (B -> A), or for CUT/FastCUT
    `<label>_net_G.pth`: plain state_dicts that the reference implementation's (or the CUT
    code's) test script loads (nothing for architectures it lacks)."""
    if not netG.startswith(REFERENCE_GENERATORS):
        return
    files = (((f"{label}_net_G_A.pth", "gen_a2b"), (f"{label}_net_G_B.pth", "gen_b2a")) if model == "cyclegan"
             else ((f"{label}_net_G.pth", "gen_a2b"),))
    for file_name, key in files:
        buf = io.BytesIO()
        torch.save({k: v.cpu() for k, v in nets[key].state_dict().items()}, buf)
        atomic_write(run_dir / file_name, lambda f, b=buf: f.write(b.getbuffer()))


class TensorBoard:
    def __init__(self, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingDependencyError("tensorboard", "--tensorboard") from None
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, step: int, values: dict[str, float], prefix: str = "loss") -> None:
        for k, v in values.items():
            self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        self.writer.close()
