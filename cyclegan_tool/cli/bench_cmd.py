"""`cyclegan-tool bench MODEL`: images/s of a backend at given sizes and batch."""

from __future__ import annotations

import statistics
import time

import click

from cyclegan_tool.runtime.select import BACKENDS, PRECISIONS


@click.command()
@click.argument("model")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto")
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto")
@click.option("--size", "sizes", multiple=True, default=["256"], show_default=True,
              help="HxW or N (square); repeatable.")
@click.option("--batch", type=int, default=1, show_default=True)
@click.option("--iters", type=int, default=10, show_default=True)
@click.option("--warmup", type=int, default=3, show_default=True)
def bench(model, backend, device, precision, sizes, batch, iters, warmup) -> None:
    """Measure inference images/s (median of --iters batches after --warmup; no file I/O)."""
    import torch

    from cyclegan_tool.api import resolve_model
    from cyclegan_tool.conventions import padded_size
    from cyclegan_tool.runtime import make_backend

    be, why = make_backend(resolve_model(model).path, backend=backend, device=device, precision=precision)
    with be:
        click.echo(f"{why}: {be.describe()}")
        for text in sizes:
            h, w = (int(v) for v in (text.split("x") if "x" in text else (text, text)))
            h, w = padded_size(h, w, be.info.pad_multiple)
            x = torch.rand(batch, 3, h, w) * 2 - 1
            sync = torch.cuda.synchronize if be.device.type == "cuda" else (lambda: None)
            if be.device.type == "cuda":
                x = x.to(be.device)
            for _ in range(warmup):
                be.infer(x)
            sync()
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                be.infer(x)
                sync()
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            click.echo(f"{h}x{w} batch {batch}: {med * 1000:.1f} ms/batch, {batch / med:.1f} images/s")
