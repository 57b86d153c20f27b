"""Networks: shapes, reference key layout, spec inference, loading reference files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cyclegan_tool import checkpoints
from cyclegan_tool.errors import CheckpointError, ConfigError
from cyclegan_tool.models import (DiscriminatorSpec, GeneratorSpec, build_discriminator, build_generator,
                                  init_weights, pad_multiple)
from cyclegan_tool.layout import infer_discriminator_spec, infer_generator_spec, load_into

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_state_dict_keys.json").read_text())


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_state_dict_layout_equals_reference(key):
    kind, name, norm = key.split("/")
    net = (build_generator(GeneratorSpec(name=name, norm=norm)) if kind == "G"
           else build_discriminator(DiscriminatorSpec(name=name, norm=norm)))
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert list(ours) == list(REFERENCE[key])  # same keys in the same order
    assert ours == REFERENCE[key]


@pytest.mark.parametrize("name,size", [("resnet_9blocks", 36), ("resnet_6blocks", 20), ("unet_128", 128),
                                       ("unet_256", 256)])
@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_generator_shapes_and_range(name, size, norm):
    spec = GeneratorSpec(name=name, ngf=4, norm=norm)
    net = init_weights(build_generator(spec)).eval()
    assert size % pad_multiple(spec) == 0
    x = torch.rand(2, 3, size, size + pad_multiple(spec)) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize("name,n_layers,expected", [("basic", 3, 2), ("n_layers", 2, 6), ("pixel", 3, 64)])
def test_discriminator_output_map(name, n_layers, expected):
    net = build_discriminator(DiscriminatorSpec(name=name, ndf=4, n_layers=n_layers))
    out = net(torch.randn(1, 3, 64, 64))
    # 70x70 PatchGAN on 64x64 gives a 6x6 map; it shrinks with depth; pixel keeps the size.
    expected = {"basic": 6, "n_layers": 14, "pixel": 64}[name]
    assert out.shape == (1, 1, expected, expected)


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_types(init_type):
    torch.manual_seed(0)
    net = init_weights(build_generator(GeneratorSpec(ngf=16, norm="batch")), init_type, 0.02)
    conv, bn, last = net.model[1], net.model[2], net.model[-2]
    assert conv.bias is None and torch.all(last.bias == 0)
    if init_type == "normal":
        assert abs(conv.weight.std().item() - 0.02) < 0.002
    assert torch.all(bn.bias == 0) and abs(bn.weight.mean().item() - 1.0) < 0.02


def test_unknown_architecture_suggests():
    with pytest.raises(ConfigError, match="did you mean 'resnet_9blocks'"):
        build_generator(GeneratorSpec(name="resnet9blocks"))


def test_dropout_changes_resnet_keys_and_is_inferred():
    spec = GeneratorSpec(name="resnet_6blocks", ngf=4, use_dropout=True)
    state = build_generator(spec).state_dict()
    assert "model.10.conv_block.6.weight" in state
    assert infer_generator_spec(state) == spec


def _reference_file(tmp_path: Path, name: str, spec: GeneratorSpec, legacy: bool = False) -> Path:
    torch.manual_seed(0)
    state = init_weights(build_generator(spec)).state_dict()
    if legacy:  # PyTorch < 0.4 saved InstanceNorm running statistics
        state["model.2.running_mean"] = torch.zeros(spec.ngf)
        state["model.2.running_var"] = torch.ones(spec.ngf)
        state["model.10.conv_block.2.num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_reference_latest_net_g_loads(tmp_path):
    """A reference-layout `latest_net_G.pth` (ResNet-9, instance norm) loads with no flags."""
    spec = GeneratorSpec(name="resnet_9blocks", ngf=8)
    path = _reference_file(tmp_path, "latest_net_G.pth", spec, legacy=True)
    loaded = checkpoints.load_generator(path)
    assert loaded.spec == spec and loaded.direction == "a2b" and loaded.origin == "reference"
    want = torch.load(path, weights_only=True)
    for k, v in loaded.net.state_dict().items():
        assert torch.equal(v, want[k])


def test_reference_per_network_names_set_direction(tmp_path):
    spec = GeneratorSpec(name="resnet_6blocks", ngf=4)
    assert checkpoints.load_generator(_reference_file(tmp_path, "5_net_G_B.pth", spec)).direction == "b2a"
    assert checkpoints.load_generator(_reference_file(tmp_path, "latest_net_G_A.pth", spec)).direction == "a2b"


def test_reference_discriminator_loads(tmp_path):
    spec = DiscriminatorSpec(name="basic", ndf=8)
    state = build_discriminator(spec).state_dict()
    torch.save(state, tmp_path / "latest_net_D_A.pth")
    read = checkpoints.read(tmp_path / "latest_net_D_A.pth")
    assert infer_discriminator_spec(read) == spec
    net = build_discriminator(infer_discriminator_spec(read))
    load_into(net, read, "latest_net_D_A.pth")


def test_incompatible_checkpoint_names_keys(tmp_path):
    state = build_generator(GeneratorSpec(name="resnet_6blocks", ngf=4)).state_dict()
    net = build_generator(GeneratorSpec(name="resnet_9blocks", ngf=8))
    with pytest.raises(CheckpointError) as e:
        load_into(net, state, "g.pth")
    msg = str(e.value)
    assert "g.pth does not fit" in msg and "missing: model.16.conv_block.1.weight" in msg
    assert "shape mismatch: model.1.weight (4, 3, 7, 7) vs (8, 3, 7, 7)" in msg


def test_unreadable_checkpoint_is_one_line_error(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.pth: not a readable PyTorch checkpoint"):
        checkpoints.load_generator(bad)


def test_third_party_variants_load_affine_any_blocks_any_depth(tmp_path):
    """A vintagify-style ResNet (affine InstanceNorm, `block` instead of `conv_block`, any block
    count) and U-Nets of any depth are read off their keys and run as the original would."""
    import torch

    from cyclegan_tool import checkpoints
    from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights

    torch.manual_seed(0)
    original = init_weights(build_generator(GeneratorSpec(name="resnet_4blocks", ngf=8, norm="instance_affine")),
                            "normal", 0.2)
    for m in original.modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5), torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    state = {k.replace(".conv_block.", ".block."): v for k, v in original.state_dict().items()}
    assert any(".block.1.weight" in k for k in state)
    path = tmp_path / "G_A2B_epoch33.pth"
    torch.save(state, path)
    loaded = checkpoints.load_generator(path)
    assert (loaded.spec.name, loaded.spec.norm, loaded.spec.ngf) == ("resnet_4blocks", "instance_affine", 8)
    x = torch.rand(1, 3, 32, 36) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.net(x), original.eval()(x))

    unet = build_generator(GeneratorSpec(name="unet_64", ngf=4))
    torch.save(unet.state_dict(), tmp_path / "unet.pth")
    assert checkpoints.load_generator(tmp_path / "unet.pth").spec.name == "unet_64"


def test_unknown_layout_names_its_keys(tmp_path):
    import torch

    from cyclegan_tool import checkpoints
    from cyclegan_tool.errors import CheckpointError

    torch.save({"encoder.conv1.weight": torch.zeros(4, 3, 3, 3), "encoder.conv1.bias": torch.zeros(4)},
               tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="'encoder.conv1.weight'") as err:
        checkpoints.describe(tmp_path / "odd.pth")
    assert "not a known generator layout" in str(err.value) and "odd.pth" in str(err.value)
