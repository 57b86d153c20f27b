"""`cyclegan-tool convert (--engine X | --onnx X | --checkpoint X | --model NAME) IN OUT`."""

from __future__ import annotations

import sys

import click

from cyclegan_tool.cli.options import options_from
from cyclegan_tool.errors import ConfigError
from cyclegan_tool.specs import NORM_STATS
from cyclegan_tool.runtime.options import ConvertOptions
from cyclegan_tool.runtime.plan import BACKENDS, PRECISIONS


def _parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 1)
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard '{text}': use K/N, e.g. 0/2") from None
    return (k, n)


@click.command()
@click.argument("inp", metavar="IN", type=click.Path())
@click.argument("out", metavar="OUT", type=click.Path())
@click.option("--engine", type=click.Path(dir_okay=False), help="TensorRT engine (.plan with its .plan.json).")
@click.option("--onnx", type=click.Path(dir_okay=False), help="ONNX model from `cyclegan-tool export`.")
@click.option("--checkpoint", type=click.Path(), help="Our .pt checkpoint or a reference .pth, or a training run's "
              "folder (ours or the reference's: its latest generator for --direction).")
@click.option("--model", help="A model shipped with the tool (see `cyclegan-tool models`).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto",
              show_default=True, help="Inference backend; auto picks it from the file and the machine (an ONNX model on a CPU: "
                   "the runtime measured fastest here, within 35 dB of ONNX Runtime FP32).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="auto = fp16 on CUDA (PyTorch); on a CPU the setting measured fastest here within 35 dB of "
                   "fp32: bf16 where the CPU has AVX512-BF16 or AMX, a shipped model's int8 form. fp32: FP32 "
                   "arithmetic only. bf16: PyTorch autocast (checkpoints) or OpenVINO (ONNX models) on a CPU.")
@click.option("--direction", type=click.Choice(["a2b", "b2a"]), help="Which generator of a training checkpoint "
              "(a shipped model: its pair for the other direction).")
@click.option("--norm-stats", type=click.Choice(NORM_STATS), default="auto", show_default=True,
              help="Batch-norm generators (pix2pix U-Nets, --norm batch): batch (and auto) = each image's own "
                   "statistics, as the reference's test.py without --eval and the pix2pix paper; running = their "
                   "running statistics (test.py --eval). Instance-norm models are unaffected.")
@click.option("--devices", help="Several devices, e.g. 0,1 (GPUs) or cpu,cpu: one process per device, files "
              "split between them.")
@click.option("--shard", help="Only this share of the files, K/N (set by --devices and torchrun).")
@options_from(ConvertOptions)
def convert(inp, out, engine, onnx, checkpoint, model, backend, device, precision, direction, norm_stats, devices,
            shard, **options) -> None:
    """Translate the image file or folder IN (recursively) into OUT, mirroring the tree.

    Exit status 1 if any file failed (each is reported by name), 0 otherwise.
    """
    from cyclegan_tool.api import convert_events, with_share

    given = [v for v in (engine, onnx, checkpoint, model) if v]
    if len(given) != 1:
        raise ConfigError("give exactly one of --engine, --onnx, --checkpoint or --model")
    opts = with_share(ConvertOptions(**options, shard=_parse_shard(shard)))
    quiet = opts.shard[0] > 0  # of several shares, only the first reports
    events = convert_events(inp, out, model=given[0], options=opts, backend=backend, device=device,
                            precision=precision, direction=direction, devices=devices, norm_stats=norm_stats,
                            on_start=lambda line: click.echo(line, err=True))
    summary = _drive(events, show_bar=not quiet)
    click.echo(summary.line(), err=True)
    for note in summary.notes:
        click.echo(f"note: {note}", err=True)
    for error in summary.errors:
        click.echo(f"error: {error}", err=True)
    if summary.failed or summary.errors:
        sys.exit(1)


def _drive(events, show_bar: bool):
    from tqdm import tqdm

    from cyclegan_tool.runtime import FrameProgress, Summary

    bar = frames = None
    summary = None
    try:
        for ev in events:
            if isinstance(ev, Summary):
                summary = ev
                continue
            if isinstance(ev, FrameProgress):  # a clip's frames, on a second bar
                if frames is None or frames.desc != ev.src.name:
                    if frames is not None:
                        frames.close()
                    frames = tqdm(total=ev.total, unit="frame", desc=ev.src.name, dynamic_ncols=True,
                                  disable=not show_bar, mininterval=0.5, position=1, leave=False)
                frames.total = max(frames.total or 0, ev.total)
                frames.update(ev.frames - frames.n)
                frames.set_postfix_str(f"{ev.frames_per_s:.1f} frames/s", refresh=False)
                continue
            if bar is None:
                bar = tqdm(total=ev.total, unit="img", dynamic_ncols=True, disable=not show_bar, mininterval=0.5)
            bar.update(1)
            if ev.status == "failed":
                bar.write(f"failed: {ev.message}", file=sys.stderr)
            bar.set_postfix_str(f"{ev.images_per_s:.1f} img/s", refresh=False)
    finally:
        for b in (frames, bar):
            if b is not None:
                b.close()
    return summary
