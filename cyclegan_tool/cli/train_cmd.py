"""`cyclegan-tool train DATAROOT`."""

from __future__ import annotations

import click

from cyclegan_tool.cli.options import options_from
from cyclegan_tool.train.config import TrainConfig
from cyclegan_tool.train.presets import PRESETS


class ProgressBar:
    """The trainer's reporter for a terminal: a tqdm bar with losses, it/s and ETA."""

    def start(self, *, total_steps: int, done_steps: int, info: dict) -> None:
        from tqdm import tqdm

        resumed = info["resumed_at"]
        click.echo(f"run folder {info['run_dir']}  device {info['device']}  precision {info.get('amp', 'none')}  "
                   f"processes {info['world_size']}  "
                   f"images A {info['images_a']}  B {info['images_b']}", err=True)
        if resumed:
            click.echo(f"resuming after epoch {resumed[0]}, batch {resumed[1]}", err=True)
        if info["non_defaults"]:
            click.echo("non-default settings: " + ", ".join(f"{k}={v}" for k, v in info["non_defaults"].items()
                                                          if k != "dataroot"), err=True)
        self.bar = tqdm(total=total_steps, unit="it", dynamic_ncols=True, mininterval=1.0)

    def step(self, *, step: int, epoch: int, losses: dict | None) -> None:
        self.bar.update(1)
        if losses:
            self.bar.set_postfix_str(f"ep {epoch} " + " ".join(f"{k} {v:.3f}" for k, v in losses.items()))

    def epoch_end(self, *, epoch: int, total_epochs: int, seconds: float, lr: float,
                  metrics: dict | None = None, best: bool = False) -> None:
        line = f"epoch {epoch}/{total_epochs} done in {seconds:.1f}s, lr now {lr:.2e}"
        if metrics:
            scored = [d for d in ("a2b", "b2a") if f"kid_{d}" in metrics]
            line += ("; validation KID " + " ".join(f"{d} {metrics[f'kid_{d}']:.4f}" for d in scored)
                     + ", FID " + " ".join(f"{d} {metrics[f'fid_{d}']:.1f}" for d in scored) + (" (best)" if best else ""))
        self.bar.write(line)

    def close(self) -> None:
        if hasattr(self, "bar"):
            self.bar.close()


@click.command()
@click.argument("dataroot", type=click.Path(file_okay=False))
@click.option("--resume", is_flag=True, help="Continue CHECKPOINTS_DIR/NAME/latest.pt exactly where it stopped "
              "(--n-epochs/--n-epochs-decay given with it extend the schedule).")
@click.option("--preset", type=click.Choice(PRESETS.names()), default=None,
              help="A named recipe that sets every option you do not give: "
                   + "; ".join(f"{name}: {PRESETS.get(name).description}" for name in PRESETS.names()) + ".")
@click.option("--patchgan/--no-patchgan", default=None, help="With a keras-* preset: patch discriminator "
              "(default) or Flatten -> Dense(1).")
@click.option("--identity/--no-identity", default=None, help="With a keras-* preset: add the identity loss "
              "(MAE x0.5 each way; needs equal channels).")
@options_from(TrainConfig, skip=("dataroot",))
@click.pass_context
def train(ctx: click.Context, dataroot: str, resume: bool, preset: str | None, patchgan: bool | None,
          identity: bool | None, **options) -> None:
    """Train a CycleGAN (or CUT / FastCUT: --model) on DATAROOT/trainA and DATAROOT/trainB.

    Defaults are the reference implementation's (ResNet-9 generators, 70x70 PatchGAN,
    LSGAN, cycle lambda 10, identity 0.5, pool 50, Adam 2e-4, 100 + 100 epochs); --model cut
    and fastcut take the CUT code's (docs/CUT.md).
    Domains may differ in channels (gray <-> color): see --input-nc/--output-nc.
    Multi-GPU: torchrun --nproc-per-node N -m cyclegan_tool train DATAROOT ...
    """
    from click.core import ParameterSource

    from cyclegan_tool.api import train as run_training

    changed = frozenset(k for k in options if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE)
    run_dir = run_training(dataroot, resume=resume, reporter=ProgressBar(), changed=changed, preset=preset,
                           patchgan=patchgan, identity=identity, **options)
    click.echo(f"done: {run_dir}/latest.pt  (next: cyclegan-tool export {run_dir}/latest.pt -o model.onnx)")
