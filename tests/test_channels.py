"""Domains with their own channel counts (gray <-> color): training, checkpoints, ONNX,
convert, the GUI, and how a gray file meets a 3-channel model and a color file a 1-channel one."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

import cyclegan_tool as ct
from cyclegan_tool.conventions import array_to_tensor, luma, tensor_to_array


def write_images(folder, n, gray, seed, size=32):
    from conftest import smooth_image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        im = Image.fromarray(smooth_image(rng, size, size, (0.9, 0.5, 0.1)))
        (im.convert("L") if gray else im).save(folder / f"{i:02d}.png")


@pytest.fixture(scope="module")
def gray_color_run(tmp_path_factory):
    """A Keras-preset run on gray trainA / color trainB, channels from the data: (run dir, root)."""
    root = tmp_path_factory.mktemp("graycolor")
    write_images(root / "data" / "trainA", 6, gray=True, seed=1)
    write_images(root / "data" / "trainB", 6, gray=False, seed=2)
    run = ct.train(root / "data", preset="keras-colorize", name="gc", checkpoints_dir=str(root / "runs"),
                   ngf=8, ndf=8, batch_size=3, n_epochs=1, workers=0, device="cpu", sample_freq=1,
                   save_latest_freq=0)
    return run, root


def test_luma_is_pils_and_gray_round_trips():
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    assert (luma(rgb)[..., 0] == np.asarray(Image.fromarray(rgb).convert("L"))).all()
    gray = rgb[..., :1]
    assert (luma(np.repeat(gray, 3, 2)) == gray).all()  # a gray file replicated to RGB reads back exactly
    for vr in ((-1.0, 1.0), (0.0, 1.0)):
        t = array_to_tensor(rgb, channels=1, value_range=vr)
        assert t.shape == (1, 9, 7) and vr[0] <= float(t.min()) and float(t.max()) <= vr[1]
        assert (tensor_to_array(t, vr) == luma(rgb)).all()


def test_training_reads_the_channels_off_the_data(gray_color_run):
    run, _ = gray_color_run
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert (cfg["input_nc"], cfg["output_nc"]) == (1, 3)
    state = torch.load(run / "latest.pt", weights_only=True)
    assert state["arch"]["generator"]["input_nc"] == 1 and state["arch"]["generator"]["output_nc"] == 3
    assert state["arch"]["discriminator"]["input_nc"] == 3 and state["arch"]["discriminator_a"]["input_nc"] == 1
    assert state["networks"]["gen_a2b"]["encoder.0.conv.conv.weight"].shape[1] == 1
    assert state["networks"]["gen_b2a"]["encoder.0.conv.conv.weight"].shape[1] == 3
    assert state["conventions"]["value_range"] == [0.0, 1.0]
    sample = Image.open(sorted((run / "samples").glob("*.png"))[-1])
    assert sample.mode == "RGB" and sample.size == (3 * 32, 2 * 32)
    assert not (run / "latest_net_G_A.pth").exists()  # the reference has no such architecture


@pytest.mark.parametrize("direction,in_gray,out_mode", [("a2b", True, "RGB"), ("b2a", False, "L")])
def test_export_with_parity_and_convert_to_the_right_mode(gray_color_run, tmp_path, direction, in_gray, out_mode):
    run, root = gray_color_run
    report = ct.export(run / "latest.pt", output=tmp_path / "g.onnx", direction=direction)
    checks = report.parity["checks"]
    assert checks and all(c["max_abs"] < 1e-4 and c["shape"][1] == (1 if direction == "a2b" else 3) for c in checks)
    write_images(tmp_path / "in", 3, gray=in_gray, seed=5, size=40)
    with ct.load_model(tmp_path / "g.onnx") as m:
        assert m.info.value_range == (0.0, 1.0)
        assert (m.info.spec.input_nc, m.info.spec.output_nc) == ((1, 3) if direction == "a2b" else (3, 1))
    for model in (tmp_path / "g.onnx", run / "latest.pt"):
        out = tmp_path / f"out_{model.suffix[1:]}"
        summary = ct.convert(tmp_path / "in", out, model=model, direction=direction)
        assert summary.converted == 3 and not summary.failed
        im = Image.open(out / "00.png")
        assert im.mode == out_mode and im.size == (40, 40)
    a, b = (np.asarray(Image.open(tmp_path / f"out_{s}" / "00.png"), np.int16) for s in ("onnx", "pt"))
    assert np.abs(a - b).max() <= 1  # ONNX Runtime and PyTorch agree


def test_color_file_to_a_gray_model_is_its_luma_and_noted(gray_color_run, tmp_path):
    run, _ = gray_color_run
    write_images(tmp_path / "color", 2, gray=False, seed=7)
    (tmp_path / "luma").mkdir()
    for p in (tmp_path / "color").glob("*.png"):
        Image.open(p).convert("L").save(tmp_path / "luma" / p.name)
    s1 = ct.convert(tmp_path / "color", tmp_path / "o1", model=run / "latest.pt", direction="a2b")
    s2 = ct.convert(tmp_path / "luma", tmp_path / "o2", model=run / "latest.pt", direction="a2b")
    assert any("read as grayscale (luma)" in n for n in s1.notes) and not s2.notes
    for name in ("00.png", "01.png"):
        assert (np.asarray(Image.open(tmp_path / "o1" / name)) == np.asarray(Image.open(tmp_path / "o2" / name))).all()


def test_gray_file_to_a_color_model_is_replicated(tmp_path, tiny_onnx):
    write_images(tmp_path / "g", 1, gray=True, seed=3)
    Image.open(tmp_path / "g" / "00.png").convert("RGB").save(tmp_path / "rgb.png")
    (tmp_path / "c").mkdir()
    (tmp_path / "rgb.png").rename(tmp_path / "c" / "00.png")
    ct.convert(tmp_path / "g", tmp_path / "o1", model=tiny_onnx)
    ct.convert(tmp_path / "c", tmp_path / "o2", model=tiny_onnx)
    assert Image.open(tmp_path / "o1" / "00.png").mode == "RGB"
    assert (np.asarray(Image.open(tmp_path / "o1" / "00.png")) == np.asarray(Image.open(tmp_path / "o2" / "00.png"))).all()


def test_paper_generator_three_to_one_writes_gray(tmp_path):
    from cyclegan_tool.models import GeneratorSpec, build_generator

    net = build_generator(GeneratorSpec(name="resnet_6blocks", ngf=4, input_nc=3, output_nc=1))
    torch.save(net.state_dict(), tmp_path / "latest_net_G_A.pth")
    write_images(tmp_path / "in", 2, gray=False, seed=9, size=20)
    ct.export(tmp_path / "latest_net_G_A.pth", output=tmp_path / "g.onnx")
    for model in (tmp_path / "latest_net_G_A.pth", tmp_path / "g.onnx"):
        s = ct.convert(tmp_path / "in", tmp_path / model.suffix[1:], model=model)
        assert s.converted == 2 and Image.open(tmp_path / model.suffix[1:] / "00.png").mode == "L"


def test_describe_says_the_channels(gray_color_run):
    run, _ = gray_color_run
    assert "gray -> RGB" in ct.describe_model(run / "latest.pt")["what"]


def test_in_memory_data_reads_no_file_per_step(tmp_path):
    from conftest import tiny_config

    from cyclegan_tool.train.data import UnalignedDataset

    write_images(tmp_path / "d" / "trainA", 3, gray=True, seed=1)
    write_images(tmp_path / "d" / "trainB", 3, gray=False, seed=2)
    ds = UnalignedDataset(tiny_config(tmp_path / "d", tmp_path, crop_size=32, load_size=32))
    assert ds.in_memory and (ds.cfg.input_nc, ds.cfg.output_nc) == (1, 3)
    for p in (tmp_path / "d").rglob("*.png"):
        p.unlink()
    item = ds[1]
    assert item["a"].shape == (1, 32, 32) and item["b"].shape == (3, 32, 32) and not item["bad"]


def test_api_names_survive_importing_the_subpackages():
    import importlib

    importlib.import_module("cyclegan_tool.train.config")
    importlib.import_module("cyclegan_tool.export.onnx_export")
    assert callable(ct.train) and callable(ct.export) and ct.train.__module__ == "cyclegan_tool.api"
    from cyclegan_tool.train import config  # the subpackages themselves stay importable

    assert config.TrainConfig


@pytest.mark.tensorrt
@pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx") is None, reason="TensorRT for RTX is not installed")
def test_engine_for_a_gray_input_model_takes_its_channels(gray_color_run, tmp_path):
    """The default profile follows the model's input channels; the sidecar keeps the value range."""
    run, _ = gray_color_run
    report = ct.export(run / "latest.pt", engine=tmp_path / "g.plan", trt="rtx", fp16=True,
                       max_shape="2x1x96x96", opt_shape="1x1x64x64", workspace_mib=256)
    side = json.loads((tmp_path / "g.plan.json").read_text())
    assert side["profile"]["min"] == [1, 1, 64, 64] and side["profile"]["max"] == [2, 1, 96, 96]  # min: the default
    assert side["conventions"]["value_range"] == [0.0, 1.0] and side["generator"]["output_nc"] == 3
    from cyclegan_tool import sidecar

    assert report.engine_info and sidecar.limits(side)["max_batch"] == 2
    with pytest.raises(Exception, match="takes 1 channel"):
        ct.export(run / "latest.pt", engine=tmp_path / "h.plan", output=tmp_path / "h.onnx", trt="rtx",
                  min_shape="1x3x64x64", opt_shape="1x3x64x64", max_shape="2x3x64x64")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("alpha", [None, "uint8", "uint16"])
def test_png_outputs_read_back_exactly_in_every_mode(channels, alpha, tmp_path):
    """Our PNG writer (imageio.png_bytes): gray, RGB, with 8- or 16-bit alpha (written as 8),
    decoded by PIL (which checks every chunk's CRC) to the same pixels."""
    from cyclegan_tool.imageio import encode

    rng = np.random.default_rng(channels)
    rgb = rng.integers(0, 256, (37, 53, channels), dtype=np.uint8)
    a = None if alpha is None else rng.integers(0, 256 if alpha == "uint8" else 65536, (37, 53)).astype(alpha)
    (tmp_path / "o.png").write_bytes(encode(tmp_path / "o.png", rgb, a))
    with Image.open(tmp_path / "o.png") as im:
        im.load()
        assert im.mode == {(1, False): "L", (3, False): "RGB", (1, True): "LA", (3, True): "RGBA"}[channels, a is not None]
        got = np.asarray(im).reshape(37, 53, -1)
    assert np.array_equal(got[..., :channels], rgb)
    if a is not None:
        assert np.array_equal(got[..., channels], a if alpha == "uint8" else ((a.astype(np.uint32) + 128) // 257))


def test_a_png_larger_than_one_data_chunk_reads_back(tmp_path):
    from cyclegan_tool.imageio import PNG_IDAT_BYTES, png_bytes

    noise = np.random.default_rng(0).integers(0, 256, (1800, 1800, 3), dtype=np.uint8)  # incompressible
    data = png_bytes(noise)
    assert len(data) > PNG_IDAT_BYTES and data.count(b"IDAT") == 2
    (tmp_path / "big.png").write_bytes(data)
    with Image.open(tmp_path / "big.png") as im:
        assert np.array_equal(np.asarray(im), noise)
