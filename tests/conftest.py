"""Shared fixtures: small generated image folders and tiny training configs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def smooth_image(rng: np.random.Generator, h: int, w: int, tint: tuple[float, float, float]) -> np.ndarray:
    """A smooth random uint8 [H, W, 3] image: low-frequency noise with a colour tint."""
    coarse = rng.random((max(2, h // 8), max(2, w // 8), 3))
    from PIL import Image

    big = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR))
    return np.clip(big * 0.6 + np.array(tint) * 255 * 0.4, 0, 255).astype(np.uint8)


def write_domain(folder: Path, n: int, size: tuple[int, int], tint, seed: int, ext: str = "png") -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"img_{i:03d}.{ext}"
        Image.fromarray(smooth_image(rng, *size, tint)).save(p)
        paths.append(p)
    return paths


_KERNEL_REPORT: list[str] = []


def count_compiles(monkeypatch) -> list:
    """The OpenVINO forms compiled from now on, in order ("any", "256x256"; runtime/ov_compiled.py)."""
    from cyclegan_tool.runtime import ov_compiled

    made = []
    real = ov_compiled.CompiledForms._compile

    def spy(self, form):
        made.append(form)
        return real(self, form)

    monkeypatch.setattr(ov_compiled.CompiledForms, "_compile", spy)
    return made


@pytest.fixture
def kernel_report() -> list[str]:
    """Lines printed at the end of the run (what executed where, e.g. the emulated CUDA kernels)."""
    return _KERNEL_REPORT


def pytest_terminal_summary(terminalreporter):
    for line in _KERNEL_REPORT:
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Feature caches and the like go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    yield
    # Fidelity figures (runtime/fidelity_check.py) stay with the test that measured them.
    from cyclegan_tool.runtime.fidelity_check import STORE

    with contextlib.suppress(OSError):  # a test may point the cache somewhere unwritable
        STORE.path.unlink(missing_ok=True)


@pytest.fixture
def dataroot(tmp_path: Path) -> Path:
    """DATAROOT with 4 reddish trainA and 5 bluish trainB images (40x44 and 36x36)."""
    root = tmp_path / "data"
    write_domain(root / "trainA", 4, (40, 44), (1.0, 0.2, 0.2), seed=1)
    write_domain(root / "trainB", 5, (36, 36), (0.2, 0.2, 1.0), seed=2, ext="jpg")
    return root


def tiny_config(dataroot: Path, out: Path, **overrides):
    from cyclegan_tool.train.config import TrainConfig

    base = dict(dataroot=str(dataroot), name="run", checkpoints_dir=str(out), netG="resnet_6blocks",
                ngf=4, ndf=4, load_size=36, crop_size=32, n_epochs=1, n_epochs_decay=1, workers=0,
                device="cpu", print_freq=1, sample_freq=0, save_epoch_freq=0, save_latest_freq=0)
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> Path:
    """A reference-layout `latest_net_G_A.pth`: ResNet-6, ngf 8, random init (seeded)."""
    import torch

    from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights

    torch.manual_seed(0)
    net = init_weights(build_generator(GeneratorSpec(name="resnet_6blocks", ngf=8)), "normal", 0.1)
    path = tmp_path_factory.mktemp("model") / "latest_net_G_A.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tiny_generator) -> Path:
    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.onnx_export import export_onnx

    out = tiny_generator.parent / "tiny.onnx"
    export_onnx(checkpoints.load_generator(tiny_generator), out)
    return out


def make_backend(path, **kwargs):
    """(backend, reason) for a model file, as `convert` would pick it (the runner's planner)."""
    from cyclegan_tool.api import resolve_model
    from cyclegan_tool.runner import open_backend

    resolved = resolve_model(path, kwargs.get("direction"))
    return open_backend(resolved, **kwargs)
