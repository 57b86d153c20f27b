"""No silent wrong output, no run-wide traceback, one line per error: the repros of the
issue "No silent wrong output" (the caches' repros are in test_runner.py and test_cache.py)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_domain
from PIL import Image

import cyclegan_tool as ct
from cyclegan_tool.cli import cli
from cyclegan_tool.errors import CycleGANError


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res, *parts: str) -> None:
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for part in parts:
        assert part in lines[0], lines[0]


# -- large images: one pass, or band by band with the whole image's statistics ----------------
def test_a_large_image_in_parts_equals_one_pass(tiny_generator, tmp_path):
    from cyclegan_tool.fidelity import psnr

    rng = np.random.default_rng(0)
    coarse = Image.fromarray((rng.random((30, 120, 3)) * 255).astype(np.uint8)).resize((1200, 300))
    (tmp_path / "in").mkdir()
    coarse.save(tmp_path / "in" / "wide.png")
    ct.convert(tmp_path / "in", tmp_path / "one", model=tiny_generator, backend="pytorch", precision="fp32")
    ct.convert(tmp_path / "in", tmp_path / "parts", model=tiny_generator, backend="pytorch", precision="fp32",
               tile=128)  # over 128 x 128 pixels: band by band
    a = np.asarray(Image.open(tmp_path / "one" / "wide.png"), np.float64)
    b = np.asarray(Image.open(tmp_path / "parts" / "wide.png"), np.float64)
    assert psnr(a, b, 255) > 60  # per-tile statistics gave 17.9 dB for a ResNet-9 on 4200x1000
    # the same for an ONNX model on ONNX Runtime (its FP32 weights run band by band)
    onnx_path = ct.export(tiny_generator, output=tmp_path / "g.onnx").onnx
    ct.convert(tmp_path / "in", tmp_path / "ort", model=onnx_path, backend="onnxruntime", tile=128)
    c = np.asarray(Image.open(tmp_path / "ort" / "wide.png"), np.float64)
    assert psnr(a, c, 255) > 50


# -- several processes: a lost worker's files are failed by name ------------------------------
def dying_converter(**kwargs):
    """A share that dies (as if killed) after two files on the second device."""
    from cyclegan_tool import api

    rank = kwargs["options"].shard[0]
    for i, event in enumerate(api.convert_events(**kwargs)):
        if rank == 1 and i == 2:
            os._exit(9)
        yield event


@pytest.mark.slow
def test_a_killed_worker_fails_its_files_by_name(tiny_onnx, tmp_path):
    from dataclasses import replace

    from cyclegan_tool.runtime import ConvertOptions, plan_many
    from cyclegan_tool.runtime.multi import convert_on_devices

    write_domain(tmp_path / "in", 10, (24, 24), (0.5, 0.6, 0.7), seed=3)
    opts = replace(ConvertOptions(), format="png")
    planned = plan_many([tmp_path / "in"], tmp_path / "out", opts)
    events = list(convert_on_devices(["cpu", "cpu"], dying_converter, dict(
        inputs=tmp_path / "in", out=tmp_path / "out", model=tiny_onnx, options=opts, backend="onnxruntime"),
        planned))
    summary = events[-1]
    written = {p.stem for p in (tmp_path / "out").glob("*.png")}
    lost = [p for p, msg in summary.failed if "worker process for cpu" in msg]
    # every file is either written whole and counted, or failed by name; nothing is "30 of 30"
    assert summary.converted == len(written) and summary.converted + len(summary.failed) == 10
    assert all(p.stem not in written for p in lost) and not summary.ok  # exit status 1
    assert any("process ended with status 9" in e for e in summary.errors)


# -- non-finite training and weights ------------------------------------------------------------
def test_a_checkpoint_with_non_finite_weights_is_refused(tiny_generator, tmp_path):
    state = torch.load(tiny_generator, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first][0] = float("nan")
    bad = tmp_path / "nan_net_G_A.pth"
    torch.save(state, bad)
    write_domain(tmp_path / "in", 1, (24, 24), (0.5, 0.6, 0.7), seed=3)
    one_line_error(run("convert", "--checkpoint", bad, tmp_path / "in", tmp_path / "out"), "NaN or infinite",
                   "nan_net_G_A.pth")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_train_refuses_non_finite_options(dataroot, tmp_path):
    one_line_error(run("train", dataroot, "--checkpoints-dir", tmp_path, "--lr", "inf"), "--lr must be a finite")
    one_line_error(run("train", dataroot, "--checkpoints-dir", tmp_path, "--seed", "-1"), "--seed must be 0 or more")


# -- directions ---------------------------------------------------------------------------------
def test_a_shipped_models_other_direction_runs_its_pair(tmp_path):
    write_domain(tmp_path / "in", 1, (32, 32), (0.5, 0.6, 0.7), seed=3)
    said = []
    ct.convert(tmp_path / "in", tmp_path / "o", model="horse2zebra", direction="b2a", precision="fp32",
               on_start=said.append)
    assert "zebra2horse.onnx" in said[0] and "its pair zebra2horse" in said[0]
    ct.convert(tmp_path / "in", tmp_path / "p", model="zebra2horse", precision="fp32")
    assert (np.asarray(Image.open(tmp_path / "o" / "img_000.png")) ==
            np.asarray(Image.open(tmp_path / "p" / "img_000.png"))).all()


def test_a_reference_g_b_file_refuses_a2b(tiny_generator, tmp_path):
    g_b = tmp_path / "latest_net_G_B.pth"
    shutil.copy(tiny_generator, g_b)
    write_domain(tmp_path / "in", 1, (24, 24), (0.5, 0.6, 0.7), seed=3)
    one_line_error(run("convert", "--checkpoint", g_b, "--direction", "a2b", tmp_path / "in", tmp_path / "out"),
                   "G_B (b2a)", "latest_net_G_A.pth")


# -- files ---------------------------------------------------------------------------------------
def test_float_images_are_read_by_their_range(tmp_path):
    from cyclegan_tool.imageio import decode

    gray = (np.random.default_rng(0).random((20, 30)) * 255).astype(np.float32)
    Image.fromarray(gray, mode="F").save(tmp_path / "f255.tif")
    Image.fromarray(gray / 255, mode="F").save(tmp_path / "f1.tif")
    Image.fromarray(gray - 300, mode="F").save(tmp_path / "neg.tif")
    a, b = decode(tmp_path / "f255.tif"), decode(tmp_path / "f1.tif")
    assert a.scale == "0-255" and b.scale == "0-1"
    want = np.rint(gray / 255 * 65535)
    assert np.abs(a.rgb[..., 0].astype(np.float64) - want).max() <= 1  # was clipped at 1: 9 dB from gray
    assert np.abs(b.rgb[..., 0].astype(np.float64) - want).max() <= 1
    with pytest.raises(CycleGANError, match="neg.tif: a float image with values from -299"):
        decode(tmp_path / "neg.tif")


def test_skip_existing_redoes_a_truncated_or_empty_output(tiny_onnx, tmp_path):
    write_domain(tmp_path / "in", 3, (24, 24), (0.5, 0.6, 0.7), seed=3)
    ct.convert(tmp_path / "in", tmp_path / "out", model=tiny_onnx, backend="onnxruntime")
    good = (tmp_path / "out" / "img_000.png").read_bytes()
    (tmp_path / "out" / "img_001.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "out" / "img_002.png").write_bytes(b"")
    summary = ct.convert(tmp_path / "in", tmp_path / "out", model=tiny_onnx, backend="onnxruntime",
                         skip_existing=True)
    assert summary.skipped == 1 and summary.converted == 2
    assert any("incomplete and were converted again" in n for n in summary.notes)
    for p in (tmp_path / "out").iterdir():
        Image.open(p).load()


def test_an_empty_folder_or_a_pipe_is_an_error(tmp_path, tiny_onnx):
    (tmp_path / "empty").mkdir()
    one_line_error(run("convert", "--onnx", tiny_onnx, tmp_path / "empty", tmp_path / "out"),
                   "no images or clips found")
    os.mkfifo(tmp_path / "fifo")
    one_line_error(run("convert", "--onnx", tiny_onnx, tmp_path / "fifo", tmp_path / "out"), "fifo",
                   "neither a regular file nor a folder")


def test_inputs_inside_out_are_counted_as_skipped(tmp_path, tiny_onnx):
    write_domain(tmp_path / "in", 2, (24, 24), (0.5, 0.6, 0.7), seed=3)
    write_domain(tmp_path / "in" / "out", 1, (24, 24), (0.5, 0.6, 0.7), seed=4)
    summary = ct.convert(tmp_path / "in", tmp_path / "in" / "out", model=tiny_onnx, backend="onnxruntime",
                         suffix="_z")
    assert summary.total == 3 and summary.converted == 2 and summary.skipped == 1


# -- caches and files that used to give tracebacks -----------------------------------------------
def test_a_truncated_feature_cache_entry_is_computed_again(tmp_path, monkeypatch):
    from cyclegan_tool.metrics import folders

    class Standin:
        key, batch_size = "standin", 4

        def batch(self, images):
            return np.stack([np.asarray(i, np.float32).mean(axis=(0, 1)) for i in images])

    write_domain(tmp_path / "real", 3, (24, 24), (0.5, 0.6, 0.7), seed=3)
    first = folders.folder_features(tmp_path / "real", Standin(), cache_dir=tmp_path / "fid")
    (entry,) = (tmp_path / "fid").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:40])  # truncated: BadZipFile every time, before
    again = folders.folder_features(tmp_path / "real", Standin(), cache_dir=tmp_path / "fid")
    assert not again.cached and np.allclose(again.features, first.features)


@pytest.mark.parametrize("change, field", [({"format_version": "x"}, "format_version"), ({"library": None}, "library"),
                                           ({"library": [1]}, "library"), ({"profile": {"min": [1]}}, "profile")])
def test_a_malformed_sidecar_is_one_line(tmp_path, change, field):
    from cyclegan_tool import sidecar

    good = {"format": sidecar.FORMAT, "format_version": 1,
            "library": {"name": "tensorrt_rtx", "key": "rtx", "version": "1.0"}, "generator": {"name": "resnet_6blocks"},
            "direction": "a2b", "precision": "fp16", "io": {"input": "input", "output": "output", "dtype": "float16"},
            "pad_multiple": 4, "profile": {"min": [1, 3, 32, 32], "opt": [1, 3, 64, 64], "max": [1, 3, 96, 96]}}
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    sidecar.path_for(plan).write_text(json.dumps({**good, **change}))
    res = run("info", plan)
    one_line_error(res, "m.plan.json", f"'{field}'")
    sidecar.path_for(plan).write_text(json.dumps({**good, "library": {**good["library"], "key": "nope"}}))
    assert run("info", plan).exit_code == 0  # info reads it; running blames the sidecar, not --trt
    from cyclegan_tool.runtime.trt_backend import TensorRTBackend

    with pytest.raises(CycleGANError, match="m.plan.json: library key must be auto, tensorrt or rtx"):
        TensorRTBackend(plan).open()


def test_option_mistakes_are_one_line(tmp_path, tiny_generator, tiny_onnx):
    write_domain(tmp_path / "calib", 8, (40, 40), (0.5, 0.6, 0.7), seed=3)
    one_line_error(run("export", tiny_generator, "-o", tmp_path / "m.onnx", "--opset", "99"), "--opset 99")
    one_line_error(run("export", tiny_generator, "-o", tmp_path / "m.onnx", "--int8", tmp_path / "calib",
                       "--calib-size", "1"), "--calib-size 1")
    for args, part in ((["--size", "0"], "--size '0'"), (["--size", "3x"], "--size '3x'")):
        one_line_error(run("bench", tiny_onnx, *args), part)
    res = run("bench", tiny_onnx, "--iters", "0")
    assert res.exit_code == 2 and "--iters" in res.output
    write_domain(tmp_path / "in", 1, (24, 24), (0.5, 0.6, 0.7), seed=3)
    one_line_error(run("convert", "--onnx", tiny_onnx, "--decode-workers", "0", tmp_path / "in", tmp_path / "o"),
                   "--decode-workers must be at least 1")


def test_the_int8_calibration_count_said_is_the_one_used(tmp_path, tiny_generator):
    write_domain(tmp_path / "calib", 12, (40, 40), (0.5, 0.6, 0.7), seed=3)
    res = run("export", tiny_generator, "-o", tmp_path / "q.onnx", "--int8", tmp_path / "calib", "--calib-size", "32",
              "--int8-min-psnr", "10")
    assert res.exit_code == 0, res.output
    assert "on 12 calibration images" in res.output  # 64 asked for, 12 there: it said 64


def test_killed_checkpoint_writes_leave_nothing_behind(dataroot, tmp_path):
    from conftest import tiny_config

    from cyclegan_tool.train.trainer import train

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".latest.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    train(tiny_config(dataroot, tmp_path, n_epochs=1, n_epochs_decay=0))
    assert not list(run_dir.glob(".*.tmp"))
    import time

    from cyclegan_tool.export.forms import FORMS

    FORMS.folder.mkdir(parents=True, exist_ok=True)
    stale = FORMS.folder / ".x.onnx.1.2.tmp"
    stale.write_bytes(b"half a form")
    past = time.time() - 7200
    os.utime(stale, (past, past))
    FORMS.make("k", ".onnx", lambda tmp: tmp.write_bytes(b"form"))
    assert not stale.exists()


def test_an_openvino_refusal_is_one_run_error_with_its_reason(tmp_path, tiny_onnx, monkeypatch):
    pytest.importorskip("openvino")
    from cyclegan_tool.runtime import ov_compiled

    def refuse(self, form):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:84:\nException from "
                           "src/plugins/intel_cpu/src/node.cpp:1:\nUnsupported operation of type: Foo\n")

    monkeypatch.setattr(ov_compiled.CompiledForms, "_compile", refuse)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no compiled form kept by an earlier test
    write_domain(tmp_path / "in", 3, (24, 24), (0.5, 0.6, 0.7), seed=3)
    res = run("convert", "--onnx", tiny_onnx, "--backend", "openvino", tmp_path / "in", tmp_path / "out")
    one_line_error(res, "OpenVINO cannot compile it", "Unsupported operation of type: Foo")
    assert "core.cpp" not in res.output and res.output.count("failed") <= 1
