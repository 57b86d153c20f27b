"""Screenshot of the real window after a conversion, for the README (docs/gui.png).

Run under a virtual X server:
    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1400x800x24" python tools/gui_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from cyclegan_tool.gui.window import MainWindow
from cyclegan_tool.zoo import model_file

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    app = QApplication(sys.argv)
    tmp = Path(tempfile.mkdtemp())
    window = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1380, 700)
    window.show()
    window.add_paths([ROOT / "samples" / "horse2zebra"])
    window.set_model(str(model_file("horse2zebra")))
    window.output_edit.setText(str(tmp / "zebras"))
    window.suffix_edit.setText("_zebra")
    window.start_run()

    def wait() -> None:
        if window.summary is None:
            QTimer.singleShot(200, wait)
            return
        window._last_preview = 0
        QTimer.singleShot(500, shoot)

    def shoot() -> None:
        shot = app.primaryScreen().grabWindow(0).copy(window.frameGeometry())
        shot.save(str(ROOT / "docs" / "gui.png"))
        print("saved docs/gui.png:", window.status.text())
        app.quit()

    QTimer.singleShot(200, wait)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
