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


# name -> (module, one-line help). Modules are imported only when their command runs (or
# its --help is asked for), so `cyclegan-tool --help` and typos answer without loading torch.
COMMANDS = {
    "train": ("train_cmd", "Train a CycleGAN on DATAROOT/trainA and DATAROOT/trainB."),
    "export": ("export_cmd", "Export a generator to ONNX, and with --engine to a TensorRT engine."),
    "convert": ("convert_cmd", "Translate an image file or folder (recursively) into OUT."),
    "evaluate": ("evaluate_cmd", "FID and KID of translated images against real ones."),
    "models": ("models_cmd", "List the models by name (shipped, published, yours); add or remove yours."),
    "datasets": ("datasets_cmd", "List the benchmark datasets; pull one by name for training."),
    "bench": ("bench_cmd", "Measure inference images/s of a backend."),
    "info": ("info_cmd", "Say what a checkpoint, .pth, ONNX model or engine is."),
    "gui": ("gui_cmd", "Open the drag-and-drop desktop converter."),
}


class _Group(click.Group):
    """Lazy subcommands; a `CycleGANError` becomes one line `error: ...` and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        import importlib

        module = importlib.import_module(f"cyclegan_tool.cli.{COMMANDS[name][0]}")
        return getattr(module, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, COMMANDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            ctx.fail(f"no command '{name}'{hint}; `cyclegan-tool --help` lists them")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        from cyclegan_tool.zoo.fetch import reporting

        try:
            with reporting(DownloadBar()):
                return super().invoke(ctx)
        except CycleGANError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)


class DownloadBar:
    """Download progress on stderr (zoo/fetch.py reports to it)."""

    def __init__(self):
        self.bar, self.what = None, None

    def __call__(self, what: str, done: int, total: int | None) -> None:
        if self.bar is None or self.what != what:
            from tqdm import tqdm

            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {what}",
                            dynamic_ncols=True, mininterval=0.5, file=sys.stderr)
            self.what = what
        self.bar.update(done - self.bar.n)
        if total is not None and done >= total:
            self.bar.close()
            self.bar = None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cyclegan-tool")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--offline", is_flag=True, help="Never touch the network (also CYCLEGAN_TOOL_OFFLINE=1): published "
              "models and datasets must already be here.")
def cli(verbose: bool, offline: bool) -> None:
    """Unpaired image-to-image translation: train a CycleGAN, export it, convert folders."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    from cyclegan_tool.zoo.fetch import set_offline

    set_offline(offline)


def main() -> None:
    cli(prog_name="cyclegan-tool")
