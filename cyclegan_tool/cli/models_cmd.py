"""`cyclegan-tool models` (list), `models add NAME FILE`, `models remove NAME`."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """List every model by name: shipped with the tool, published (downloaded on first use) and
    your own (`models add`). Use them with convert --model NAME."""
    if ctx.invoked_subcommand is not None:
        return
    from cyclegan_tool.api import models as catalogue

    rows = catalogue()
    width = max(map(len, rows)) + 1
    for source in ("shipped", "published", "user"):
        names = [n for n, e in rows.items() if e["source"] == source]
        if not names:
            continue
        click.echo({"shipped": "Shipped with the tool:", "published": "Published CycleGAN models (downloaded on "
                    "first use):", "user": "Your models (models add):"}[source])
        for name in names:
            e = rows[name]
            size = e.get("bytes")
            status = {"published": "not downloaded", "downloaded": "downloaded"}.get(e["status"], "")
            detail = [e.get("arch", ""), e.get("direction", ""), f"runs at {e['size']}" if e.get("size") else "",
                      f"{size / 2**20:.0f} MiB" if size else "", status]
            click.echo(f"  {name:{width}s}{e.get('summary', '')}")
            extra = f"; expects {e['domain']}" if e.get("domain") else ""
            click.echo(f"  {'':{width}s}[{', '.join(d for d in detail if d)}]{extra}")
    click.echo("Published models: licence and source in `cyclegan-tool models show NAME`; where files go: "
               "docs/MODELS.md.")


@models.command()
@click.argument("name")
def show(name: str) -> None:
    """Everything the catalogue says about one model."""
    from cyclegan_tool.api import models as catalogue
    from cyclegan_tool.zoo import unknown

    rows = catalogue()
    if name not in rows:
        raise unknown(name, rows)
    for key, value in rows[name].items():
        click.echo(f"{key:>10}: {value}")


@models.command()
@click.argument("name")
@click.argument("file", type=click.Path())
@click.option("--link", is_flag=True, help="Link to FILE instead of copying it.")
@click.option("--summary", default="", help="One line saying what the model does.")
def add(name: str, file: str, link: bool, summary: str) -> None:
    """Add FILE (a checkpoint, .pth, .onnx or engine) as model NAME for --model NAME."""
    from cyclegan_tool.api import add_model
    from cyclegan_tool.zoo.user import folder

    e = add_model(name, file, link=link, summary=summary)
    click.echo(f"added '{name}' ({e['kind']}, {e['arch']}) in {folder()}; next: cyclegan-tool convert --model "
               f"{name} IN OUT")


@models.command()
@click.argument("name")
def remove(name: str) -> None:
    """Remove your model NAME (or a downloaded published model's file)."""
    from cyclegan_tool.api import remove_model

    click.echo(f"removed '{name}' ({remove_model(name)})")
