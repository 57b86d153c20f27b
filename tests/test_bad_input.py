"""The unlucky user: every bad input gets a one-line error naming the file, the run goes on past
a bad file, and nothing is ever overwritten or lost (issue 10's cases, one test each)."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_config
from PIL import Image

from cyclegan_tool.cli import cli
from cyclegan_tool.errors import ConfigError
from cyclegan_tool.runtime import ConvertOptions, plan_jobs, plan_many


def run_cli(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def one_line_error(res, *fragments):
    """Exit 1 with one `error:` line (informational lines before it are fine) and no traceback."""
    assert res.exit_code == 1, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert "Traceback" not in res.output and len(errors) == 1 and res.output.rstrip().endswith(errors[0]), res.output
    for f in fragments:
        assert f in res.output, res.output


def save(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


# -- nothing is overwritten -----------------------------------------------------------------
def test_suffix_in_place_never_replaces_an_input(tmp_path, tiny_onnx):
    save(tmp_path / "a.png", rgb(16, 16))
    mine = save(tmp_path / "a_z.png", rgb(16, 16, seed=1)).read_bytes()  # the user's own file
    one_line_error(run_cli("convert", "--onnx", tiny_onnx, tmp_path, tmp_path, "--suffix", "_z"),
                   "a_z.png is an input image and would be overwritten")
    assert (tmp_path / "a_z.png").read_bytes() == mine


def test_out_inside_in_never_replaces_inputs_under_out(tmp_path, tiny_onnx):
    save(tmp_path / "d" / "a.png", rgb(16, 16))
    mine = save(tmp_path / "d" / "sub" / "a.png", rgb(16, 16, seed=2)).read_bytes()
    one_line_error(run_cli("convert", "--onnx", tiny_onnx, tmp_path / "d", tmp_path / "d" / "sub"), "sub/a.png")
    assert (tmp_path / "d" / "sub" / "a.png").read_bytes() == mine


def test_two_dropped_files_with_one_name_are_refused(tmp_path):
    a, b = save(tmp_path / "a" / "x.png", rgb(8, 8)), save(tmp_path / "b" / "x.png", rgb(8, 8))
    with pytest.raises(ConfigError, match="would both write"):
        plan_many([a, b], tmp_path / "out", ConvertOptions())
    from cyclegan_tool.gui.state import GuiState

    state = GuiState(inputs=[a, b], model="horse2zebra", output=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="would both write"):
        state.jobs()


# -- one bad file fails alone ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["onnx", "pytorch"])
def test_one_and_two_pixel_images_convert(tmp_path, tiny_onnx, tiny_generator, kind):
    for side in (1, 2, 3):
        save(tmp_path / "in" / f"s{side}.png", rgb(side, side))
    save(tmp_path / "in" / "wide.png", rgb(1, 9))
    model = tiny_onnx if kind == "onnx" else tiny_generator
    res = run_cli("convert", "--onnx" if kind == "onnx" else "--checkpoint", model, tmp_path / "in", tmp_path / "out")
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "out" / "wide.png") as im:
        assert im.size == (9, 1)


def test_runtime_errors_of_onnx_runtime_fail_one_file(tmp_path, tiny_onnx, monkeypatch):
    """ONNX Runtime's own exception types (InvalidArgument, ...) are that file's failure."""
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    from cyclegan_tool.runtime.ort_backend import OnnxRuntimeBackend

    real = OnnxRuntimeBackend._infer_impl

    def picky(self, x):
        if x.shape[-1] == 20:
            raise InvalidArgument("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions")
        return real(self, x)

    monkeypatch.setattr(OnnxRuntimeBackend, "_infer_impl", picky)
    save(tmp_path / "in" / "good.png", rgb(16, 16))
    save(tmp_path / "in" / "odd.png", rgb(16, 20))
    save(tmp_path / "in" / "zlast.png", rgb(16, 16))
    res = run_cli("convert", "--onnx", tiny_onnx, "--backend", "onnxruntime", tmp_path / "in", tmp_path / "out")
    assert res.exit_code == 1 and "2 converted" in res.output and "odd.png: translation failed" in res.output
    assert (tmp_path / "out" / "zlast.png").is_file() and not (tmp_path / "out" / "odd.png").exists()


def test_out_of_memory_while_preparing_fails_that_file(tmp_path, tiny_onnx, monkeypatch):
    from cyclegan_tool.runtime import pipeline

    real = pipeline.prepare

    def prepare(img, info, opts):
        if img.size == (20, 20):
            raise MemoryError()
        return real(img, info, opts)

    monkeypatch.setattr(pipeline, "prepare", prepare)
    save(tmp_path / "in" / "big.png", rgb(20, 20))
    save(tmp_path / "in" / "fine.png", rgb(16, 16))
    res = run_cli("convert", "--onnx", tiny_onnx, tmp_path / "in", tmp_path / "out")
    assert res.exit_code == 1 and "1 converted" in res.output
    assert "big.png: cannot prepare the image" in res.output and "--tile" in res.output


# -- memory ---------------------------------------------------------------------------------
def test_scaling_a_strip_is_capped():
    from cyclegan_tool.runtime.translate import MAX_SCALED_SIDE, target_size

    h, w = target_size(1, 500, ConvertOptions(size=128))
    assert max(h, w) <= MAX_SCALED_SIDE and (h, w) == (16, 8192)
    assert target_size(1, 500, ConvertOptions(size=128, max_side=1000)) == (2, 1000)


def test_images_too_big_for_one_pass_go_band_by_band(tmp_path, tiny_onnx, monkeypatch):
    """Over the one-pass limit (the runtime's bytes per pixel against the memory available) an
    image is translated exactly, band by band, never by the backend in one pass; an engine,
    which has no other way in, tiles it and the summary says so."""
    from conftest import make_backend

    from cyclegan_tool.api import resolve_model
    from cyclegan_tool.runner import exact_translator
    from cyclegan_tool.runtime import run_convert, translate

    monkeypatch.setattr(translate, "one_pass_pixels", lambda info: 40 * 40)
    save(tmp_path / "in" / "big.png", rgb(64, 80))
    opts = ConvertOptions(decode_workers=1, write_workers=1)
    be, _ = make_backend(tiny_onnx, device="cpu", backend="onnxruntime")
    seen, exact = [], exact_translator(resolve_model(tiny_onnx))
    used = []
    with be:
        infer = be.infer
        be.infer = lambda x: (seen.append(tuple(x.shape)), infer(x))[1]
        jobs = plan_jobs(tmp_path / "in", tmp_path / "out", opts)
        summary = list(run_convert(jobs, be, opts, exact=lambda x: (used.append(x.shape), exact(x))[1]))[-1]
        assert summary.converted == 1 and used and not seen and not summary.notes
        tiled = list(run_convert(jobs, be, opts))[-1]  # as for an engine: tiles, with a note
    assert tiled.converted == 1 and seen and all(h * w < 64 * 80 for _, _, h, w in seen)
    assert any("overlapping tiles" in n for n in tiled.notes)


# -- limits and folders ---------------------------------------------------------------------
def test_max_pixels_really_sets_the_limit(tmp_path, tiny_onnx, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # stands in for Pillow's own limit on huge images
    save(tmp_path / "in" / "a.png", rgb(32, 32))
    res = run_cli("convert", "--onnx", tiny_onnx, tmp_path / "in", tmp_path / "out", "--max-pixels", "5000")
    assert res.exit_code == 0, res.output
    res = run_cli("convert", "--onnx", tiny_onnx, tmp_path / "in", tmp_path / "o2", "--max-pixels", "500")
    assert res.exit_code == 1 and "a.png: 32x32 pixels is over the limit of 500" in res.output
    for bad in ("0", "-1"):
        one_line_error(run_cli("convert", "--onnx", tiny_onnx, tmp_path / "in", tmp_path / "o3", "--max-pixels", bad),
                       "--max-pixels must be at least 1")


def test_stale_temporary_files_are_removed(tmp_path, tiny_onnx):
    save(tmp_path / "in" / "a.png", rgb(16, 16))
    stale = tmp_path / "out" / ".a.png.k3j2h1.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"half a file")
    other = tmp_path / "out" / ".notes.tmp"
    other.write_bytes(b"not ours")
    assert run_cli("convert", "--onnx", tiny_onnx, tmp_path / "in", tmp_path / "out").exit_code == 0
    assert not stale.exists() and other.exists()


def test_unwritable_out_is_found_before_any_work(tmp_path, tiny_onnx):
    save(tmp_path / "in" / "a.png", rgb(16, 16))
    (tmp_path / "file").write_text("I am a file")
    one_line_error(run_cli("convert", "--onnx", tiny_onnx, tmp_path / "in", tmp_path / "file" / "out"),
                   "cannot write the outputs there")


def test_model_with_other_channels_is_refused_up_front(tmp_path):
    from cyclegan_tool.models import GeneratorSpec, build_generator

    path = tmp_path / "rgba_net_G_A.pth"  # 1 and 3 channels convert; 4 (RGBA) is not an image mode we map
    torch.save(build_generator(GeneratorSpec(name="resnet_6blocks", ngf=4, input_nc=4, output_nc=3)).state_dict(),
               path)
    save(tmp_path / "in" / "a.png", rgb(16, 16))
    one_line_error(run_cli("convert", "--checkpoint", path, tmp_path / "in", tmp_path / "out"),
                   "maps 4 -> 3 channels")
    assert not (tmp_path / "out" / "a.png").exists()


def test_pages_are_noted_and_animations_converted_whole(tmp_path, tiny_onnx):
    frames = [Image.fromarray(rgb(16, 16, seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "in.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "in").mkdir()
    (tmp_path / "in.gif").rename(tmp_path / "in" / "anim.gif")
    frames[0].save(tmp_path / "in" / "pages.tif", save_all=True, append_images=frames[1:])
    res = run_cli("convert", "--onnx", tiny_onnx, tmp_path / "in", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "1 file(s) have several pages; only the first page was converted" in res.output
    assert "pages.tif" in res.output and "anim.gif: flicker" in res.output
    with Image.open(tmp_path / "out" / "anim.gif") as im:
        assert im.n_frames == 3


def test_symlinked_folders_are_named(tmp_path, caplog):
    save(tmp_path / "real" / "a.png", rgb(8, 8))
    (tmp_path / "in").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "in" / "link")
    save(tmp_path / "in" / "b.png", rgb(8, 8))
    with caplog.at_level(logging.WARNING):
        jobs = plan_jobs(tmp_path / "in", tmp_path / "out", ConvertOptions())
    assert [j.src.name for j in jobs] == ["b.png"]
    assert "link: symlinked folder not followed" in caplog.text


def test_devices_with_equals_sign_is_one_line(tmp_path):
    save(tmp_path / "in" / "a.png", rgb(8, 8))
    one_line_error(run_cli("convert", "--model", "horse2zebra", "--devices=0,1", tmp_path / "in", tmp_path / "o"),
                   "--devices 0,1")


# -- train ----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (["--lr", "-1"], "--lr must be above 0"),
    (["--workers", "-2"], "--workers must be -1"),
    (["--netG", "unet_256", "--crop-size", "30", "--load-size", "32"], "multiples of 256"),
    (["--preprocess", "none", "--batch-size", "2"], "--batch-size 1"),
])
def test_train_refuses_bad_options_in_one_line(dataroot, tmp_path, args, fragment):
    one_line_error(run_cli("train", dataroot, "--checkpoints-dir", tmp_path, *args), fragment)


def test_train_skips_images_too_small_for_the_networks(dataroot, tmp_path, caplog):
    from cyclegan_tool.train.trainer import train

    save(dataroot / "trainA" / "strip.png", rgb(1, 500))
    with caplog.at_level(logging.WARNING):
        run = train(tiny_config(dataroot, tmp_path, preprocess="none", n_epochs=1, n_epochs_decay=0))
    assert (run / "latest.pt").is_file() and "strip.png" in caplog.text and "pixels the networks need" in caplog.text


def test_a_crash_still_saves_latest(dataroot, tmp_path, monkeypatch):
    from cyclegan_tool import checkpoints
    from cyclegan_tool.train import cyclegan
    from cyclegan_tool.train.trainer import train

    real, calls = cyclegan.CycleGAN.train_step, []

    def flaky(self, a, b):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("CUDA error: device-side assert triggered")
        return real(self, a, b)

    monkeypatch.setattr(cyclegan.CycleGAN, "train_step", flaky)
    with pytest.raises(RuntimeError):
        train(tiny_config(dataroot, tmp_path, n_epochs=2, n_epochs_decay=0))
    state = checkpoints.read(tmp_path / "run" / "latest.pt")
    assert (state["epoch"], state["batches_done"]) == (0, 2)


def test_a_short_run_leaves_a_log_and_a_sample(dataroot, tmp_path):
    from cyclegan_tool.train.trainer import train

    run = train(tiny_config(dataroot, tmp_path, print_freq=100, sample_freq=400))
    assert (run / "log.jsonl").read_text().strip() and list((run / "samples").glob("*.png"))


# -- info, export, bench, startup ---------------------------------------------------------------
def test_info_on_wrong_files_is_one_line(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    one_line_error(run_cli("info", tmp_path / "empty.onnx"), "not an ONNX model")
    torch.save({"format": "cyclegan-tool/checkpoint", "networks": {}}, tmp_path / "noarch.pt")
    one_line_error(run_cli("info", tmp_path / "noarch.pt"), "without arch")
    save(tmp_path / "photo.jpg", rgb(8, 8))
    one_line_error(run_cli("info", tmp_path / "photo.jpg"), "an image, not a model file")


def test_export_engine_never_replaces_an_existing_onnx(tmp_path, tiny_generator):
    keep = tmp_path / "m.onnx"
    keep.write_bytes(b"my own model")
    one_line_error(run_cli("export", tiny_generator, "--engine", tmp_path / "m.plan"), "m.onnx exists")
    assert keep.read_bytes() == b"my own model"


def test_bench_takes_a_shipped_model_name():
    res = run_cli("bench", "horse2zebra", "--size", "32", "--iters", "1", "--warmup", "0")
    assert res.exit_code == 0 and "images/s" in res.output, res.output


def test_help_does_not_load_torch():
    code = ("import sys; from cyclegan_tool.cli import cli\n"
            "try: cli(['--help'], prog_name='cyclegan-tool')\n"
            "except SystemExit: pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "convert" in proc.stdout, proc.stderr


def test_an_unknown_precision_is_refused_by_the_api_and_the_bench_takes_bf16(tiny_onnx, monkeypatch):
    import cyclegan_tool as ct

    with pytest.raises(ConfigError, match="--precision must be one of auto, fp16, fp32, bf16, not 'int4'"):
        ct.load_model(tiny_onnx, precision="int4")  # was ignored: the FP32 graph ran as if asked for nothing
    # The CLIs list the API's precisions; bf16 for an ONNX model on a CPU is OpenVINO's bf16 arithmetic.
    res = run_cli("bench", tiny_onnx, "--precision", "bf16", "--iters", "1", "--warmup", "0", "--size", "32")
    from cyclegan_tool.devices import cpu_has_native_bf16

    if importlib.util.find_spec("openvino") is None:
        one_line_error(res, "tiny.onnx", "which is not installed")
    elif not cpu_has_native_bf16():
        one_line_error(res, "tiny.onnx", "no native bf16")
    else:  # bf16 arithmetic, never the FP32 graph in its place
        assert res.exit_code == 0 and "bf16 arithmetic -> " in res.output and "bf16 on cpu" in res.output, res.output
    from cyclegan_tool.runtime import facts

    monkeypatch.setattr(facts, "package_version", lambda name: None)
    with pytest.raises(ConfigError, match="tiny.onnx: --precision bf16 .* OpenVINO, which is not installed"):
        ct.load_model(tiny_onnx, precision="bf16")


def test_a_discriminators_file_given_as_a_generator_says_so(tmp_path):
    """The reference saves latest_net_D_A.pth beside latest_net_G_A.pth: the wrong pick is one line."""
    from cyclegan_tool.models import DiscriminatorSpec, build_discriminator

    torch.save(build_discriminator(DiscriminatorSpec()).state_dict(), tmp_path / "latest_net_D_A.pth")
    (tmp_path / "in").mkdir()
    save(tmp_path / "in" / "a.png", rgb(16, 16))
    res = run_cli("convert", "--checkpoint", tmp_path / "latest_net_D_A.pth", tmp_path / "in", tmp_path / "out")
    one_line_error(res, "latest_net_D_A.pth: a discriminator's weights (basic, reference layout), not a generator's")
    torch.save({}, tmp_path / "latest_net_G_A.pth")  # beside it: named in the hint
    res = run_cli("export", tmp_path / "latest_net_D_A.pth", "-o", tmp_path / "d.onnx")
    one_line_error(res, "latest_net_D_A.pth: a discriminator's", "(latest_net_G_A.pth is beside it)")
    res = run_cli("export", tmp_path / "latest_net_D_A.pth", "--ngf", "32", "-o", tmp_path / "d.onnx")
    one_line_error(res, "latest_net_D_A.pth: a discriminator's")
