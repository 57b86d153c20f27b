"""`convert` on generated trees: formats, modes, bad files, resume, tiling, safety, shards."""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cyclegan_tool.cli import cli
from cyclegan_tool.errors import ConfigError
from cyclegan_tool.export import parity
from cyclegan_tool.runtime import ConvertOptions, Summary, plan_jobs, run_convert
from conftest import make_backend


def make_tree(root: Path) -> dict[str, tuple[int, int]]:
    """Good files (name -> (W, H)) plus a corrupt JPEG and a text file named .png."""
    rng = np.random.default_rng(0)
    (root / "sub dir" / "ünïcödé").mkdir(parents=True)
    good = {}

    def save(rel, arr, mode=None):
        Image.fromarray(arr, mode).save(root / rel) if mode else Image.fromarray(arr).save(root / rel)
        good[rel] = (arr.shape[1], arr.shape[0])

    save("photo.jpg", (rng.random((45, 67, 3)) * 255).astype(np.uint8))
    save("sub dir/gray.png", (rng.random((33, 47)) * 255).astype(np.uint8))
    save("sub dir/ünïcödé/with alpha.png", (rng.random((40, 36, 4)) * 255).astype(np.uint8), "RGBA")
    save("deep 16bit.png", (rng.random((30, 26)) * 65535).astype(np.uint16))
    save("sub dir/tiny.webp", (rng.random((9, 13, 3)) * 255).astype(np.uint8))
    Image.fromarray((rng.random((20, 20, 3)) * 255).astype(np.uint8)).convert("P").save(root / "palette.png")
    good["palette.png"] = (20, 20)
    data = (root / "photo.jpg").read_bytes()
    (root / "sub dir" / "corrupt.jpg").write_bytes(data[: len(data) // 2])
    (root / "notes.png").write_text("this is text, not a picture")
    (root / "README.txt").write_text("ignored: not an image name")
    return good


def convert_cli(*args):
    return CliRunner().invoke(cli, ["convert", *map(str, args)])


def test_convert_tree(tmp_path, tiny_onnx):
    src, out = tmp_path / "in", tmp_path / "out"
    good = make_tree(src)
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    res = convert_cli("--onnx", tiny_onnx, src, out)
    assert res.exit_code == 1, res.output
    assert "corrupt.jpg" in res.output and "notes.png" in res.output
    assert "5 converted" not in res.output and "6 converted, 0 skipped, 2 failed of 8" in res.output
    for rel, size in good.items():
        img = Image.open(out / rel)
        assert img.size == size, rel
        assert img.mode == ("RGBA" if "alpha" in rel else "RGB"), rel
    alpha_in = np.asarray(Image.open(src / "sub dir/ünïcödé/with alpha.png"))[..., 3]
    assert np.array_equal(np.asarray(Image.open(out / "sub dir/ünïcödé/with alpha.png"))[..., 3], alpha_in)
    assert not (out / "sub dir" / "corrupt.jpg").exists() and not (out / "README.txt").exists()
    assert not list(out.rglob(".*.tmp"))
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # inputs untouched


def test_output_matches_backend_on_odd_size(tmp_path, tiny_onnx, tiny_generator):
    """The written file is the network output at the native size (padded, cropped back)."""
    rng = np.random.default_rng(1)
    arr = (rng.random((37, 53, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "odd.png")
    assert convert_cli("--checkpoint", tiny_generator, tmp_path / "odd.png", tmp_path / "o").exit_code == 0
    assert convert_cli("--onnx", tiny_onnx, tmp_path / "odd.png", tmp_path / "p").exit_code == 0
    a = np.asarray(Image.open(tmp_path / "o" / "odd.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "p" / "odd.png")).astype(int)
    assert a.shape == (37, 53, 3) and np.abs(a - b).max() <= 1


def test_skip_existing_resumes_a_cancelled_run(tmp_path, tiny_onnx):
    src = tmp_path / "in"
    from conftest import write_domain

    write_domain(src, 8, (24, 28), (0.5, 0.5, 0.5), seed=3)
    opts = ConvertOptions(batch_size=1, decode_workers=1, write_workers=1).validate()
    jobs = plan_jobs(src, tmp_path / "out", opts)
    backend, _ = make_backend(tiny_onnx)
    cancel = threading.Event()
    with backend:
        events = []
        for ev in run_convert(jobs, backend, opts, cancel):
            events.append(ev)
            if not isinstance(ev, Summary) and ev.done == 3:
                cancel.set()
    summary = events[-1]
    assert summary.cancelled and 3 <= summary.converted <= 5  # at most 2 writes were in flight
    assert [e.done for e in events[:-1]] == list(range(1, len(events)))  # progress in order
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) == summary.converted and not list((tmp_path / "out").glob(".*"))
    mtimes = {p: p.stat().st_mtime_ns for p in written}
    res = convert_cli("--onnx", tiny_onnx, src, tmp_path / "out", "--skip-existing")
    assert res.exit_code == 0 and f"{8 - summary.converted} converted, {summary.converted} skipped" in res.output
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    assert len(list((tmp_path / "out").glob("*.png"))) == 8


def test_tiled_output_matches_untiled(tmp_path, tiny_onnx):
    from conftest import smooth_image

    Image.fromarray(smooth_image(np.random.default_rng(5), 96, 128, (0.3, 0.6, 0.2))).save(tmp_path / "big.png")
    assert convert_cli("--onnx", tiny_onnx, tmp_path / "big.png", tmp_path / "whole").exit_code == 0
    res = convert_cli("--onnx", tiny_onnx, tmp_path / "big.png", tmp_path / "tiled", "--tile", "96",
                      "--tile-overlap", "32")
    assert res.exit_code == 0, res.output
    whole = np.asarray(Image.open(tmp_path / "whole" / "big.png")).astype(np.float32) / 127.5 - 1
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "big.png")).astype(np.float32) / 127.5 - 1
    assert tiled.shape == whole.shape
    # Instance norm sees per-tile statistics, so tiles differ from the whole image; this
    # random, high-gain test network exaggerates that (a gain-0.02 network gives ~32 dB).
    assert parity.psnr(tiled, whole) > 20
    assert parity.psnr(tiled, whole) > parity.psnr(tiled, np.flip(whole, 0)) + 10


def test_tile_blending_is_exact_for_a_pointwise_model():
    from cyclegan_tool.runtime.tiling import tile_boxes, translate_tiled

    x = np.random.default_rng(0).random((1, 3, 100, 132), np.float32) * 2 - 1
    y = translate_tiled(x, lambda t: np.tanh(2 * t), 48, 16, 3)
    assert np.allclose(y, np.tanh(2 * x), atol=1e-6)
    boxes = tile_boxes(100, 132, 48, 16)
    covered = np.zeros((100, 132))
    for by, bx, th, tw in boxes:
        covered[by : by + th, bx : bx + tw] = 1
    assert covered.all() and all(th == 48 and tw == 48 for _, _, th, tw in boxes)


def test_resize_options_and_formats(tmp_path, tiny_onnx):
    Image.fromarray(np.zeros((40, 80, 3), np.uint8) + 90).save(tmp_path / "wide.png")
    res = convert_cli("--onnx", tiny_onnx, tmp_path / "wide.png", tmp_path / "o", "--max-side", "32",
                      "--format", "jpg", "--suffix", "_zebra", "--quality", "80")
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "o" / "wide_zebra.jpg").size == (32, 16)
    res = convert_cli("--onnx", tiny_onnx, tmp_path / "wide.png", tmp_path / "o", "--size", "20", "--format", "webp")
    assert Image.open(tmp_path / "o" / "wide.webp").size == (40, 20)


def test_out_inside_in_refuses_collisions_and_allows_suffix(tmp_path, tiny_onnx):
    from conftest import write_domain

    write_domain(tmp_path, 2, (16, 16), (1, 1, 1), seed=0)
    res = convert_cli("--onnx", tiny_onnx, tmp_path, tmp_path)
    assert res.exit_code == 1 and "would overwrite its input" in res.output
    res = convert_cli("--onnx", tiny_onnx, tmp_path, tmp_path, "--suffix", "_z")
    assert res.exit_code == 0 and (tmp_path / "img_000_z.png").is_file()
    before = (tmp_path / "img_000_z.png").read_bytes()
    again = convert_cli("--onnx", tiny_onnx, tmp_path, tmp_path, "--suffix", "_z")  # img_000_z.png is an input now
    assert again.exit_code == 1 and "is an input image and would be overwritten" in again.output
    assert (tmp_path / "img_000_z.png").read_bytes() == before
    again = convert_cli("--onnx", tiny_onnx, tmp_path, tmp_path, "--suffix", "_z", "--skip-existing")
    assert "2 skipped" in again.output and not (tmp_path / "img_000_z_z.png").exists()
    res = convert_cli("--onnx", tiny_onnx, tmp_path, tmp_path / "out")  # OUT inside IN: fine
    assert res.exit_code == 0 and not (tmp_path / "out" / "out").exists()


def test_two_inputs_one_output_refused(tmp_path, tiny_onnx):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.jpg")
    with pytest.raises(ConfigError, match="would both write"):
        plan_jobs(tmp_path, tmp_path / "o", ConvertOptions(format="png"))


def _png_header_only(path: Path, w: int, h: int) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused(tmp_path, tiny_onnx):
    _png_header_only(tmp_path / "bomb.png", 40000, 40000)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "ok.png")
    res = convert_cli("--onnx", tiny_onnx, tmp_path, tmp_path / "o")
    assert res.exit_code == 1 and "bomb.png: refused as a decompression bomb" in res.output
    assert (tmp_path / "o" / "ok.png").is_file()


def test_shards_are_disjoint_and_complete(tmp_path, tiny_onnx):
    from conftest import write_domain

    write_domain(tmp_path / "in", 5, (16, 16), (1, 0, 1), seed=0)
    for k in range(2):
        assert convert_cli("--onnx", tiny_onnx, tmp_path / "in", tmp_path / f"o{k}", "--shard", f"{k}/2").exit_code == 0
    a = {p.name for p in (tmp_path / "o0").iterdir()}
    b = {p.name for p in (tmp_path / "o1").iterdir()}
    assert len(a) == 3 and len(b) == 2 and not a & b


def test_backend_choice_errors(tmp_path, tiny_onnx, tiny_generator):
    with pytest.raises(ConfigError, match="tiny.onnx: --backend pytorch cannot run an ONNX model"):
        make_backend(tiny_onnx, backend="pytorch")
    with pytest.raises(ConfigError, match="unknown model type"):
        make_backend(tmp_path / "m.bin")
    from cyclegan_tool.devices import nvidia_gpu_present

    if not nvidia_gpu_present():  # one owner of devices: refused when the plan is made
        for model in (tiny_onnx, tiny_generator):
            with pytest.raises(ConfigError, match="--device cuda: this machine has no NVIDIA GPU"):
                make_backend(model, device="cuda")


def test_auto_backend_says_what_it_chose(tmp_path, tiny_onnx):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    res = convert_cli("--onnx", tiny_onnx, tmp_path / "a.png", tmp_path / "o")
    # a flat image is no sample to check on: the exact way runs, and the line says why
    assert "tiny.onnx: ONNX model on cpu -> onnxruntime-fp32 (not checked: no image" in res.output
    assert "CPUExecutionProvider" in res.output


def test_engine_without_gpu_is_a_clear_error(tmp_path, tiny_onnx):
    pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX is not installed")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; see test_engine_runs_on_gpu")
    plan = tmp_path / "e.plan"
    build = CliRunner().invoke(cli, ["export", str(tiny_onnx.parent / "latest_net_G_A.pth"), "--engine", str(plan),
                                     "--trt", "rtx", "--min-shape", "1x3x32x32", "--opt-shape", "1x3x64x64",
                                     "--max-shape", "1x3x128x128", "--no-check"])
    assert build.exit_code == 0, build.output
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    res = convert_cli("--engine", plan, tmp_path / "a.png", tmp_path / "o")
    assert res.exit_code == 1 and "e.plan: a TensorRT engine needs an NVIDIA GPU" in res.output


@pytest.mark.cuda
@pytest.mark.tensorrt
@pytest.mark.skipif(not torch.cuda.is_available(), reason="running an engine needs an NVIDIA GPU and CUDA torch")
def test_engine_runs_on_gpu(tmp_path, tiny_generator):
    pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX is not installed")
    plan = tmp_path / "e.plan"
    CliRunner().invoke(cli, ["export", str(tiny_generator), "--engine", str(plan), "--fp16", "--trt", "rtx",
                             "--min-shape", "1x3x32x32", "--opt-shape", "2x3x64x64", "--max-shape", "4x3x128x128"])
    backend, _ = make_backend(plan)
    ref, _ = make_backend(tiny_generator, device="cuda", precision="fp32")
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    with backend, ref:
        y, r = backend.infer(x).cpu().numpy(), ref.infer(x).cpu().numpy()
    assert parity.psnr(y, r) > 40


def test_exif_orientation_is_honoured(tmp_path, tiny_onnx):
    img = Image.fromarray(np.zeros((20, 40, 3), np.uint8) + 100)  # stored 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    img.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert convert_cli("--onnx", tiny_onnx, tmp_path / "phone.jpg", tmp_path / "o").exit_code == 0
    assert Image.open(tmp_path / "o" / "phone.jpg").size == (20, 40)  # upright, as a viewer shows it


def test_bench_command(tiny_onnx):
    res = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--size", "30x42", "--batch", "2", "--iters", "2",
                                   "--warmup", "1"])
    assert res.exit_code == 0, res.output
    assert "32x44 batch 2:" in res.output and "images/s" in res.output


def test_bench_ways_times_what_auto_may_take_in_its_order(tiny_onnx):
    from cyclegan_tool.runtime.facts import gather
    from cyclegan_tool.runtime.plan import Request, make_plan

    res = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--ways", "--size", "32", "--iters", "1", "--warmup", "0"])
    assert res.exit_code == 0, res.output
    timed = [line.split(":")[0].strip() for line in res.output.splitlines() if line.startswith("  ")]
    assert timed == [o.key for o in make_plan(Request(kind="onnx"), gather("onnx")).candidates]
    refused = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--ways", "--backend", "onnxruntime"])
    assert refused.exit_code == 1 and "--ways times the ways of --backend auto" in refused.output


def test_keep_size_resizes_outputs_back(tmp_path, tiny_onnx):
    rgba = np.zeros((60, 90, 4), np.uint8) + 120
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    res = convert_cli("--onnx", tiny_onnx, tmp_path / "a.png", tmp_path / "o", "--size", "30", "--keep-size")
    assert res.exit_code == 0, res.output
    out = Image.open(tmp_path / "o" / "a.png")
    assert out.size == (90, 60) and out.mode == "RGBA"


def test_devices_fan_out_to_processes_and_merge(tmp_path, tiny_onnx):
    """`devices` runs one process per device on disjoint shares (here two CPU processes)."""
    import cyclegan_tool as ct
    from conftest import write_domain

    write_domain(tmp_path / "in", 7, (20, 24), (0.4, 0.6, 0.2), seed=8)
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    events = list(ct.convert_events(tmp_path / "in", tmp_path / "out", model=tiny_onnx, devices="cpu,cpu"))
    summary = events[-1]
    assert summary.total == 8 and summary.converted == 7 and len(summary.failed) == 1
    assert "2 processes" in summary.backend
    assert [e.done for e in events[:-1]] == list(range(1, 9)) and events[-2].total == 8
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"img_{i:03d}.png" for i in range(7)]
    with pytest.raises(Exception, match="no GPU 7"):
        ct.convert(tmp_path / "in", tmp_path / "o2", model=tiny_onnx, devices="7")


def test_a_training_runs_folder_stands_for_its_latest_generator(tmp_path, tiny_generator):
    """`--checkpoint checkpoints/NAME` as the reference's test.py takes `--name NAME`: the latest
    generator for the direction, named on the start line; a folder without one is one line."""
    import shutil

    import cyclegan_tool as ct
    from conftest import write_domain

    run = tmp_path / "checkpoints" / "h2z"
    run.mkdir(parents=True)
    state = torch.load(tiny_generator, weights_only=True)
    torch.save(state, run / "latest_net_G_A.pth")
    torch.save({k: -v if v.is_floating_point() else v for k, v in state.items()}, run / "latest_net_G_B.pth")
    torch.save(state, run / "5_net_G_A.pth")
    write_domain(tmp_path / "in", 2, (24, 20), (0.7, 0.4, 0.2), seed=3)
    said = {}
    for direction in ("a2b", "b2a"):
        ct.convert(tmp_path / "in", tmp_path / direction, model=run, direction=direction, format="png",
                   on_start=lambda line, d=direction: said.setdefault(d, line))
        own = tmp_path / f"{direction}_file"
        ct.convert(tmp_path / "in", own, model=run / f"latest_net_G_{direction[0].upper()}.pth", format="png")
        for p in own.glob("*.png"):
            assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(tmp_path / direction / p.name)))
    assert said["a2b"].startswith("latest_net_G_A.pth:") and said["b2a"].startswith("latest_net_G_B.pth:")
    assert ct.describe_model(run)["artifact"]["file"].endswith("latest_net_G_A.pth")
    shutil.copy(run / "latest_net_G_A.pth", tmp_path / "pretrained_latest_net_G.pth")
    single = tmp_path / "horse2zebra_pretrained"  # how the published models are downloaded
    single.mkdir()
    (tmp_path / "pretrained_latest_net_G.pth").rename(single / "latest_net_G.pth")
    res = CliRunner().invoke(cli, ["convert", "--checkpoint", str(single), str(tmp_path / "in"), str(tmp_path / "o")])
    assert res.exit_code == 0 and "latest_net_G.pth: PyTorch weights" in res.output, res.output
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(cli, ["convert", "--checkpoint", str(tmp_path / "empty"), str(tmp_path / "in"),
                                   str(tmp_path / "o2")])
    assert res.exit_code == 1 and "empty: a folder without a generator checkpoint (looked for latest.pt" in res.output
