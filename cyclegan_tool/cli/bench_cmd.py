"""`cyclegan-tool bench MODEL`: images/s of a backend at given sizes and batch."""

from __future__ import annotations

import click

from cyclegan_tool.runtime.plan import BACKENDS, PRECISIONS


@click.command()
@click.argument("model")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto")
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto")
@click.option("--size", "sizes", multiple=True, default=["256"], show_default=True,
              help="HxW or N (square); repeatable.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--iters", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--ways", is_flag=True, help="Time every way --backend auto may take here, in the order it tries "
              "them (the first within its fidelity bar runs).")
def bench(model, backend, device, precision, sizes, batch, iters, warmup, ways) -> None:
    """Measure inference images/s (median of --iters batches after --warmup; no file I/O)."""
    from cyclegan_tool.api import bench as run_bench

    shapes = [_parse_size(text) for text in sizes]
    for line in run_bench(model, backend=backend, device=device, precision=precision, sizes=shapes, batch=batch,
                          iters=iters, warmup=warmup, ways=ways):
        click.echo(line)


def _parse_size(text: str) -> tuple[int, int]:
    from cyclegan_tool.errors import ConfigError

    parts = text.lower().split("x") if "x" in text.lower() else [text, text]
    try:
        h, w = (int(v) for v in parts)
    except ValueError:
        raise ConfigError(f"--size '{text}': give HxW or N, e.g. 256 or 512x768") from None
    if h < 1 or w < 1:
        raise ConfigError(f"--size '{text}': sides must be at least 1")
    return h, w
