"""CUT and FastCUT: PatchNCE by hand, patch sampling, the anti-aliased networks, training,
resume, export and convert, the validation split, and the options each family refuses."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_domain

import cyclegan_tool as ct
from cyclegan_tool import checkpoints
from cyclegan_tool.cli import cli
from cyclegan_tool.errors import ConfigError, CycleGANError
from cyclegan_tool.models import DiscriminatorSpec, GeneratorSpec, build_discriminator, build_generator, init_weights
from cyclegan_tool.layout import infer_discriminator_spec, infer_generator_spec
from cyclegan_tool.train.nce import PatchSampler, l2_normalize, patch_nce_loss

TINY = dict(netG="resnet_6blocks", ngf=4, ndf=4, load_size=36, crop_size=32, n_epochs=1, n_epochs_decay=1,
            workers=0, device="cpu", print_freq=1, sample_freq=0, save_epoch_freq=0, save_latest_freq=0)


def _train(dataroot, out, model, **over):
    patches = {} if model == "cyclegan" else {"num_patches": 16}
    return ct.train(dataroot, model=model, name=model, checkpoints_dir=str(out), **{**TINY, **patches, **over})


# -- PatchNCE ------------------------------------------------------------------------------
def test_patch_nce_loss_by_hand():
    """Two patches of one image, 2-d features: the loss of patch i is
    -log(exp(q_i.k_i / T) / (exp(q_i.k_i / T) + exp(q_i.k_j / T) + exp(-10 / T)))."""
    t = 0.5
    q = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    k = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    got = patch_nce_loss(q, k, batch=1, temperature=t)
    for i, j in ((0, 1), (1, 0)):
        pos, neg = float(q[i] @ k[i]), float(q[i] @ k[j])
        want = -math.log(math.exp(pos / t) / (math.exp(pos / t) + math.exp(neg / t) + math.exp(-10 / t)))
        assert got[i].item() == pytest.approx(want, rel=1e-6)


def test_negatives_come_from_the_same_image_only():
    """With two images, image 0's loss does not change whatever image 1's patches are."""
    torch.manual_seed(0)
    q, k = l2_normalize(torch.randn(8, 5)), l2_normalize(torch.randn(8, 5))
    base = patch_nce_loss(q, k, batch=2)
    k2 = k.clone()
    k2[4:] = l2_normalize(torch.randn(4, 5))
    other = patch_nce_loss(q, k2, batch=2)
    assert torch.equal(base[:4], other[:4]) and not torch.equal(base[4:], other[4:])


def test_positives_are_the_same_locations_and_the_rest_negatives():
    """A query equal to its own key scores far lower than one whose key is another location's."""
    torch.manual_seed(1)
    k = l2_normalize(torch.randn(16, 8))
    matched = patch_nce_loss(k.clone(), k, batch=1).mean()
    shuffled = patch_nce_loss(k[torch.roll(torch.arange(16), 1)], k, batch=1).mean()
    assert matched < 0.5 < shuffled


def test_sampler_takes_the_same_locations_for_query_and_key():
    sampler = PatchSampler([3], width=4, num_patches=5)
    sampler.mlp_0 = torch.nn.Identity()  # see the raw features
    feat = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    keys, ids = sampler([feat], generator=torch.Generator().manual_seed(0))
    queries, same = sampler([feat * 2], ids)
    assert torch.equal(ids[0], same[0]) and len(ids[0]) == 5 and len(set(ids[0].tolist())) == 5
    flat = feat.permute(0, 2, 3, 1).reshape(2, 16, 3)
    assert torch.allclose(keys[0], l2_normalize(flat[:, ids[0]].reshape(10, 3)))
    assert torch.allclose(queries[0], keys[0])  # the same locations: scaling does not move unit vectors


# -- the anti-aliased networks and the CUT code's layout -----------------------------------------
def test_cut_code_layout_generator_and_discriminator_are_recognised():
    """The CUT code's ResNet-9 keeps its blur filters as `filt` buffers at these indices."""
    spec = GeneratorSpec(ngf=8, antialias=True, antialias_up=True)
    state = build_generator(spec).state_dict()
    assert {"model.7.filt", "model.11.filt", "model.21.filt", "model.25.filt", "model.4.weight",
            "model.22.weight", "model.30.weight"} <= set(state)
    assert infer_generator_spec(state) == spec
    assert infer_generator_spec(build_generator(GeneratorSpec(antialias=True)).state_dict()).antialias_up is False
    dspec = DiscriminatorSpec(ndf=8, antialias=True)
    dstate = build_discriminator(dspec).state_dict()
    assert {"model.2.filt", "model.6.filt", "model.10.filt", "model.14.weight"} <= set(dstate)
    assert infer_discriminator_spec(dstate) == dspec


def test_blur_resampling_keeps_sizes_and_constants():
    from cyclegan_tool.models.antialias import BlurDownsample, BlurUpsample

    x = torch.full((1, 2, 6, 10), 0.25)
    assert torch.allclose(BlurDownsample(2)(x), torch.full((1, 2, 3, 5), 0.25))
    assert torch.allclose(BlurUpsample(2)(x), torch.full((1, 2, 12, 20), 0.25))


def test_cut_code_checkpoint_converts_and_exports(tmp_path):
    """A `latest_net_G.pth` as the CUT code saves it: plain state_dict with the blur buffers."""
    from cyclegan_tool.export.onnx_export import export_onnx
    from cyclegan_tool.weights import load_onnx_generator

    torch.manual_seed(0)
    net = init_weights(build_generator(GeneratorSpec(name="resnet_6blocks", ngf=8, antialias=True,
                                                     antialias_up=True)), "xavier", 0.02)
    pth = tmp_path / "latest_net_G.pth"
    torch.save(net.state_dict(), pth)
    write_domain(tmp_path / "in", 2, (40, 52), (1, 0, 0), seed=3)
    summary = ct.convert(tmp_path / "in", tmp_path / "out", model=pth, backend="pytorch")
    assert summary.converted == 2 and not summary.failed
    onnx_path = export_onnx(checkpoints.load_generator(pth), tmp_path / "g.onnx").path
    # the blur layers survive the round trip through the graph (they are Conv nodes there too)
    again = load_onnx_generator(onnx_path)
    assert again.spec.antialias and again.spec.antialias_up
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(again.net(x), net.eval()(x), atol=1e-5)


# -- training ------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["cut", "fastcut"])
def test_cut_trains_resumes_exactly_exports_and_converts(dataroot, tmp_path, model):
    full = _train(dataroot, tmp_path / "full", model)
    log = [json.loads(line) for line in (full / "log.jsonl").read_text().splitlines()]
    assert {"gan_a2b", "nce", "disc_b"} <= set(log[-1]) and ("nce_idt" in log[-1]) == (model == "cut")
    saved = checkpoints.read(full / "latest.pt")
    assert saved["model"] == model and set(saved["networks"]) == {"gen_a2b", "disc_b", "head"}
    config = saved["config"]
    assert config["init_type"] == "xavier" and config["antialias"] and config["pool_size"] == 0
    assert config["lambda_nce"] == (1.0 if model == "cut" else 10.0)
    assert config["flip_equivariance"] == (model == "fastcut")
    assert (full / "latest_net_G.pth").is_file()  # the CUT code's layout
    assert checkpoints.load_generator(full / "latest_net_G.pth").spec.antialias

    from cyclegan_tool.train.trainer import Reporter

    class Stop(Reporter):
        def step(self, *, step, epoch, losses):
            if step == 7:
                raise KeyboardInterrupt

    with pytest.raises(CycleGANError, match="interrupted at epoch 2"):
        _train(dataroot, tmp_path / "split", model, reporter=Stop())
    split = _train(dataroot, tmp_path / "split", model, resume=True)
    a, b = checkpoints.read(full / "latest.pt"), checkpoints.read(split / "latest.pt")
    for net in a["networks"]:
        for key, value in a["networks"][net].items():
            assert torch.equal(value, b["networks"][net][key]), f"{net}.{key} differs after resume"

    onnx_path = ct.export(full / "latest.pt", output=tmp_path / "m.onnx").onnx
    write_domain(tmp_path / "in", 2, (36, 40), (1, 0, 0), seed=5)
    for model_file in (full / "latest.pt", onnx_path):
        summary = ct.convert(tmp_path / "in", tmp_path / f"out_{model_file.suffix[1:]}", model=model_file)
        assert summary.converted == 2 and not summary.failed
    res = CliRunner().invoke(cli, ["convert", "--checkpoint", str(full / "latest.pt"), "--direction", "b2a",
                                   str(tmp_path / "in"), str(tmp_path / "b2a")])
    assert res.exit_code == 1 and res.output.count("\n") == 1 and "has one generator, a2b" in res.output
    info = CliRunner().invoke(cli, ["info", str(full / "latest.pt")])
    assert info.exit_code == 0 and f"model: {model}" in info.output


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO is not installed")
def test_antialiased_generator_on_openvino_and_int8(tmp_path):
    from cyclegan_tool.export.onnx_export import export_onnx

    torch.manual_seed(0)
    net = init_weights(build_generator(GeneratorSpec(name="resnet_6blocks", ngf=8, antialias=True,
                                                     antialias_up=True)), "xavier", 0.02)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    onnx_path = export_onnx(checkpoints.load_generator(tmp_path / "latest_net_G.pth"), tmp_path / "g.onnx").path
    write_domain(tmp_path / "in", 8, (40, 40), (1, 0, 0), seed=3)
    ov = ct.convert(tmp_path / "in", tmp_path / "ov", model=onnx_path, backend="openvino", format="png")
    ref = ct.convert(tmp_path / "in", tmp_path / "ort", model=onnx_path, backend="onnxruntime", format="png")
    assert ov.converted == ref.converted == 8
    from PIL import Image

    for p in (tmp_path / "ort").glob("*.png"):
        a = np.asarray(Image.open(p), np.int16)
        b = np.asarray(Image.open(tmp_path / "ov" / p.name), np.int16)
        assert np.abs(a - b).max() <= 2
    report = ct.export(onnx_path, output=tmp_path / "g8.onnx", int8=tmp_path / "in", calib_count=8, calib_size=40,
                       int8_min_psnr=10)
    assert report.precision == "int8"


# -- the validation split ------------------------------------------------------------------
def test_validation_split_is_seeded_and_never_trained_on(dataroot, tmp_path):
    from cyclegan_tool.train.config import TrainConfig
    from cyclegan_tool.train.data import UnalignedDataset, split_dataset

    write_domain(dataroot / "trainA", 12, (40, 44), (1, 0.2, 0.2), seed=7, ext="jpg")
    cfg = TrainConfig(dataroot=str(dataroot), val_from_train=3, seed=4)
    first, again = split_dataset(cfg), split_dataset(cfg)
    assert first == again and len(first.val_a) == len(first.val_b) == 3
    other = split_dataset(TrainConfig(dataroot=str(dataroot), val_from_train=3, seed=5))
    assert other.val_a != first.val_a or other.val_b != first.val_b
    dataset = UnalignedDataset(cfg)
    assert not set(dataset.paths_a) & set(first.val_a) and not set(dataset.paths_b) & set(first.val_b)
    assert len(dataset.paths_a) + 3 == len(list((dataroot / "trainA").iterdir()))
    with pytest.raises(CycleGANError, match="would hold out all 5 images"):
        split_dataset(TrainConfig(dataroot=str(dataroot), val_from_train=5))


def test_val_folders_are_used_and_recorded(dataroot, tmp_path):
    from cyclegan_tool.train.config import TrainConfig
    from cyclegan_tool.train.data import split_dataset

    write_domain(dataroot / "valA", 2, (40, 40), (1, 0, 0), seed=8)
    write_domain(dataroot / "valB", 2, (40, 40), (0, 0, 1), seed=9)
    split = split_dataset(TrainConfig(dataroot=str(dataroot)))
    assert split.source == "valA/valB" and [p.parent.name for p in split.val_a] == ["valA", "valA"]
    swapped = split_dataset(TrainConfig(dataroot=str(dataroot), direction="b2a"))
    assert swapped.val_a == split.val_b


def test_eval_every_scores_validation_images_not_test_images(dataroot, tmp_path, monkeypatch):
    """--eval-every without a validation set is refused before training; with --val-from-train it
    scores the held-out images (the test folders are never read)."""
    from cyclegan_tool.train import evaluation

    write_domain(dataroot / "testA", 3, (36, 36), (1, 0, 0), seed=11)
    write_domain(dataroot / "testB", 3, (36, 36), (0, 0, 1), seed=12)
    with pytest.raises(ConfigError, match="validation images"):
        _train(dataroot, tmp_path, "fastcut", eval_every=1)
    assert not (tmp_path / "fastcut" / "latest.pt").exists()
    seen: list[Path] = []

    class Standin:
        key, batch_size = "standin", 4

        def batch(self, images):
            return np.stack([np.asarray(i, np.float32).mean(axis=(0, 1)) for i in images]) + np.random.rand(
                len(images), 3)

    real_files_features = evaluation.files_features

    def spy(root, files, extractor, **kw):
        seen.extend(files)
        return real_files_features(root, files, extractor, **kw)

    monkeypatch.setattr(evaluation, "files_features", spy)
    monkeypatch.setattr(evaluation, "FeatureExtractor", lambda device: Standin())
    run = _train(dataroot, tmp_path / "v", "fastcut", eval_every=1, val_from_train=2)
    assert seen and all(p.parent.name in ("trainA", "trainB") for p in seen)
    held = json.loads((run / "config.json").read_text())["validation"]
    assert sorted(p.name for p in seen) == sorted(Path(p).name for p in held["a"] + held["b"])
    kid = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if "kid_a2b" in line]
    assert len(kid) == 2 and all("kid_b2a" not in r for r in kid) and (run / "best.pt").is_file()


# -- options -------------------------------------------------------------------------------
@pytest.mark.parametrize("model, opts, message", [
    ("cut", dict(lambda_a=5.0), "--lambda-a is an option of --model cyclegan"),
    ("fastcut", dict(pool_size=50), "--pool-size is an option of --model cyclegan"),
    ("cyclegan", dict(nce_t=0.1), "--nce-t is an option of --model cut or fastcut"),
    ("cut", dict(netG="unet_128", crop_size=128, load_size=128), "has none"),
    ("cut", dict(nce_layers="0,4,99"), "--nce-layers must be"),
    ("cut", dict(best_metric="kid_b2a"), "trains one generator"),
    ("cyclegan", dict(lr=math.inf), "--lr must be a finite number"),
    ("cyclegan", dict(seed=-1), "--seed must be 0 or more"),
])
def test_options_a_family_cannot_use_are_refused(dataroot, tmp_path, model, opts, message):
    with pytest.raises(ConfigError, match=message):
        _train(dataroot, tmp_path, model, **opts)


def test_cli_model_flags_and_negations(dataroot, tmp_path):
    args = ["train", str(dataroot), "--model", "cut", "--no-nce-idt", "--no-antialias-up", "--checkpoints-dir",
            str(tmp_path), "--name", "c", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36",
            "--crop-size", "32", "--n-epochs", "1", "--n-epochs-decay", "0", "--workers", "0", "--num-patches", "8"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    config = checkpoints.read(tmp_path / "c" / "latest.pt")["config"]
    assert config["nce_idt"] is False and config["antialias_up"] is False and config["antialias"] is True
    assert config["n_epochs"] == 1 and config["lambda_nce"] == 1.0
    bad = CliRunner().invoke(cli, ["train", str(dataroot), "--model", "cut", "--preset", "keras-colorize"])
    assert bad.exit_code == 1 and "does not go with --model cut" in bad.output


def test_average_of_cut_checkpoints(dataroot, tmp_path):
    run = _train(dataroot, tmp_path, "fastcut", save_epoch_freq=1)
    soup = checkpoints.average_generators([run / "epoch_0001.pt", run / "epoch_0002.pt"])
    a = checkpoints.read(run / "epoch_0001.pt")["networks"]["gen_a2b"]
    b = checkpoints.read(run / "epoch_0002.pt")["networks"]["gen_a2b"]
    key = "model.1.weight"
    assert torch.allclose(soup["networks"]["gen_a2b"][key], (a[key] + b[key]) / 2)
