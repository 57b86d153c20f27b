"""`cyclegan-tool evaluate`: FID and KID of translated images against real ones."""

from __future__ import annotations

import json

import click


class _Bars:
    """One tqdm bar per stage (real features, translation, fake features)."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.stage = enabled, None, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=stage, unit="img", dynamic_ncols=True, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@click.command()
@click.option("--fake", type=click.Path(file_okay=False), help="Folder of translated images to score.")
@click.option("--real", type=click.Path(file_okay=False), help="Folder of real images of the target domain.")
@click.option("--model", help="Translate with this model first (any file `convert` takes, or a shipped name).")
@click.option("--source", type=click.Path(file_okay=False), help="With --model: the images to translate.")
@click.option("--dataroot", type=click.Path(file_okay=False),
              help="With --model: a dataset with testA/ and testB/ (both directions for a training checkpoint).")
@click.option("--direction", type=click.Choice(["a2b", "b2a"]), help="Only this direction of a checkpoint.")
@click.option("--limit", type=click.IntRange(min=2), help="Only the first N source (or --fake) images, sorted.")
@click.option("--fake-glob", help="Only files matching this pattern in --fake or --source, e.g. '*_fake.png'.")
@click.option("--size", type=click.IntRange(min=8), help="With --model: run it at this shorter side, outputs resized "
              "back (shipped models default to their training scale).")
@click.option("--device", default="auto", show_default=True, help="Where the networks run: auto, cpu, cuda.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Where real-folder features are cached (default: the user cache).")
@click.option("--no-cache", is_flag=True, help="Do not cache or reuse real-folder features.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (fid, kid, kid_std, n_fake, n_real, ...).")
def evaluate(fake, real, model, source, dataroot, direction, limit, fake_glob, size, device, cache_dir, no_cache,
             as_json) -> None:
    """FID and KID (standard FID Inception-v3 features) of translated images against real ones.

    \b
    cyclegan-tool evaluate --fake results/ --real testB/
    cyclegan-tool evaluate --model horse2zebra --source testA/ --real testB/
    cyclegan-tool evaluate --model run/latest.pt --dataroot horse2zebra/
    """
    from cyclegan_tool.api import evaluate as run

    bars = _Bars(enabled=True)
    try:
        report = run(fake=fake, real=real, model=model, source=source, dataroot=dataroot, direction=direction,
                     limit=limit, fake_pattern=fake_glob, cache_dir=None if no_cache else (cache_dir or True),
                     device=device, size=size, progress=bars)
    finally:
        bars.close()
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    for r in report.results:
        click.echo(r.line())
        for msg in r.skipped:
            click.echo(f"  skipped: {msg}")
    click.echo(f"(KID unscaled; FID Inception-v3, 299x299 TF1 bilinear; {report.seconds:.1f}s)")
