"""The Keras chapter's networks, padding semantics, recipe and presets."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.models import (DiscriminatorSpec, GeneratorSpec, build_discriminator, build_generator, min_side,
                                  pad_multiple, value_range)
from cyclegan_tool.models.keras import SameConv2d, SameConvTranspose2d
from cyclegan_tool.train.config import TrainConfig


def shapes_of(net: nn.Module, modules: list[nn.Module], x: torch.Tensor) -> list[tuple]:
    seen = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:]))) for m in modules]
    try:
        y = net(x)
    finally:
        for h in hooks:
            h.remove()
    return seen, y


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("cin,cout", [(1, 3), (3, 1)])
def test_generator_layers_are_the_chapters(k, cin, cout):
    spec = GeneratorSpec(name=f"keras_unet_k{k}", input_nc=cin, output_nc=cout, ngf=32, norm="instance_affine")
    net = build_generator(spec)
    enc, y = shapes_of(net, list(net.encoder), torch.rand(2, cin, 32, 32))
    assert enc == [(32, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4)]
    dec, _ = shapes_of(net, list(net.decoder), torch.rand(2, cin, 32, 32))
    assert dec == [(256, 8, 8), (128, 16, 16), (64, 32, 32)]  # each joined to its encoder layer
    assert y.shape == (2, cout, 32, 32) and 0 < y.min() and y.max() < 1  # sigmoid
    kernels = {tuple(m.weight.shape[-2:]) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    assert kernels == {(k, k)}
    first = net.encoder[0]
    assert isinstance(first.norm, nn.InstanceNorm2d) and first.norm.num_features == cin  # IN on the raw input
    assert first.norm.eps == 1e-3 and first.norm.affine
    assert value_range(spec) == (0.0, 1.0) and pad_multiple(spec) == 8 and min_side(spec) == 16


@pytest.mark.parametrize("k", [3, 5])
def test_discriminators_patch_and_dense(k):
    patch = build_discriminator(DiscriminatorSpec(name=f"keras_patch_k{k}", input_nc=3, ndf=32, image_size=32))
    enc, y = shapes_of(patch, list(patch.encoder), torch.rand(2, 3, 32, 32))
    assert enc == [(32, 16, 16), (64, 8, 8), (128, 4, 4), (256, 4, 4)]
    assert y.shape == (2, 1, 2, 2)  # 2x2 patch at 32x32
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in patch.modules())
    dense = build_discriminator(DiscriminatorSpec(name=f"keras_dense_k{k}", input_nc=1, ndf=32, image_size=32))
    assert dense(torch.rand(2, 1, 32, 32)).shape == (2, 1)
    assert dense.head[1].in_features == 4 * 4 * 256
    with pytest.raises(ConfigError, match="fixed image size"):
        build_discriminator(DiscriminatorSpec(name=f"keras_dense_k{k}", input_nc=1, ndf=32, image_size=0))


@pytest.mark.parametrize("k,s", [(3, 2), (5, 2), (3, 1), (5, 1)])
def test_same_padding_is_tensorflows(k, s):
    """TF pads 'same' with the odd pixel at the end; its transposed conv is the exact adjoint."""
    torch.manual_seed(0)
    conv = SameConv2d(4, 6, k, s)
    nn.init.zeros_(conv.conv.bias)
    x = torch.randn(1, 4, 16, 16)
    total = max(k - s, 0)
    manual = nn.functional.conv2d(nn.functional.pad(x, (total // 2, total - total // 2) * 2), conv.conv.weight,
                                  stride=s)
    assert torch.allclose(conv(x), manual, atol=1e-6) and conv(x).shape[-1] == 16 // s
    tconv = SameConvTranspose2d(6, 4, k, s)
    tconv.conv.weight.data.copy_(conv.conv.weight.data)
    nn.init.zeros_(tconv.conv.bias)
    y = torch.randn(1, 6, 16 // s, 16 // s)
    assert tconv(y).shape == x.shape
    assert torch.allclose((conv(x) * y).sum(), (x * tconv(y)).sum(), rtol=1e-4)  # <Ax, y> = <x, A^T y>


def test_presets_set_the_recipe_and_options_win(tmp_path, monkeypatch):
    from cyclegan_tool import api
    from cyclegan_tool.train import trainer

    seen = {}
    monkeypatch.setattr(trainer, "train", lambda cfg, **kw: seen.setdefault("cfg", cfg))
    api.train(tmp_path, preset="keras-digits", changed=frozenset({"batch_size"}), batch_size=8, n_epochs=100)
    cfg = seen.pop("cfg")
    assert (cfg.netG, cfg.netD, cfg.ngf, cfg.ndf, cfg.crop_size) == ("keras_unet_k5", "keras_patch_k5", 32, 32, 32)
    assert (cfg.optimizer, cfg.lr, cfg.lr_d, cfg.lr_policy, cfg.lr_decay, cfg.lr_decay_d) == (
        "rmsprop", 1e-4, 2e-4, "inverse_time", 3e-8, 6e-8)
    assert (cfg.pool_size, cfg.lambda_identity, cfg.d_first, cfg.gan_mode, cfg.no_flip) == (0, 0.0, True, "lsgan", True)
    assert cfg.batch_size == 8 and cfg.n_epochs == 160  # the user's batch; the preset's length (not given)
    api.train(tmp_path, preset="keras-colorize", patchgan=False, identity=True)
    cfg = seen.pop("cfg")
    assert cfg.netD == "keras_dense_k3" and cfg.lambda_identity * cfg.lambda_a == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="switches of a --preset"):
        api.train(tmp_path, patchgan=True)


def test_rmsprop_and_inverse_time_decay(dataroot, tmp_path):
    from conftest import tiny_config

    from cyclegan_tool.train.cyclegan import CycleGAN

    cfg = tiny_config(dataroot, tmp_path, netG="keras_unet_k3", netD="keras_patch_k3", ngf=4, ndf=4,
                      optimizer="rmsprop", lr=1e-3, lr_d=2e-3, lr_policy="inverse_time", lr_decay=0.1,
                      lr_decay_d=0.5, d_first=True, pool_size=0, crop_size=32, batch_size=2).validate()
    model = CycleGAN(cfg, torch.device("cpu"))
    assert isinstance(model.opt_gen, torch.optim.RMSprop)
    group = model.opt_gen.param_groups[0]
    assert (group["alpha"], group["eps"]) == (0.9, 1e-7)
    x = torch.rand(2, 3, 32, 32)
    for _ in range(3):
        losses = model.train_step(x, x)
    assert {"disc_a", "disc_b", "gan_a2b", "cycle_a", "idt_a"} <= set(losses)
    assert model.opt_gen.param_groups[0]["lr"] == pytest.approx(1e-3 / (1 + 0.1 * 3))
    assert model.opt_disc.param_groups[0]["lr"] == pytest.approx(2e-3 / (1 + 0.5 * 3))


def test_identity_loss_needs_equal_channels():
    with pytest.raises(ConfigError, match="needs equal channels"):
        TrainConfig(input_nc=1, output_nc=3, lambda_identity=0.5).validate()
    TrainConfig(input_nc=1, output_nc=3, lambda_identity=0.0).validate()
    with pytest.raises(ConfigError, match="--input-nc must be 1"):
        TrainConfig(input_nc=2).validate()
