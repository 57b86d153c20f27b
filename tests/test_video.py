"""Video in, video out: real clips made here with PyAV (frames and sound), through `convert`."""

from __future__ import annotations

import importlib.util
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_domain
from PIL import Image

import cyclegan_tool as ct
from cyclegan_tool.cli import cli

av = pytest.importorskip("av", reason="PyAV is not installed (pip install av)")


def make_clip(path: Path, n: int = 20, size=(64, 48), fps: int = 25, audio: bool = True, rotation: int = 0,
              pts: list[int] | None = None, codec: str = "libx264", pix_fmt: str = "yuv420p") -> Path:
    """A clip of moving blocks (and a 440 Hz tone): `pts` in milliseconds makes it variable-rate."""
    w, h = size
    out = av.open(str(path), "w")
    v = out.add_stream(codec, rate=fps if pts is None else 1000)
    v.width, v.height, v.pix_fmt = w, h, pix_fmt
    if pts is not None:
        v.time_base = Fraction(1, 1000)
    if rotation:
        v.set_display_rotation(rotation)
    a = out.add_stream("aac", rate=16000) if audio else None
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = (60 + 5 * i) % 256
        img[h // 4 : h // 2, i % w : i % w + w // 3] = (220, 200, 40)
        if codec == "mjpeg":  # detail, so that every frame is a large JPEG
            img = (np.random.default_rng(i).random((h, w, 3)) * 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        if pts is not None:
            frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
        for p in v.encode(frame):
            out.mux(p)
    for p in v.encode():
        out.mux(p)
    if a is not None:
        seconds = n / fps if pts is None else pts[-1] / 1000
        t = np.arange(int(16000 * seconds)) / 16000
        af = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp",
                                        layout="mono")
        af.sample_rate = 16000
        for p in a.encode(af):
            out.mux(p)
        for p in a.encode():
            out.mux(p)
    out.close()
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(video=0))
        return {"frames": len(frames), "rate": v.average_rate, "duration": c.duration / 1e6 if c.duration else 0,
                "streams": sorted(s.type for s in c.streams), "times": [round(float(f.time), 3) for f in frames],
                "rotation": frames[0].rotation, "size": (frames[0].width, frames[0].height)}


def test_a_clip_keeps_its_frames_rate_duration_and_sound(tiny_onnx, tmp_path):
    src = make_clip(tmp_path / "clip.mp4")
    res = CliRunner().invoke(cli, ["convert", "--onnx", str(tiny_onnx), str(src), str(tmp_path / "zebra.mp4")])
    assert res.exit_code == 0, res.output
    assert "1 converted (1 clip(s), 20 frames)" in res.output and "flicker" in res.output
    a, b = probe(src), probe(tmp_path / "zebra.mp4")
    assert b["frames"] == a["frames"] == 20 and b["rate"] == a["rate"]
    assert abs(b["duration"] - a["duration"]) < 0.05 and b["streams"] == a["streams"] == ["audio", "video"]
    with av.open(str(src)) as c, av.open(str(tmp_path / "zebra.mp4")) as d:  # the sound is copied, not re-encoded
        pa = [bytes(p) for p in c.demux(audio=0) if p.size]
        pb = [bytes(p) for p in d.demux(audio=0) if p.size]
    assert pa == pb


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO is not installed")
def test_a_clip_is_checked_on_its_first_frame_and_runs_the_way_its_frames_would(tiny_onnx, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = make_clip(tmp_path / "clip.mp4", n=4, size=(64, 48), audio=False)
    frames = tmp_path / "frames"
    frames.mkdir()
    with av.open(str(src)) as c:
        Image.fromarray(next(iter(c.decode(video=0))).to_ndarray(format="rgb24")).save(frames / "f0.png")
    said: list[str] = []
    ct.convert(src, tmp_path / "out.mp4", model=tiny_onnx, on_start=said.append)
    ct.convert(frames, tmp_path / "out", model=tiny_onnx, on_start=said.append)
    assert "not checked" not in said[0]
    assert said[0].split(" -> ")[1].split(",")[0] == said[1].split(" -> ")[1].split(",")[0]


def test_variable_frame_rate_rotation_and_odd_sizes_are_kept(tiny_onnx, tmp_path):
    ms = [0, 40, 80, 200, 240, 500, 520]
    src = make_clip(tmp_path / "vfr.mp4", n=len(ms), pts=ms, audio=False, rotation=90, size=(63, 47),
                    pix_fmt="yuv444p")
    summary = ct.convert(src, tmp_path / "out.mp4", model=tiny_onnx, backend="onnxruntime")
    assert summary.converted == 1 and summary.frames == len(ms)
    a, b = probe(src), probe(tmp_path / "out.mp4")
    assert b["times"] == a["times"] == [t / 1000 for t in ms]
    assert b["rotation"] == a["rotation"] == 90 and b["size"] == a["size"] == (63, 47)
    assert any("encoded 4:4:4" in n for n in summary.notes)


def test_a_cut_clip_fails_by_name_and_the_folder_goes_on(tiny_onnx, tmp_path):
    src = make_clip(tmp_path / "in" / "whole.mp4") if (tmp_path / "in").mkdir() is None else None
    data = src.read_bytes()
    (tmp_path / "in" / "cut.mp4").write_bytes(data[: len(data) // 2])  # no index at the end: cannot open
    write_domain(tmp_path / "in", 2, (40, 40), (0.6, 0.4, 0.3), seed=2)  # images beside the clips
    summary = ct.convert(tmp_path / "in", tmp_path / "out", model=tiny_onnx, backend="onnxruntime")
    assert summary.converted == 3 and summary.clips == 1 and len(summary.failed) == 1
    path, msg = summary.failed[0]
    assert path.name == "cut.mp4" and "cut.mp4: cannot open the clip" in msg
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img_000.png", "img_001.png", "whole.mp4"]


def test_a_corrupt_frame_is_skipped_and_reported_with_its_time(tiny_onnx, tmp_path):
    src = make_clip(tmp_path / "mj.avi", n=10, codec="mjpeg", pix_fmt="yuvj420p", audio=False)
    data = bytearray(src.read_bytes())
    soi = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    for j in range(soi[4], soi[4] + (soi[5] - soi[4]) // 2):
        data[j] = 0x11
    src.write_bytes(bytes(data))
    summary = ct.convert(src, tmp_path / "out", model=tiny_onnx, backend="onnxruntime")
    assert summary.converted == 1 and summary.frames == 9
    assert any("1 frame(s) could not be decoded" in n and "0.16 s" in n for n in summary.notes)
    assert probe(tmp_path / "out" / "mj.mp4")["frames"] == 9


def test_a_cancelled_run_leaves_nothing_under_the_final_name_and_skip_existing_resumes(tiny_onnx, tmp_path):
    import threading

    src = make_clip(tmp_path / "in" / "a.mp4", n=40) if (tmp_path / "in").mkdir() is None else None
    make_clip(tmp_path / "in" / "b.mp4", n=10)
    cancel = threading.Event()
    events = []
    for ev in ct.convert_events(tmp_path / "in", tmp_path / "out", model=tiny_onnx, backend="onnxruntime",
                                cancel=cancel):
        events.append(ev)
        if type(ev).__name__ == "FrameProgress" and ev.frames >= 5:
            cancel.set()
    assert events[-1].cancelled and not (tmp_path / "out" / "a.mp4").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary left
    summary = ct.convert(tmp_path / "in", tmp_path / "out", model=tiny_onnx, backend="onnxruntime")
    assert summary.converted == 2
    again = ct.convert(tmp_path / "in", tmp_path / "out", model=tiny_onnx, backend="onnxruntime", skip_existing=True)
    assert again.skipped == 2 and again.converted == 0
    assert src.is_file()


def test_a_long_clip_takes_bounded_memory(tiny_onnx, tmp_path):
    src = make_clip(tmp_path / "long.mp4", n=2400, size=(32, 32), audio=False)
    tracemalloc.start()
    summary = ct.convert(src, tmp_path / "out.mp4", model=tiny_onnx, backend="onnxruntime")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert summary.frames == 2400
    assert peak < 40 << 20  # 2,400 frames decoded would hold 7 MB as uint8, 30 MB as float: they stream


def test_animations_stay_animated_unless_first_frame(tiny_onnx, tmp_path):
    frames = [Image.fromarray(np.full((32, 40, 3), 40 * i, np.uint8)) for i in range(4)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=[50, 80, 120, 60],
                   loop=0)
    ct.convert(tmp_path / "anim.gif", tmp_path / "out", model=tiny_onnx, backend="onnxruntime")
    with Image.open(tmp_path / "out" / "anim.gif") as im:
        assert im.n_frames == 4 and im.info.get("loop") == 0
    ct.convert(tmp_path / "anim.gif", tmp_path / "first", model=tiny_onnx, backend="onnxruntime", frames="first")
    with Image.open(tmp_path / "first" / "anim.png") as im:
        assert getattr(im, "n_frames", 1) == 1


def test_temporal_blend_lowers_the_flicker(tiny_onnx, tmp_path):
    src = make_clip(tmp_path / "c.mp4", n=15, audio=False)
    plain = ct.convert(src, tmp_path / "plain.mp4", model=tiny_onnx, backend="onnxruntime")
    blended = ct.convert(src, tmp_path / "blend.mp4", model=tiny_onnx, backend="onnxruntime", temporal_blend=0.6)

    def flicker(summary) -> float:
        note = next(n for n in summary.notes if "flicker" in n)
        return float(note.split("flicker ")[1].split(" ")[0])

    assert flicker(blended) < flicker(plain)


def test_the_gui_takes_a_dropped_clip(tmp_path):
    from cyclegan_tool.gui.state import GuiState

    src = make_clip(tmp_path / "drop.mp4", n=3)
    state = GuiState()
    state.add_paths([src, tmp_path / "notes.txt"])
    assert state.inputs == [src]
