"""Runs a conversion off the GUI thread and reports through Qt signals."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread, Signal

from cyclegan_tool.gui.state import GuiState, error_text, run
from cyclegan_tool.runtime import Summary


class ConvertWorker(QObject):
    started = Signal(str)  # the start line: which backend runs the model, and why
    progress = Signal(object)  # runtime.Progress
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
                else:
                    self.progress.emit(event)
        except Exception as e:  # shown in a dialog, never a silent crash
            self.failed.emit(*error_text(e))


def start(worker: ConvertWorker) -> QThread:
    """Move `worker` to a new thread and start it; the thread quits when the worker is done."""
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    worker.failed.connect(thread.quit)
    thread.start()
    return thread
