"""Loss terms against hand-computed values, the image pool, the LR schedule, the data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cyclegan_tool.errors import DataError
from cyclegan_tool.train.config import TrainConfig
from cyclegan_tool.train.data import EpochSampler, UnalignedDataset
from cyclegan_tool.train.losses import GANLoss, gradient_penalty
from cyclegan_tool.train.pool import ImagePool
from cyclegan_tool.train.schedule import LinearDecay


def test_lsgan_by_hand():
    pred = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    assert GANLoss("lsgan")(pred, True).item() == pytest.approx((0.25 + 4 + 1 + 1) / 4)
    assert GANLoss("lsgan")(pred, False).item() == pytest.approx((0.25 + 1 + 4 + 0) / 4)


def test_vanilla_by_hand():
    pred = torch.tensor([0.0, 2.0])
    real = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    fake = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert GANLoss("vanilla")(pred, True).item() == pytest.approx(real, rel=1e-6)
    assert GANLoss("vanilla")(pred, False).item() == pytest.approx(fake, rel=1e-6)


def test_wgan_by_hand_and_in_float32():
    pred = torch.tensor([1.0, 3.0], dtype=torch.bfloat16)
    out = GANLoss("wgangp")(pred, True)
    assert out.dtype == torch.float32 and out.item() == -2.0
    assert GANLoss("wgangp")(pred, False).item() == 2.0


def test_gradient_penalty_of_linear_critic():
    # D(x) = sum(w * x) has gradient w everywhere: penalty = 10 * (||w|| - 1)^2.
    w = torch.full((1, 1, 2, 2), 0.25)
    disc = lambda x: (x * w).sum(dim=(1, 2, 3))  # noqa: E731
    gp = gradient_penalty(disc, torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2))
    assert gp.item() == pytest.approx(10 * (0.5 - 1) ** 2, rel=1e-5)


def test_pool_disabled_returns_input():
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(ImagePool(0).query(x), x)


def test_pool_fills_then_mixes_history():
    pool = ImagePool(3, seed=0)
    batches = [torch.full((1, 1, 2, 2), float(i)) for i in range(40)]
    for b in batches[:3]:  # filling: the input comes back and is stored
        assert torch.equal(pool.query(b), b)
    assert len(pool.images) == 3
    out = [pool.query(b).flatten()[0].item() for b in batches[3:]]
    own = sum(o == i + 3 for i, o in enumerate(out))
    old = sum(o < i + 3 for i, o in enumerate(out))
    assert own + old == len(out) and 8 < old < 30  # about half come from history
    assert len(pool.images) == 3


def test_pool_state_round_trip_continues_identically():
    a = ImagePool(4, seed=7)
    for i in range(6):
        a.query(torch.full((2, 1, 2, 2), float(i)))
    b = ImagePool(4, seed=99)
    b.load_state_dict(a.state_dict())
    for i in range(6, 20):
        x = torch.full((2, 1, 2, 2), float(i))
        assert torch.equal(a.query(x), b.query(x))


def test_linear_decay_matches_reference_rule():
    rule = LinearDecay(100, 100)
    assert rule(0) == 1.0 and rule(99) == 1.0  # epochs 1..100 at the full rate
    assert rule(100) == pytest.approx(1 - 1 / 101)
    assert rule(199) == pytest.approx(1 - 100 / 101)


def test_sampler_shards_and_skips():
    full = list(EpochSampler(10, shuffle=True, seed=3))
    r0 = EpochSampler(10, shuffle=True, seed=3, rank=0, world=2)
    r1 = EpochSampler(10, shuffle=True, seed=3, rank=1, world=2)
    assert sorted(list(r0) + list(r1)) == sorted(full) and not set(r0) & set(r1)
    r0.set_epoch(0, skip=2)
    assert list(r0) == full[0::2][2:]
    s = EpochSampler(10, shuffle=True, seed=3)
    s.set_epoch(1)
    assert list(s) != full


def test_dataset_modes_read_as_rgb(tmp_path):
    from PIL import Image

    for d in ("trainA", "trainB"):
        (tmp_path / d).mkdir()
    Image.fromarray(np.full((30, 30), 100, np.uint8)).save(tmp_path / "trainA" / "gray.png")
    Image.fromarray(np.full((30, 30, 4), 200, np.uint8), "RGBA").save(tmp_path / "trainA" / "rgba.png")
    Image.fromarray(np.full((30, 30), 30000, np.uint16)).save(tmp_path / "trainB" / "deep.png")
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).convert("P").save(tmp_path / "trainB" / "pal.png")
    cfg = TrainConfig(dataroot=str(tmp_path), load_size=20, crop_size=16, workers=0)
    ds = UnalignedDataset(cfg)
    for i in range(len(ds)):
        item = ds[i]
        assert item["a"].shape == (3, 16, 16) and item["b"].shape == (3, 16, 16)
    from cyclegan_tool.imageio import read_rgb8

    deep = read_rgb8(ds.paths_b[0])  # 16-bit: 30000/65535 of full scale, not clipped to white
    assert abs(np.asarray(deep)[0, 0, 0] - 30000 / 257) <= 1


def test_dataset_errors_name_the_folder(tmp_path):
    (tmp_path / "trainA").mkdir()
    with pytest.raises(DataError, match="trainB: folder not found"):
        UnalignedDataset(TrainConfig(dataroot=str(tmp_path)))
    (tmp_path / "trainB").mkdir()
    (tmp_path / "trainA" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="trainA: no images found"):
        UnalignedDataset(TrainConfig(dataroot=str(tmp_path)))


def test_init_from_generators_and_checkpoints(tmp_path, dataroot, tiny_generator, tiny_onnx):
    """--init-from: two generator files (ONNX or .pth) or a whole training checkpoint."""
    import torch
    from conftest import tiny_config

    from cyclegan_tool import checkpoints
    from cyclegan_tool.errors import ConfigError
    from cyclegan_tool.train.cyclegan import CycleGAN
    from cyclegan_tool.train.trainer import train

    source = torch.load(tiny_generator, weights_only=True)
    cfg = tiny_config(dataroot, tmp_path, ngf=8)
    model = CycleGAN(cfg, torch.device("cpu"))
    model.init_from(f"{tiny_onnx},{tiny_generator}")
    for name in ("gen_a2b", "gen_b2a"):
        got = model.nets[name].state_dict()
        assert all(torch.allclose(got[k], source[k]) for k in source), name
    with pytest.raises(ConfigError, match="set --netG/--ngf/--norm/--input-nc/--output-nc to match"):
        CycleGAN(tiny_config(dataroot, tmp_path, ngf=4), torch.device("cpu")).init_from(f"{tiny_onnx},{tiny_onnx}")
    with pytest.raises(ConfigError, match="two generators"):
        model.init_from(str(tiny_onnx))

    run = train(tiny_config(dataroot, tmp_path / "first", n_epochs=1, n_epochs_decay=0))
    saved = checkpoints.read(run / "latest.pt")["networks"]
    warm = CycleGAN(tiny_config(dataroot, tmp_path, seed=9), torch.device("cpu"))
    warm.init_from(str(run / "latest.pt"))
    for name, net in warm.nets.items():
        assert all(torch.equal(v, saved[name][k]) for k, v in net.state_dict().items()), name


def test_unsafe_checkpoint_is_refused_without_torch_advice(tmp_path):
    """A file torch can only unpickle with weights_only=False is refused; we never suggest that."""
    import datetime

    import torch

    from cyclegan_tool import checkpoints
    from cyclegan_tool.errors import CheckpointError

    path = tmp_path / "odd.pt"
    torch.save({"x": datetime.date(2020, 1, 1)}, path)
    with pytest.raises(CheckpointError) as err:
        checkpoints.read(path)
    msg = str(err.value)
    assert "odd.pt" in msg and "weights_only" not in msg and "still be loaded" not in msg and "\n" not in msg


def test_amp_auto_is_bf16_only_on_cpus_with_native_bf16(monkeypatch, dataroot, tmp_path):
    import torch

    from conftest import tiny_config

    from cyclegan_tool import devices
    from cyclegan_tool.train.cyclegan import CycleGAN

    cpu = torch.device("cpu")
    for native, want in ((True, "bf16"), (False, "none")):
        monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda native=native: native)
        assert devices.resolve_amp("auto", cpu) == want
        model = CycleGAN(tiny_config(dataroot, tmp_path), cpu)
        assert model.amp == want and model.amp_dtype == (torch.bfloat16 if native else None)
    assert devices.resolve_amp("none", cpu) == "none" and devices.resolve_amp("fp16", cpu) == "fp16"
    assert TrainConfig().amp == "auto"


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)  # exact comparisons: float32 rounding is not the question
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("opts", [dict(), dict(lambda_identity=0.0), dict(d_first=True, gan_mode="wgangp")])
def test_stacked_calls_take_the_same_step_as_separate_calls(dataroot, tmp_path, float64, opts):
    """Two images through one call (per-image norms) give the losses and gradients of two calls."""
    from conftest import tiny_config

    from cyclegan_tool.train.cyclegan import NETWORKS, CycleGAN

    runs = []
    for stacked in (True, False):
        model = CycleGAN(tiny_config(dataroot, tmp_path, amp="none", **opts), torch.device("cpu"))
        assert model.stack_calls
        model.stack_calls = stacked
        gen = torch.Generator().manual_seed(3)
        real_a, real_b = (torch.rand(1, 3, 32, 32, generator=gen, dtype=torch.float64) * 2 - 1 for _ in range(2))
        runs.append((model.train_step(real_a, real_b), model))
    (losses, stacked), (want, separate) = runs
    assert losses.keys() == want.keys()
    for k in want:
        assert torch.allclose(losses[k], want[k], rtol=1e-12, atol=1e-12), k
    for name in NETWORKS:
        got, ref = (torch.cat([p.grad.flatten() for p in m.nets[name].parameters()]) for m in (stacked, separate))
        assert (got - ref).norm() <= 1e-10 * ref.norm(), name


def test_batch_norm_keeps_separate_calls(dataroot, tmp_path):
    from conftest import tiny_config

    from cyclegan_tool.train.cyclegan import CycleGAN

    assert not CycleGAN(tiny_config(dataroot, tmp_path, norm="batch"), torch.device("cpu")).stack_calls
