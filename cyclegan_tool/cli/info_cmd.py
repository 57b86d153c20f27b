"""`cyclegan-tool info PATH`."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the full description as JSON.")
def info(path: str, as_json: bool) -> None:
    """Say what a checkpoint, reference .pth, ONNX model, engine or shipped model is."""
    from cyclegan_tool.api import resolve_model
    from cyclegan_tool.describe import describe_artifact

    desc = describe_artifact(str(resolve_model(path).path))
    if as_json:
        click.echo(json.dumps(desc, indent=2, default=str))
        return
    for key, value in desc.items():
        if key == "config" and isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        click.echo(f"{key:>15}: {value}")
