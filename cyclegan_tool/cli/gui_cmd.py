"""`cyclegan-tool gui`."""

from __future__ import annotations

import sys

import click


@click.command()
def gui() -> None:
    """Open the drag-and-drop desktop converter (needs PySide6)."""
    from cyclegan_tool.gui import main

    sys.exit(main([sys.argv[0]]))
