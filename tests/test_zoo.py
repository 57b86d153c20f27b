"""Shipped models: each loads, runs on a small image, and changes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cyclegan_tool.cli import cli
from cyclegan_tool.errors import ConfigError
from conftest import make_backend
from cyclegan_tool.zoo import catalogue, model_file

MODELS = sorted(name for name, e in catalogue().items() if e.get("source") == "shipped")


def test_catalogue_is_not_empty():
    assert "horse2zebra" in MODELS


@pytest.mark.parametrize("name", MODELS)
def test_shipped_model_runs_and_translates(name):
    backend, _ = make_backend(model_file(name), device="cpu")
    from conftest import smooth_image

    from cyclegan_tool.conventions import array_to_tensor

    rgb = smooth_image(np.random.default_rng(0), 64, 96, (0.6, 0.4, 0.2))
    with backend:
        info = backend.info
        assert info.direction == catalogue()[name]["direction"]
        x = array_to_tensor(rgb, channels=info.spec.input_nc, value_range=info.value_range)[None]
        y = backend.infer(x)
    assert y.shape == (1, info.spec.output_nc, 64, 96) and torch.isfinite(y).all()
    span = info.value_range[1] - info.value_range[0]
    if y.shape == x.shape:
        assert (y - x).abs().mean() > 0.01 * span  # not a copy of its input
    assert y.std() > 0.025 * span  # not a flat image


def test_convert_with_model_flag_and_models_command(tmp_path):
    Image.fromarray(np.full((40, 52, 3), 120, np.uint8)).save(tmp_path / "horse.jpg")
    res = CliRunner().invoke(cli, ["convert", "--model", "horse2zebra", str(tmp_path / "horse.jpg"), str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "o" / "horse.jpg").size == (52, 40)
    listing = CliRunner().invoke(cli, ["models"])
    assert listing.exit_code == 0 and "horse2zebra" in listing.output


def test_unknown_model_suggests():
    with pytest.raises(ConfigError, match="did you mean 'horse2zebra'"):
        model_file("horse2zebr")


def test_info_takes_a_shipped_name_as_convert_does():
    res = CliRunner().invoke(cli, ["info", "horse2zebra"])
    assert res.exit_code == 0, res.output
    assert str(model_file("horse2zebra")) in res.output and "resnet_6blocks" in res.output
    typo = CliRunner().invoke(cli, ["info", "horse2zebr"])
    assert typo.exit_code == 1 and "did you mean 'horse2zebra'" in typo.output
    assert len(typo.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", [n for n in MODELS if catalogue()[n].get("int8")])
def test_shipped_int8_forms_are_calibrated_and_close_to_their_fp32_graph(name):
    import onnx

    from cyclegan_tool.export.parity import psnr
    from cyclegan_tool.onnx_metadata import read_metadata
    from cyclegan_tool.zoo import int8_file

    path = int8_file(name)
    assert path is not None, f"{name}: its int8 file is listed but missing"
    meta = read_metadata(onnx.load(str(path), load_external_data=False))
    assert meta["precision"] == "int8" and meta["direction"] == catalogue()[name]["direction"]
    assert meta["calibration"]["images"] >= 8 and meta["calibration"]["psnr_db_vs_fp32"] >= 35
    from conftest import smooth_image

    from cyclegan_tool.conventions import array_to_tensor

    x = array_to_tensor(smooth_image(np.random.default_rng(1), 64, 96, (0.5, 0.4, 0.3)), channels=3,
                        value_range=(-1.0, 1.0))[None]
    outs = []
    for f in (model_file(name), path):
        with make_backend(f, device="cpu", backend="onnxruntime")[0] as be:
            outs.append(be.infer(x).numpy())
    assert psnr(outs[1], outs[0]) >= 30
