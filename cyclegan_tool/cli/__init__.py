"""`cyclegan-tool`: thin Click commands over the library.

A `CycleGANError` is printed as one line `error: ...` with exit status 1; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys

import click

from cyclegan_tool import __version__
from cyclegan_tool.errors import CycleGANError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CycleGANError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cyclegan-tool")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """Unpaired image-to-image translation: train a CycleGAN, export it, convert folders."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)


def _register() -> None:
    from cyclegan_tool.cli import (bench_cmd, convert_cmd, evaluate_cmd, export_cmd, gui_cmd, info_cmd, models_cmd,
                                   train_cmd)

    for command in (train_cmd.train, export_cmd.export, convert_cmd.convert, evaluate_cmd.evaluate, models_cmd.models, bench_cmd.bench,
                    info_cmd.info, gui_cmd.gui):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="cyclegan-tool")
