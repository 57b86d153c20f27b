"""`cyclegan-tool gui`: a PySide6 window over the same pipeline as `convert`.

`state.py` holds the Qt-free state and logic; `window.py` is the view; `worker.py` runs a
conversion in a QThread. PySide6 is imported only inside this package.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Open the window (the `cyclegan-tool-gui` entry point)."""
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError:
        from cyclegan_tool.errors import MissingDependencyError

        print(f"error: {MissingDependencyError('PySide6-Essentials', 'The GUI')}", file=sys.stderr)
        return 1
    from cyclegan_tool.gui.window import MainWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("cyclegan-tool")
    window = MainWindow()
    window.resize(1200, 640)
    window.show()
    return app.exec()
