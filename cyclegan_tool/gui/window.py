"""The main window: a view over `GuiState`; conversions run in a `ConvertWorker` thread."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QMainWindow, QMessageBox,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from cyclegan_tool.api import models, shipped_models
from cyclegan_tool.gui import state as logic
from cyclegan_tool.gui.worker import ConvertWorker, start
from cyclegan_tool.runtime.options import OUTPUT_FORMATS as FORMATS
from cyclegan_tool.runtime.plan import BACKENDS


class DropList(QListWidget):
    """The drop zone: accepts files and folders dragged from a file manager."""

    def __init__(self, on_paths):
        super().__init__()
        self.on_paths = on_paths
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setMinimumHeight(140)

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        self.on_paths(paths)
        event.acceptProposedAction()


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("cyclegan-tool")
        self.settings = settings or QSettings("cyclegan-tool", "gui")
        self.state = logic.GuiState().with_settings({k: self.settings.value(k) for k in logic.SETTINGS_KEYS})
        self.worker: ConvertWorker | None = None
        self.thread = None
        self.last_error: QMessageBox | None = None
        self.summary = None
        self._last_preview = 0.0
        self._describing = 0  # the latest description asked for; older answers are dropped
        self._describers: list = []  # (worker, thread) of descriptions in flight, kept alive
        self.described, self._quiet = False, False
        self._build()
        self._load_state()

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        root = QWidget()
        grid = QGridLayout(root)
        self.setCentralWidget(root)

        images = QGroupBox("Images and folders")
        v = QVBoxLayout(images)
        self.drop = DropList(self.add_paths)
        self.drop_hint = QLabel("Drop images or folders here")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        v.addWidget(self.drop_hint)
        v.addWidget(self.drop)
        row = QHBoxLayout()
        for text, slot in (("Add files…", self.browse_files), ("Add folder…", self.browse_folder),
                           ("Clear", self.clear_inputs)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            row.addWidget(b)
        v.addLayout(row)
        grid.addWidget(images, 0, 0, 2, 1)

        model = QGroupBox("Model")
        f = QFormLayout(model)
        self.model_edit = QLineEdit()
        self.model_edit.editingFinished.connect(lambda: self.set_model(self.model_edit.text()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse_model)
        mrow = QHBoxLayout()
        mrow.addWidget(self.model_edit)
        mrow.addWidget(browse)
        f.addRow("File", mrow)
        self.shipped_combo = QComboBox()
        self.fill_models()
        self.shipped_combo.activated.connect(
            lambda i: self.set_model(self.shipped_combo.itemData(i)) if i > 0 else None)
        f.addRow("By name", self.shipped_combo)
        self.model_info = QLabel("no model chosen")
        self.model_info.setWordWrap(True)
        f.addRow("What", self.model_info)
        self.backend_combo = QComboBox()
        self.backend_combo.addItems(list(BACKENDS))
        self.backend_combo.currentTextChanged.connect(self._backend_changed)
        f.addRow("Backend", self.backend_combo)
        self.backend_info = QLabel("")
        self.backend_info.setWordWrap(True)
        f.addRow("", self.backend_info)
        grid.addWidget(model, 0, 1)

        out = QGroupBox("Output and options")
        f = QFormLayout(out)
        self.output_edit = QLineEdit()
        obrowse = QPushButton("Browse…")
        obrowse.clicked.connect(self.browse_output)
        orow = QHBoxLayout()
        orow.addWidget(self.output_edit)
        orow.addWidget(obrowse)
        f.addRow("Output folder", orow)
        self.format_combo = QComboBox()
        self.format_combo.addItems(list(FORMATS))
        f.addRow("Format", self.format_combo)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        f.addRow("Quality", self.quality_spin)
        self.suffix_edit = QLineEdit()
        self.suffix_edit.setPlaceholderText("e.g. _zebra")
        f.addRow("Name suffix", self.suffix_edit)
        self.size_combo = QComboBox()
        self.size_combo.addItems(list(logic.SIZE_POLICIES))
        self.size_spin = QSpinBox()
        self.size_spin.setRange(8, 16384)
        srow = QHBoxLayout()
        srow.addWidget(self.size_combo)
        srow.addWidget(self.size_spin)
        f.addRow("Size", srow)
        self.tile_check = QCheckBox("Tile large images")
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(64, 8192)
        trow = QHBoxLayout()
        trow.addWidget(self.tile_check)
        trow.addWidget(self.tile_spin)
        f.addRow("Tiling", trow)
        self.skip_check = QCheckBox("Skip files whose output exists")
        f.addRow("", self.skip_check)
        grid.addWidget(out, 1, 1)

        run = QGroupBox("Run")
        v = QVBoxLayout(run)
        brow = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start_run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_run)
        self.open_button = QPushButton("Open output folder")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_output)
        for b in (self.start_button, self.cancel_button, self.open_button):
            brow.addWidget(b)
        v.addLayout(brow)
        self.progress = QProgressBar()
        v.addWidget(self.progress)
        self.status = QLabel("idle")
        v.addWidget(self.status)
        prow = QHBoxLayout()
        self.before, self.after = QLabel("before"), QLabel("after")
        for label in (self.before, self.after):
            label.setFixedSize(256, 256)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("border: 1px solid #999;")
            prow.addWidget(label)
        v.addLayout(prow)
        v.addWidget(QLabel("Failed files"))
        self.failures = QListWidget()
        self.failures.setMaximumHeight(90)
        v.addWidget(self.failures)
        grid.addWidget(run, 0, 2, 2, 1)

    # -- state <-> widgets ------------------------------------------------------------------
    def _load_state(self) -> None:
        s = self.state
        self.model_edit.setText(s.model)
        self.output_edit.setText(s.output)
        self.backend_combo.setCurrentText(s.backend)
        self.format_combo.setCurrentText(s.format)
        self.quality_spin.setValue(s.quality)
        self.suffix_edit.setText(s.suffix)
        self.size_combo.setCurrentText(s.size_policy)
        self.size_spin.setValue(s.size_value)
        self.tile_check.setChecked(s.tile)
        self.tile_spin.setValue(s.tile_size)
        self.skip_check.setChecked(s.skip_existing)
        if s.model and (Path(s.model).is_file() or s.model in shipped_models()):
            self._describe_model(quiet=True)

    def collect(self) -> logic.GuiState:
        """Read the widgets into the state."""
        s = self.state
        s.model, s.output = self.model_edit.text().strip(), self.output_edit.text().strip()
        s.backend, s.format = self.backend_combo.currentText(), self.format_combo.currentText()
        s.quality, s.suffix = self.quality_spin.value(), self.suffix_edit.text()
        s.size_policy, s.size_value = self.size_combo.currentText(), self.size_spin.value()
        s.tile, s.tile_size = self.tile_check.isChecked(), self.tile_spin.value()
        s.skip_existing = self.skip_check.isChecked()
        return s

    def save_settings(self) -> None:
        for key, value in self.collect().to_settings().items():
            self.settings.setValue(key, value)
        self.settings.sync()

    # -- inputs and model -------------------------------------------------------------------
    def add_paths(self, paths) -> None:
        self.state.add_paths(paths)
        self.drop.clear()
        self.drop.addItems([str(p) + ("/" if p.is_dir() else "") for p in self.state.inputs])
        self.drop_hint.setText(f"{len(self.state.inputs)} item(s); drop more here")

    def clear_inputs(self) -> None:
        self.state.inputs.clear()
        self.add_paths([])

    def browse_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Images", "", "Images (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff)")
        self.add_paths(files)

    def browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images")
        if folder:
            self.add_paths([folder])

    def browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model", "", "Models (*.plan *.engine *.onnx *.pt *.pth)")
        if path:
            self.set_model(path)

    def browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder")
        if folder:
            self.output_edit.setText(folder)

    def fill_models(self) -> None:
        """Every model by name (`api.models`): shipped, published (the label says when a pick will
        download it, and how much) and the user's; the item's data is the name."""
        self.shipped_combo.clear()
        self.shipped_combo.addItem("(choose)", None)
        for name, e in models().items():
            label = name
            if e["status"] == "published":
                label += f"  (downloads {e['bytes'] / 2**20:.0f} MiB on first use)" if e.get("bytes") else \
                    "  (downloads on first use)"
            elif e["source"] == "user":
                label += "  (yours)"
            self.shipped_combo.addItem(label, name)

    def set_model(self, path: str) -> None:
        self.model_edit.setText(path)
        self.state.model = path
        self._describe_model()

    def _describe_model(self, quiet: bool = False) -> None:
        """Read the model's description on a worker thread (a checkpoint loads torch and its
        weights); the labels show it when it arrives, unless another model was chosen since."""
        from cyclegan_tool.gui.worker import DescribeWorker

        self.described = False
        self._describing += 1
        self._quiet = quiet
        self.model_info.setText("reading the model ...")
        self.backend_info.setText("")
        worker = DescribeWorker(self._describing, self.state.model, self.backend_combo.currentText())
        worker.finished.connect(self._on_described)  # bound methods: delivered on the GUI thread
        worker.failed.connect(self._on_describe_failed)
        worker.downloading.connect(self._on_downloading)
        self._describers = [(w, t) for w, t in self._describers if t.isRunning()] + [(worker, start(worker))]

    def _on_described(self, token: int, what: str, how: str) -> None:
        if token == self._describing:
            self.model_info.setText(what)
            self.backend_info.setText(how)
            self.described = True

    def _on_downloading(self, token: int, line: str) -> None:
        if token == self._describing:
            self.model_info.setText(line)

    def _on_describe_failed(self, token: int, message: str, details: str) -> None:
        if token == self._describing:
            self.model_info.setText("cannot use this model")
            self.described = True
            if not self._quiet:
                self.show_error(message, details)

    def _backend_changed(self, _text: str) -> None:
        if self.state.model:
            self._describe_model(quiet=True)

    # -- running ----------------------------------------------------------------------------
    def start_run(self) -> None:
        state = self.collect()
        try:
            total = len(state.jobs())
        except Exception as e:
            self.show_error(*logic.error_text(e))
            return
        self.save_settings()
        self.failures.clear()
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        self.status.setText(f"0 / {total}  preparing the model (a model's first run checks its fast ways against the exact one)")
        self.summary = None
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.open_button.setEnabled(False)
        self.worker = ConvertWorker(logic.GuiState(**vars(state)))
        self.worker.started.connect(self.on_started)
        self.worker.progress.connect(self.on_progress)
        self.worker.frames.connect(self.on_frames)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        self.thread = start(self.worker)

    def cancel_run(self) -> None:
        if self.worker:
            self.worker.cancel()
            self.status.setText(self.status.text() + " - cancelling after the current image")

    def on_started(self, line: str) -> None:
        """The backend the run chose, and why (the CLI's start line)."""
        self.backend_info.setText(line)
        self.backend_info.setToolTip(line)

    def on_progress(self, ev) -> None:
        self.progress.setValue(ev.done)
        self.status.setText(f"{ev.done} / {ev.total}  {ev.images_per_s:.1f} images/s")
        if ev.status == "failed":
            self.failures.addItem(ev.message)
        elif ev.status == "converted" and time.monotonic() - self._last_preview > 0.25:
            self._last_preview = time.monotonic()
            self._show(self.before, ev.job.src)
            self._show(self.after, ev.job.dst)

    def on_frames(self, ev) -> None:
        """A clip's frames: in the status line, beside the files' progress."""
        done = self.progress.value()
        self.status.setText(f"{done} / {self.progress.maximum()}  {ev.src.name}: frame {ev.frames} / {ev.total}, "
                            f"{ev.frames_per_s:.1f} frames/s")

    def _show(self, label: QLabel, path: Path) -> None:
        pix = QPixmap(str(path))
        if not pix.isNull():
            label.setPixmap(pix.scaled(label.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation))

    def on_finished(self, summary) -> None:
        self.summary = summary
        self.status.setText(summary.line())
        self._done()
        self.open_button.setEnabled(True)

    def on_failed(self, message: str, details: str) -> None:
        self._done()
        self.status.setText("stopped: " + message)
        self.show_error(message, details)

    def _done(self) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.thread is not None:
            self.thread.quit()
            self.thread.wait()
            self.thread = None

    def open_output(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(self.state.output))

    def show_error(self, message: str, details: str = "") -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "cyclegan-tool", message, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        self.last_error = box
        box.open()  # window-modal, does not block the event loop

    def closeEvent(self, event) -> None:
        for _, thread in self._describers:
            thread.quit()
            thread.wait()
        if self.worker:
            self.worker.cancel()
        if self.thread is not None:
            self.thread.quit()
            self.thread.wait()
        self.save_settings()
        super().closeEvent(event)
