"""The training loop: `train(config)` is what `cyclegan-tool train` calls.

The loop never prints: it reports through a `Reporter` (the CLI's draws a progress bar)
and `logging`, and writes its artifacts into CHECKPOINTS_DIR/NAME.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from cyclegan_tool import __version__, checkpoints, conventions
from cyclegan_tool.errors import CheckpointError, ConfigError, CycleGANError
from cyclegan_tool.train import artifacts, distributed
from cyclegan_tool.train.config import TrainConfig
from cyclegan_tool.models import pad_multiple
from cyclegan_tool.train.data import EpochSampler, UnalignedDataset
from cyclegan_tool.train.cut import CUT
from cyclegan_tool.train.cyclegan import CycleGAN
from cyclegan_tool.train.plot import write_training_plot
from cyclegan_tool.train.signals import StopOnSignal

log = logging.getLogger("cyclegan_tool.train")


def model_class(model: str):
    """The trainer's class for `--model`."""
    return CycleGAN if model == "cyclegan" else CUT


class Reporter:
    """Progress callbacks; the default does nothing. Only the main rank gets calls."""

    def start(self, *, total_steps: int, done_steps: int, info: dict) -> None: ...
    def step(self, *, step: int, epoch: int, losses: dict[str, float] | None) -> None: ...
    def epoch_end(self, *, epoch: int, total_epochs: int, seconds: float, lr: float,
                  metrics: dict[str, float] | None = None, best: bool = False) -> None: ...
    def close(self) -> None: ...


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class Diverged(CycleGANError):
    """The losses became NaN or infinite: the weights are lost, and nothing is saved over a good checkpoint."""


class Health:
    """Watches the losses for NaN/inf. On the CPU every step is checked; on a GPU a flag is kept
    on the device and read only when the trainer saves or logs (reading it synchronises)."""

    def __init__(self, device: torch.device):
        self.eager = device.type == "cpu"
        self.flag: torch.Tensor | None = None
        self.ok, self.where = True, ""

    def update(self, losses: dict[str, torch.Tensor], step: int, epoch: int) -> None:
        bad = ~torch.isfinite(torch.stack([v.float() for v in losses.values()])).all()
        if self.eager:
            if bad:
                terms = ", ".join(f"{k} {float(v):g}" for k, v in losses.items())
                self.where = f"at epoch {epoch}, step {step} ({terms})"
                self.fail()
        else:
            self.flag = bad if self.flag is None else self.flag | bad
            self.where = f"by epoch {epoch}, step {step}"

    def check(self, step: int) -> None:
        if self.flag is not None and bool(self.flag):
            self.fail()

    def fail(self) -> None:
        self.ok = False
        raise Diverged(f"training diverged: the losses became NaN or infinite {self.where}; nothing was saved after "
                       "that, so latest.pt keeps the last good state (lower --lr, or --amp none, and --resume or start "
                       "again)")


EXTENDABLE = ("n_epochs", "n_epochs_decay")  # what --resume may change besides runtime fields
PER_INVOCATION = ("dataroot", "name", "checkpoints_dir", "until_epoch")  # always from the command


def _load_resume(cfg: TrainConfig, changed: frozenset[str]) -> tuple[TrainConfig, dict]:
    path = Path(cfg.checkpoints_dir) / cfg.name / "latest.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: nothing to resume (no latest.pt in the run folder)")
    state = checkpoints.read(path)
    if not checkpoints.is_tool_checkpoint(state):
        raise CheckpointError(f"{path}: not a cyclegan-tool training checkpoint")
    checkpoints.check_complete(state, path)
    if "config" not in state:
        raise CheckpointError(f"{path}: a cyclegan-tool checkpoint without its config; it cannot be resumed")
    saved = TrainConfig.from_dict(state["config"])
    # Runtime options (device, amp, workers, ...) keep the run's values unless given again.
    runtime = {f.name for f in fields(TrainConfig) if f.metadata.get("runtime")}
    take = set(PER_INVOCATION) | (runtime & changed)
    resumed = replace(saved, **{k: getattr(cfg, k) for k in take})
    fixed = sorted(k for k in changed if k not in EXTENDABLE and getattr(resumed, k) != getattr(cfg, k))
    if fixed:
        raise ConfigError(f"--resume keeps the run's settings; these cannot change: {', '.join(fixed)} "
                          f"(only runtime options and {', '.join(EXTENDABLE)} can)")
    extend = {k: getattr(cfg, k) for k in EXTENDABLE if k in changed}
    if extend:
        resumed = replace(resumed, **extend)
        if resumed.total_epochs < state["epoch"]:
            raise ConfigError(f"the run already finished epoch {state['epoch']}; the new schedule has "
                              f"{resumed.total_epochs} epochs")
        log.info("schedule changed on resume: %s", ", ".join(f"{k}={v}" for k, v in extend.items()))
    return resumed, state


def train(cfg: TrainConfig, *, resume: bool = False, reporter: Reporter | None = None,
          changed: frozenset[str] = frozenset()) -> Path:
    """Train (or resume) a CycleGAN; returns the run folder. Under torchrun, every rank calls it.

    On `resume` the checkpoint's config is authoritative except for runtime fields; `changed`
    names the options the user set explicitly, of which `n_epochs` and `n_epochs_decay` may
    extend (or shorten) the schedule of the resumed run.
    """
    reporter = reporter or Reporter()
    info, device = distributed.init(cfg.device)
    try:
        run_dir = _train(cfg, resume, reporter, info, device, changed)
        distributed.finish(info)
        return run_dir
    finally:
        distributed.shutdown(info)


def _train(cfg: TrainConfig, resume: bool, reporter: Reporter, info: distributed.DistInfo,
           device: torch.device, changed: frozenset[str]) -> Path:
    state = None
    run_dir = Path(cfg.checkpoints_dir) / cfg.name
    if resume:
        cfg, state = _load_resume(cfg, changed)
    elif (run_dir / "latest.pt").exists():
        raise ConfigError(f"{run_dir} already holds a run; add --resume to continue it or pick another --name")
    cfg.validate()
    if cfg.amp == "fp16" and device.type == "cpu":  # (auto never picks fp16)
        log.warning("--amp fp16 on the CPU is slow; bf16 is the CPU's fast mixed precision")

    dataset = UnalignedDataset(cfg)
    cfg = dataset.cfg.validate()  # channels resolved from the data
    model = model_class(cfg.model)(cfg, device, rank=info.rank)
    epoch, batches_done, step = 0, 0, 0
    if state is not None:
        model.load_state_dict(state)
        _set_rng_state(state["rng"], device)
        epoch, batches_done, step = state["epoch"], state["batches_done"], state["step"]
    elif cfg.init_from:
        model.init_from(cfg.init_from)
    model.wrap(ddp=info.enabled, compile=cfg.compile)

    sampler = EpochSampler(len(dataset), shuffle=not cfg.serial_batches, seed=cfg.seed,
                           rank=info.rank, world=info.world)
    workers = 0 if dataset.in_memory and cfg.workers < 0 else cfg.loader_workers
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=workers,
                        pin_memory=device.type == "cuda", drop_last=False)
    steps_per_epoch = math.ceil(math.ceil(len(dataset) / info.world) / cfg.batch_size)
    last_epoch = min(cfg.total_epochs, cfg.until_epoch or cfg.total_epochs)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format

    evaluator = None
    if cfg.eval_every and info.is_main:
        from cyclegan_tool.train.evaluation import TrainingEvaluator

        evaluator = TrainingEvaluator(cfg, device, dataset.split, model.DIRECTIONS)
    best = (state or {}).get("best") or {}
    if best.get("metric") != cfg.best_metric:
        best = {}

    health = Health(device)

    def save(path: Path, epoch_: int, batches_: int) -> None:
        health.check(step)  # never replace a good checkpoint with diverged weights
        checkpoints.save(path, {
            "format": checkpoints.FORMAT, "format_version": checkpoints.FORMAT_VERSION,
            "tool_version": __version__, "created": datetime.now(timezone.utc).isoformat(),
            "model": cfg.model, "config": cfg.to_dict(), "conventions": conventions.describe(dataset.value_range),
            "arch": checkpoints.arch_entry(cfg.generator_spec, cfg.discriminator_spec("b"),
                                           cfg.discriminator_spec("a") if "disc_a" in model.nets else None),
            "epoch": epoch_, "batches_done": batches_, "step": step, "rng": _rng_state(device), "best": best,
            **model.state_dict(),
        })

    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.glob(".*.tmp"):  # half-written checkpoints of a killed run (atomic_write's)
            stale.unlink(missing_ok=True)
        artifacts.write_config(run_dir, cfg, {"world_size": info.world, "device": str(device),
                                              "images_a": len(dataset.paths_a), "images_b": len(dataset.paths_b),
                                              "validation": dataset.split.describe(Path(cfg.dataroot))})
        (run_dir / "samples").mkdir(exist_ok=True)
    loss_log = artifacts.LossLog(run_dir) if info.is_main else None
    board = artifacts.TensorBoard(run_dir) if cfg.tensorboard and info.is_main else None
    bad_seen: set[str] = set()
    if info.is_main:
        reporter.start(total_steps=steps_per_epoch * (last_epoch - epoch) - batches_done, done_steps=step,
                       info={"device": str(device), "world_size": info.world, "run_dir": str(run_dir),
                             "amp": model.amp,
                             "images_a": len(dataset.paths_a), "images_b": len(dataset.paths_b),
                             "non_defaults": cfg.non_defaults(), "resumed_at": (epoch, batches_done) if state else None})
    stop = StopOnSignal().install()
    try:
        while epoch < last_epoch:
            t0 = time.perf_counter()
            dataset.set_epoch(epoch)
            sampler.set_epoch(epoch, skip=batches_done * cfg.batch_size)
            for batch in loader:
                if stop.requested:  # between steps: the saved state is exactly that of a finished step
                    raise KeyboardInterrupt
                real_a = batch["a"].to(device, non_blocking=True).contiguous(memory_format=fmt)
                real_b = batch["b"].to(device, non_blocking=True).contiguous(memory_format=fmt)
                losses = model.train_step(real_a, real_b)
                step += 1
                batches_done += 1
                health.update(losses, step, epoch + 1)
                for msg in filter(None, "\n".join(batch["bad"]).split("\n")):
                    if msg not in bad_seen:
                        bad_seen.add(msg)
                        log.warning("skipped unreadable image: %s", msg)
                if not info.is_main:
                    continue
                logged = None
                if cfg.print_freq and step % cfg.print_freq == 0:
                    health.check(step)
                    logged = {k: round(float(v), 5) for k, v in losses.items()}
                    loss_log.write({"epoch": epoch + 1, "step": step, "lr": model.lr, **logged})
                    if board:
                        board.write(step, logged)
                if cfg.sample_freq and step % cfg.sample_freq == 0:
                    artifacts.write_sample_grid(run_dir / "samples" / f"step_{step:07d}.png", model.visuals(),
                                                dataset.value_range)
                if cfg.save_latest_freq and step % cfg.save_latest_freq == 0 and batches_done < steps_per_epoch:
                    save(run_dir / "latest.pt", epoch, batches_done)
                reporter.step(step=step, epoch=epoch + 1, losses=logged)
            if info.is_main and batches_done:  # a short epoch still leaves its losses and a sample
                if cfg.print_freq and step % cfg.print_freq:
                    loss_log.write({"epoch": epoch + 1, "step": step, "lr": model.lr,
                                    **{k: round(float(v), 5) for k, v in losses.items()}})
                if cfg.sample_freq and step % cfg.sample_freq:
                    artifacts.write_sample_grid(run_dir / "samples" / f"step_{step:07d}.png", model.visuals(),
                                                dataset.value_range)
            model.end_epoch()
            epoch, batches_done = epoch + 1, 0
            if info.is_main:
                metrics, improved = None, False
                if evaluator and (epoch % cfg.eval_every == 0 or epoch == last_epoch):
                    metrics = evaluator(model.nets, pad_multiple(cfg.generator_spec))
                    loss_log.write({"epoch": epoch, "step": step, **metrics})
                    if board:
                        board.write(step, metrics, prefix="test")
                    value = metrics[cfg.best_metric]
                    improved = not best or value < best["value"]
                    if improved:
                        best = {"metric": cfg.best_metric, "value": value, "epoch": epoch, "step": step}
                save(run_dir / "latest.pt", epoch, 0)
                if improved:
                    save(run_dir / "best.pt", epoch, 0)
                artifacts.write_reference_generators(run_dir, model.nets, "latest", cfg.netG, cfg.model)
                if cfg.save_epoch_freq and epoch % cfg.save_epoch_freq == 0:
                    save(run_dir / f"epoch_{epoch:04d}.pt", epoch, 0)
                    artifacts.write_reference_generators(run_dir, model.nets, str(epoch), cfg.netG, cfg.model)
                write_training_plot(run_dir / "training.png", loss_log.records())
                reporter.epoch_end(epoch=epoch, total_epochs=cfg.total_epochs,
                                   seconds=time.perf_counter() - t0, lr=model.lr, metrics=metrics, best=improved)
    except Diverged:
        raise
    except KeyboardInterrupt:
        if info.is_main and not info.enabled and health.ok:
            save(run_dir / "latest.pt", epoch, batches_done)
            by = f" by {stop.requested}" if stop.requested else ""
            raise CycleGANError(f"interrupted{by} at epoch {epoch + 1}, step {step}; saved {run_dir / 'latest.pt'} "
                                "(continue with --resume)") from None
        raise
    except Exception:
        if info.is_main and not info.enabled and health.ok:  # keep what was learned up to the last finished step
            try:
                save(run_dir / "latest.pt", epoch, batches_done)
                log.error("training stopped by an error at epoch %d, step %d; saved %s (continue with --resume "
                          "once the cause is fixed)", epoch + 1, step, run_dir / "latest.pt")
            except Exception as save_error:  # the original error matters more
                log.error("could not save latest.pt after the error: %s", save_error)
        raise
    finally:
        stop.restore()
        reporter.close()
        if board:
            board.close()
    if bad_seen:
        log.warning("%d unreadable image(s) were skipped", len(bad_seen))
    if info.enabled:
        if not distributed.weights_agree(model.nets, device):
            raise CycleGANError("weights differ between ranks after training (a DDP bug)")
        log.info("weights identical on all %d ranks", info.world)
    return run_dir
