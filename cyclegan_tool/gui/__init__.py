"""`cyclegan-tool gui`: a PySide6 window over the same pipeline as `convert`.

`state.py` holds the Qt-free state and logic; `window.py` is the view; `worker.py` runs a
conversion in a QThread. PySide6 is imported only inside this package.
"""

from __future__ import annotations

import sys


def why_no_gui() -> str | None:
    """Why the window cannot open here (no PySide6, a missing Qt system library, no display),
    in one line, or None. Qt aborts the whole process when its platform plugin cannot load,
    so that case is probed in a child process first."""
    import os
    import subprocess

    try:
        import PySide6.QtWidgets  # noqa: F401
    except ImportError as e:
        text = str(e)
        if ".so" in text:  # PySide6 is there but a system library is not
            lib = text.split(":")[0].strip()
            return (f"the GUI cannot start: Qt needs the system library {lib}, which is missing "
                    "(on Debian/Ubuntu: apt-get install libegl1 libgl1 libxkbcommon0 libfontconfig1)")
        from cyclegan_tool.errors import MissingDependencyError

        return str(MissingDependencyError("PySide6-Essentials", "The GUI", 'pip install "cyclegan-tool[gui]"'))
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform in ("offscreen", "minimal", "vnc") or sys.platform in ("win32", "darwin"):
        return None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ("the GUI cannot start: no display (DISPLAY and WAYLAND_DISPLAY are unset); run it on a desktop, "
                "or convert with `cyclegan-tool convert`")
    probe = "from PySide6.QtWidgets import QApplication; QApplication([])"
    try:
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        hint = next((ln for ln in lines if "xcb" in ln or "library" in ln or "Could not" in ln), lines[-1] if lines
                    else f"exit status {proc.returncode}")
        return f"the GUI cannot start: Qt could not open its window system plugin ({hint})"
    return None


def main(argv: list[str] | None = None) -> int:
    """Open the window (the `cyclegan-tool-gui` entry point)."""
    why = why_no_gui()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 1
    from PySide6.QtWidgets import QApplication

    from cyclegan_tool.gui.window import MainWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("cyclegan-tool")
    window = MainWindow()
    window.resize(1200, 640)
    window.show()
    return app.exec()
