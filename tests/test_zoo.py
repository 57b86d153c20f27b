"""Shipped models: each loads, runs on a small image, and changes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cyclegan_tool.cli import cli
from cyclegan_tool.errors import ConfigError
from cyclegan_tool.runtime import make_backend
from cyclegan_tool.zoo import catalogue, model_file

MODELS = sorted(catalogue())


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
