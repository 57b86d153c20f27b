"""Runs a conversion, and reads a model's description, off the GUI thread; both report through
Qt signals."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread, Signal

from cyclegan_tool.gui.state import GuiState, describe, error_text, run
from cyclegan_tool.runtime import FrameProgress, Summary


class ConvertWorker(QObject):
    started = Signal(str)  # the start line: which backend runs the model, and why
    progress = Signal(object)  # runtime.Progress
    frames = Signal(object)  # runtime.FrameProgress: a clip's frames
    finished = Signal(object)  # runtime.Summary
    failed = Signal(str, str)  # message, details

    def __init__(self, state: GuiState):
        super().__init__()
        self.state = state
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        try:
            for event in run(self.state, self.cancel_event, on_start=self.started.emit):
                if isinstance(event, Summary):
                    self.finished.emit(event)
                elif isinstance(event, FrameProgress):
                    self.frames.emit(event)
                else:
                    self.progress.emit(event)
        except Exception as e:  # shown in a dialog, never a silent crash
            self.failed.emit(*error_text(e))


class DescribeWorker(QObject):
    """What a model is and how it would run (`api.describe_model`, once): reading a checkpoint
    imports torch and loads its weights, which must not freeze the window."""

    finished = Signal(int, str, str)  # the request's token, what it is, how it would run
    failed = Signal(int, str, str)  # the request's token, message, details
    downloading = Signal(int, str)  # the request's token, "downloading NAME: 12 of 44 MiB"

    def __init__(self, token: int, model: str, backend: str):
        super().__init__()
        self.token, self.model, self.backend = token, model, backend

    def run(self) -> None:
        from cyclegan_tool.zoo.fetch import reporting

        def report(what: str, done: int, total: int | None) -> None:
            of = f" of {total / 2**20:.0f}" if total else ""
            self.downloading.emit(self.token, f"downloading {what}: {done / 2**20:.0f}{of} MiB")

        try:
            with reporting(report):
                self.finished.emit(self.token, *describe(self.model, self.backend))
        except Exception as e:
            self.failed.emit(self.token, *error_text(e))


def start(worker: ConvertWorker | DescribeWorker) -> QThread:
    """Move `worker` to a new thread and start it; the thread quits when the worker is done."""
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.failed.connect(thread.quit)
    thread.start()
    return thread
