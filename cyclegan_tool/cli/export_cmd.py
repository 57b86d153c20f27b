"""`cyclegan-tool export MODEL [-o model.onnx] [--engine model.plan]`.

MODEL: our .pt checkpoint, a reference .pth, a training run's folder, an FP32 ONNX file we
exported, or a shipped model's name (e.g. `export horse2zebra --int8 my_horses/ -o h2z_int8.onnx`)."""

from __future__ import annotations

from pathlib import Path

import click

from cyclegan_tool.specs import NORM_STATS
from cyclegan_tool.trt_libs import LIBRARIES


def _size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="ONNX file to write (default: next to --engine).")
@click.option("--direction", type=click.Choice(["a2b", "b2a"]), help="Generator of a training checkpoint [a2b].")
@click.option("--netG", "netG", help="Architecture of a plain .pth (read off the file when not given; "
              "`cyclegan-tool models --architectures` lists them).")
@click.option("--ngf", type=int, help="Generator filters of a plain .pth (read off the file when not given).")
@click.option("--norm", help="Norm of a plain .pth: instance, batch or none.")
@click.option("--fp16", is_flag=True, help="Strongly typed FP16 graph (instance norm kept in FP32).")
@click.option("--int8", "int8", type=click.Path(file_okay=False), default=None,
              help="Int8 ONNX graph for the CPU runtimes, calibrated on this folder of images of the model's "
                   "input domain (recorded in the metadata; written only within 30 dB PSNR of FP32).")
@click.option("--calib-count", type=int, default=64, show_default=True, help="Calibration images used (--int8).")
@click.option("--calib-size", type=int, default=256, show_default=True, help="Calibration image side (--int8).")
@click.option("--int8-min-psnr", type=float, default=30.0, show_default=True,
              help="Refuse an int8 graph further than this (dB) from FP32 on the calibration images.")
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--norm-stats", type=click.Choice(NORM_STATS), default="auto", show_default=True,
              help="Batch-norm generators: batch (and auto) normalise each image by its own statistics, as the "
                   "reference's test.py without --eval; running uses their running statistics (test.py --eval). "
                   "Recorded in the metadata.")
@click.option("--no-check", is_flag=True, help="Skip the ONNX Runtime vs. PyTorch parity check.")
@click.option("--engine", type=click.Path(dir_okay=False), help="Also build a TensorRT engine (.plan).")
@click.option("--trt", type=click.Choice(["auto", *LIBRARIES]), default="auto", show_default=True,
              help="Engine library: TensorRT, or TensorRT for RTX (builds without a GPU).")
@click.option("--min-shape", default=None, help="Profile minimum NxCxHxW  [default: 1xCx64x64, C: the model's]")
@click.option("--opt-shape", default=None, help="Profile optimum NxCxHxW  [default: 4xCx256x256]")
@click.option("--max-shape", default=None, help="Profile maximum NxCxHxW  [default: 8xCx1024x1024]")
@click.option("--workspace", type=int, default=4096, show_default=True, help="Builder workspace in MiB.")
@click.option("--compute-capability", "ccs", multiple=True,
              help="TensorRT for RTX target GPU, e.g. 8.9 (repeatable; default: portable 8.0+).")
def export(checkpoint, output, direction, netG, ngf, norm, fp16, int8, calib_count, calib_size, int8_min_psnr, opset,
           norm_stats, no_check, engine, trt, min_shape, opt_shape, max_shape, workspace, ccs) -> None:
    """Export a generator to ONNX, and with --engine to a TensorRT engine plus JSON sidecar.

    CHECKPOINT is our .pt training checkpoint, a reference .pth generator file, or a training
    run's folder (its latest generator for --direction).
    """
    from cyclegan_tool.api import export as run_export

    r = run_export(checkpoint, output=output, engine=engine, direction=direction, netG=netG, ngf=ngf, norm=norm,
                   fp16=fp16, opset=opset, check=not no_check, trt=trt, min_shape=min_shape, opt_shape=opt_shape,
                   max_shape=max_shape, workspace_mib=workspace, compute_capabilities=tuple(ccs), int8=int8,
                   calib_count=calib_count, calib_size=calib_size, int8_min_psnr=int8_min_psnr, norm_stats=norm_stats)
    if int8:
        click.echo(f"int8 vs. FP32 on {r.parity['calibration_images']} calibration images: PSNR "
                   f"{r.parity['psnr_db_vs_fp32']:.1f} dB", err=True)
    elif not no_check:
        worst = max(c["max_abs"] for c in r.parity["checks"])
        click.echo(f"parity vs. PyTorch ({r.parity['runtime']}): max abs diff {worst:.2e}, "
                   f"PSNR {min(c['psnr_db'] for c in r.parity['checks']):.1f} dB", err=True)
    last = r.onnx
    if r.engine:
        click.echo(f"{r.onnx} ({_size(r.onnx)}, {r.precision})", err=True)
        info = r.engine_info
        click.echo(f"engine built with {info['library']['name']} {info['library']['version']}, "
                   f"{info['precision']}, targets {', '.join(info['target_compute_capabilities']) or '-'}", err=True)
        last = r.engine
    flag = "--engine" if r.engine else "--onnx"
    click.echo(f"{last} ({_size(last)}) in {r.seconds:.1f}s; next: "
               f"cyclegan-tool convert {flag} {last} IN_FOLDER OUT_FOLDER")
