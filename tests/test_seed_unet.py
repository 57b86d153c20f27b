"""The seed's Keras CycleGAN U-Net (models/unet_keras.py): its layers, its preset, and its
inference mode (batch statistics), trained, exported and converted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import write_domain

import cyclegan_tool as ct
from cyclegan_tool import checkpoints
from cyclegan_tool.errors import ConfigError
from cyclegan_tool.models import GeneratorSpec, build_generator
from cyclegan_tool.layout import infer_generator_spec


def test_layers_as_the_seed_builds_them():
    net = build_generator(GeneratorSpec(name="unet_keras_32", ngf=4, norm="batch", use_dropout=True))
    levels, level = [], net.top
    while level is not None:
        levels.append(level)
        level = level.inner
    assert len(levels) == 5  # 32, 16, 8, 4, 2
    top, innermost = levels[0], levels[-1]
    # a bias where no batch norm follows: the top convolutions and the innermost down-convolution
    assert top.down.bias is not None and top.up.bias is not None and isinstance(top.down_norm, nn.Identity)
    assert innermost.down.bias is not None and isinstance(innermost.down_norm, nn.Identity)
    assert all(lv.down.bias is None and isinstance(lv.down_norm, nn.BatchNorm2d) for lv in levels[1:-1])
    assert all(lv.up.bias is None and isinstance(lv.up_norm, nn.BatchNorm2d) for lv in levels[1:])
    # dropout at the three innermost levels (s <= 8)
    assert [isinstance(lv.drop, nn.Dropout) for lv in levels] == [False, False, True, True, True]
    widths = [lv.down.out_channels for lv in levels]
    assert widths == [4, 8, 16, 32, 32]  # ngf doubling to at most 8 ngf
    assert net.pad_multiple == 32
    x = torch.rand(2, 3, 32, 64) * 2 - 1
    assert net.eval()(x).shape == x.shape and net(x).abs().max() <= 1
    assert infer_generator_spec(net.state_dict()) == GeneratorSpec(name="unet_keras_32", ngf=4, norm="batch")
    with pytest.raises(ConfigError, match="batch norm only"):
        build_generator(GeneratorSpec(name="unet_keras_32", ngf=4, norm="instance"))


@pytest.mark.slow
def test_preset_trains_exports_and_converts_with_batch_statistics(dataroot, tmp_path):
    run = ct.train(dataroot, preset="keras-unet", name="seed", checkpoints_dir=str(tmp_path), netG="unet_keras_32",
                   ngf=4, ndf=4, load_size=36, crop_size=32, n_epochs=1, n_epochs_decay=0, workers=0,
                   changed=frozenset({"netG", "ngf", "ndf", "load_size", "crop_size", "n_epochs", "n_epochs_decay",
                                      "workers"}))
    config = checkpoints.read(run / "latest.pt")["config"]
    assert config["netG"] == "unet_keras_32" and config["norm"] == "batch" and config["pool_size"] == 0
    loaded = checkpoints.load_generator(run / "latest.pt")
    assert loaded.norm_stats == "batch"  # the seed's inference mode: each image's own statistics
    onnx_path = ct.export(run / "latest.pt", output=tmp_path / "seed.onnx").onnx
    write_domain(tmp_path / "in", 2, (32, 64), (1, 0.3, 0.3), seed=4)
    said = []
    summary = ct.convert(tmp_path / "in", tmp_path / "out", model=onnx_path, precision="fp32",
                         backend="onnxruntime", format="png", on_start=said.append)
    assert summary.converted == 2 and "each image's own statistics" in said[0]
    # the same as the PyTorch network in training-mode batch norm, one image at a time
    from PIL import Image

    net = checkpoints.load_generator(run / "latest.pt", norm_stats="running").net
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train()
    for p in sorted((tmp_path / "in").iterdir()):
        x = torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
        with torch.no_grad():
            want = ((net(x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255)
        got = np.asarray(Image.open(tmp_path / "out" / p.name), np.float32)
        assert np.abs(got - want).max() <= 1
