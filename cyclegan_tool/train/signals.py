"""Stopping a training run from outside as Ctrl-C does: SIGTERM (`kill`, a job scheduler's
time limit, a container's stop) asks the loop to stop after the step it is in, and the run
saves `latest.pt` for `--resume` instead of losing everything since the last checkpoint."""

from __future__ import annotations

import signal
import threading


class StopOnSignal:
    """Once installed (from the main thread) and until restored, SIGTERM sets `requested` to the
    signal's name; the loop checks it between steps."""

    SIGNALS = (signal.SIGTERM,)

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, _frame) -> None:
        self.requested = signal.Signals(signum).name

    def install(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
