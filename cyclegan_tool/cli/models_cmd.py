"""`cyclegan-tool models`."""

from __future__ import annotations

import click


@click.command()
def models() -> None:
    """List the models shipped with the tool (use them with convert --model NAME)."""
    from cyclegan_tool.zoo import HERE, catalogue

    for name, entry in catalogue().items():
        size = (HERE / entry["file"]).stat().st_size / 2**20 if (HERE / entry["file"]).is_file() else 0
        forms = entry["precision"] + (" + int8 CPU form" if entry.get("int8") else "")
        click.echo(f"{name:14s} {entry['summary']} [{entry['arch']}, {forms}, {size:.1f} MiB]")
