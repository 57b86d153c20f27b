"""`cyclegan-tool datasets` (list) and `datasets pull NAME [DIR]`."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
@click.pass_context
def datasets(ctx: click.Context) -> None:
    """List the CycleGAN benchmark datasets that `datasets pull NAME` fetches (then `train NAME`)."""
    if ctx.invoked_subcommand is not None:
        return
    from cyclegan_tool.api import datasets as listing

    for name, where in listing().items():
        click.echo(f"  {name:24s}{'pulled: ' + str(where) if where else ''}")
    from cyclegan_tool.zoo.datasets import NOT_HERE

    for name, why in NOT_HERE.items():
        click.echo(f"  {name:24s}({why})")


@datasets.command()
@click.argument("name")
@click.argument("dest", required=False, type=click.Path(file_okay=False))
def pull(name: str, dest: str | None) -> None:
    """Download dataset NAME and unpack it into DEST (default: the datasets folder)."""
    from cyclegan_tool.api import pull_dataset

    folder, counts = pull_dataset(name, dest)
    click.echo(f"{folder}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
               + f"; next: cyclegan-tool train {name if dest is None else folder} --name {name}")
