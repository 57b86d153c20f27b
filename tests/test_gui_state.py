"""The GUI's Qt-free state and logic."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.gui.state import GuiState, describe, run
from cyclegan_tool.runtime import Summary


def test_add_paths_takes_images_and_folders_once(tmp_path):
    (tmp_path / "f").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("x")
    s = GuiState()
    assert s.add_paths([tmp_path / "a.png", tmp_path / "f", tmp_path / "notes.txt", tmp_path / "missing.png"]) == 2
    assert s.add_paths([tmp_path / "a.png"]) == 0 and len(s.inputs) == 2


def test_options_from_size_policy():
    s = GuiState(size_policy="max side", size_value=300, tile=True, tile_size=256, format="jpg")
    o = s.options()
    assert o.max_side == 300 and o.size is None and o.tile == 256 and o.format == "jpg"
    assert GuiState(size_policy="shorter side", size_value=200).options().size == 200
    assert GuiState().options().size is None


def test_settings_round_trip_and_bad_values():
    s = GuiState(model="m.onnx", output="/out", format="webp", quality=80, suffix="_z", size_policy="max side",
                 size_value=640, tile=True, tile_size=256, skip_existing=True, backend="onnxruntime")
    back = GuiState().with_settings(s.to_settings())
    assert back.to_settings() == s.to_settings()
    # QSettings hands back strings; junk is ignored rather than crashing the window
    loaded = GuiState().with_settings({"quality": "70", "tile": "true", "size_value": "oops", "other": 1})
    assert loaded.quality == 70 and loaded.tile is True and loaded.size_value == 512


def test_jobs_need_inputs_model_and_output(tmp_path):
    with pytest.raises(ConfigError, match="add images"):
        GuiState().jobs()
    s = GuiState()
    s.add_paths([tmp_path])
    with pytest.raises(ConfigError, match="choose a model"):
        s.jobs()
    s.model = "m.onnx"
    with pytest.raises(ConfigError, match="output folder"):
        s.jobs()


def test_run_converts_folder_into_named_subfolder(tmp_path, tiny_onnx):
    from conftest import write_domain

    write_domain(tmp_path / "horses", 3, (16, 20), (1, 0, 0), seed=0)
    s = GuiState(model=str(tiny_onnx), output=str(tmp_path / "out"))
    s.add_paths([tmp_path / "horses", tmp_path / "horses" / "img_000.png"])
    events = list(run(s, threading.Event()))
    assert isinstance(events[-1], Summary) and events[-1].converted == 4
    assert (tmp_path / "out" / "horses" / "img_002.png").is_file() and (tmp_path / "out" / "img_000.png").is_file()


def test_describe_model(tiny_onnx, tiny_generator):
    what, how = describe(str(tiny_onnx))
    assert "resnet_6blocks ngf=8" in what and "fp32" in what and "tiny.onnx: ONNX model on cpu" in how
    assert "plain state_dict" in describe(str(tiny_generator))[0]
