"""The window with real Qt on the offscreen platform (pytest-qt)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6", reason="PySide6 is not installed")
pytestmark = pytest.mark.gui

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402

from cyclegan_tool.gui.window import MainWindow  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings)
    qtbot.addWidget(w)
    return w


def drop(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def make_folder(root, n=6, corrupt=True):
    from conftest import write_domain

    write_domain(root, n, (24, 28), (0.3, 0.8, 0.3), seed=4)
    if corrupt:
        (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def test_dropping_files_and_folders_fills_the_job(window, tmp_path):
    folder = make_folder(tmp_path / "pics", 2, corrupt=False)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "single.png")
    drop(window.drop, [folder, tmp_path / "single.png", tmp_path / "ignored.txt"])
    assert [p.name for p in window.state.inputs] == ["pics", "single.png"]
    assert window.drop.count() == 2 and "2 item(s)" in window.drop_hint.text()


def test_run_converts_reports_and_finishes(window, qtbot, tmp_path, tiny_onnx):
    src = make_folder(tmp_path / "in")
    drop(window.drop, [src])
    window.set_model(str(tiny_onnx))
    assert window.model_info.text() == "reading the model ..."  # on a worker thread: the window goes on
    qtbot.waitUntil(lambda: window.described, timeout=30_000)
    assert "resnet_6blocks" in window.model_info.text() and "onnxruntime" in window.backend_info.text()
    window.output_edit.setText(str(tmp_path / "out"))
    seen = []
    original = window.on_progress
    window.on_progress = lambda ev: (seen.append(ev.done), original(ev))
    window.start_run()
    qtbot.waitUntil(lambda: window.summary is not None, timeout=60_000)
    s = window.summary
    assert s.converted == 6 and len(s.failed) == 1
    assert seen == sorted(seen) and window.progress.value() == 7
    assert window.failures.count() == 1 and "broken.png" in window.failures.item(0).text()
    assert len(list((tmp_path / "out" / "in").glob("img_*.png"))) == 6
    assert window.open_button.isEnabled() and window.start_button.isEnabled()
    assert window.after.pixmap() is not None and not window.after.pixmap().isNull()
    # The start line the CLI prints (which backend ran the model, and why) is shown during the run.
    assert window.backend_info.text().startswith("tiny.onnx: ONNX model on cpu -> ")
    assert "model resnet_6blocks" in window.backend_info.text()


def test_cancel_mid_run_leaves_no_partial_files(window, qtbot, tmp_path, tiny_onnx):
    src = make_folder(tmp_path / "in", 30, corrupt=False)
    drop(window.drop, [src])
    window.set_model(str(tiny_onnx))
    window.output_edit.setText(str(tmp_path / "out"))
    original = window.on_progress
    window.on_progress = lambda ev: (original(ev), window.cancel_run() if ev.done == 2 else None)
    window.start_run()
    qtbot.waitUntil(lambda: window.summary is not None, timeout=60_000)
    assert window.summary.cancelled and window.summary.converted < 30
    out = tmp_path / "out" / "in"
    written = list(out.glob("*.png"))
    assert len(written) == window.summary.converted
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    for p in written:
        Image.open(p).load()  # every output is complete


def test_settings_persist_between_sessions(qtbot, tmp_path, tiny_onnx):
    ini = str(tmp_path / "settings.ini")
    w = MainWindow(QSettings(ini, QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.set_model(str(tiny_onnx))
    w.output_edit.setText(str(tmp_path / "o"))
    w.format_combo.setCurrentText("webp")
    w.quality_spin.setValue(77)
    w.tile_check.setChecked(True)
    w.size_combo.setCurrentText("max side")
    w.close()
    w2 = MainWindow(QSettings(ini, QSettings.Format.IniFormat))
    qtbot.addWidget(w2)
    qtbot.waitUntil(lambda: w2.described, timeout=30_000)
    assert w2.model_edit.text() == str(tiny_onnx) and w2.output_edit.text() == str(tmp_path / "o")
    assert w2.format_combo.currentText() == "webp" and w2.quality_spin.value() == 77
    assert w2.tile_check.isChecked() and w2.size_combo.currentText() == "max side"
    assert "resnet_6blocks" in w2.model_info.text()


def test_invalid_model_shows_error_dialog(window, qtbot, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    window.set_model(str(bad))
    qtbot.waitUntil(lambda: window.described, timeout=30_000)
    assert window.last_error is not None and window.last_error.isVisible()
    assert "broken.onnx" in window.last_error.text()
    assert window.last_error.detailedText()


def test_start_without_inputs_shows_error(window):
    window.start_run()
    assert window.last_error is not None and "add images" in window.last_error.text()
    assert window.worker is None


def test_shipped_model_gives_the_cli_output_byte_for_byte(window, qtbot, tmp_path):
    """The window offers the shipped models, keeps their training scale, and writes what the CLI writes."""
    from click.testing import CliRunner

    from cyclegan_tool.cli import cli

    src = make_folder(tmp_path / "in", 2, corrupt=False)
    Image.fromarray((np.random.default_rng(1).random((150, 100, 3)) * 255).astype(np.uint8)).save(src / "big.png")
    names = [window.shipped_combo.itemText(i) for i in range(window.shipped_combo.count())]
    assert "horse2zebra" in names and "zebra2horse" in names
    window.shipped_combo.setCurrentIndex(names.index("horse2zebra"))
    window.shipped_combo.activated.emit(names.index("horse2zebra"))
    qtbot.waitUntil(lambda: window.described, timeout=30_000)
    assert window.model_edit.text() == "horse2zebra" and "shipped model horse2zebra" in window.model_info.text()
    from cyclegan_tool.zoo import catalogue

    # a shipped model trained at another scale says so; this release's runs at native size
    assert ("training scale" in window.backend_info.text()) == bool(catalogue()["horse2zebra"].get("size"))
    drop(window.drop, [src])
    window.output_edit.setText(str(tmp_path / "gui"))
    window.start_run()
    qtbot.waitUntil(lambda: window.summary is not None, timeout=60_000)
    assert window.summary.converted == 3 and not window.summary.failed
    res = CliRunner().invoke(cli, ["convert", "--model", "horse2zebra", str(src), str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    gui_files = sorted(p.relative_to(tmp_path / "gui" / "in") for p in (tmp_path / "gui" / "in").rglob("*.png"))
    assert gui_files == sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*.png"))
    for rel in gui_files:
        assert (tmp_path / "gui" / "in" / rel).read_bytes() == (tmp_path / "cli" / rel).read_bytes(), rel


def test_gui_without_a_display_says_why(monkeypatch):
    from cyclegan_tool.gui import why_no_gui

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "no display" in why_no_gui()
    monkeypatch.setenv("DISPLAY", ":97")  # no X server there: Qt would abort the process
    msg = why_no_gui()
    assert msg and msg.startswith("the GUI cannot start: Qt could not open")


def test_gray_to_color_model_runs_and_writes_color(window, qtbot, tmp_path):
    from cyclegan_tool.checkpoints import LoadedGenerator
    from cyclegan_tool.export.onnx_export import export_onnx
    from cyclegan_tool.models import GeneratorSpec, build_generator

    spec = GeneratorSpec(name="keras_unet_k3", input_nc=1, output_nc=3, ngf=4, norm="instance_affine")
    loaded = LoadedGenerator(net=build_generator(spec).eval(), spec=spec, direction="a2b", source=tmp_path / "g.pt",
                             source_sha256="0" * 64, origin="cyclegan-tool")
    export_onnx(loaded, tmp_path / "gray2color.onnx")
    (tmp_path / "in").mkdir()
    for i in range(2):
        Image.fromarray(np.full((20, 28), 60 * i + 40, np.uint8)).save(tmp_path / "in" / f"g{i}.png")
    drop(window.drop, [tmp_path / "in"])
    window.set_model(str(tmp_path / "gray2color.onnx"))
    qtbot.waitUntil(lambda: window.described, timeout=30_000)
    assert "gray -> RGB" in window.model_info.text()
    window.output_edit.setText(str(tmp_path / "out"))
    window.start_run()
    qtbot.waitUntil(lambda: window.summary is not None, timeout=60_000)
    assert window.summary.converted == 2 and not window.summary.failed
    outs = sorted((tmp_path / "out").rglob("g*.png"))
    assert len(outs) == 2 and all(Image.open(p).mode == "RGB" and Image.open(p).size == (28, 20) for p in outs)
