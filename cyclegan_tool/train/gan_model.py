"""What every model family the trainer runs shares: networks built from the config and
initialised, two optimizers (generator side, discriminator side) with their schedules and
gradient scalers, mixed precision, DDP/compile wrapping, and the state a resume restores.

A family (`train/cyclegan.py`, `train/cut.py`) says which networks it has
(`build_networks`), which of them the generator optimizer moves (`GENERATOR_SIDE`), and
writes its own `train_step` and `visuals`. `MODEL_FAMILIES` maps `--model` to the class.
"""

from __future__ import annotations

import contextlib
import itertools

import torch
import torch.nn as nn

from cyclegan_tool.devices import resolve_amp
from cyclegan_tool.models import init_weights
from cyclegan_tool.ops import apply_ops
from cyclegan_tool.train.config import TrainConfig
from cyclegan_tool.train.losses import GANLoss
from cyclegan_tool.train.schedule import PER_STEP, LinearDecay, build_scheduler


def make_optimizer(cfg: TrainConfig, params, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":  # Keras' RMSprop: rho 0.9, epsilon 1e-7 added outside the root
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)
    # The same Adam update as the reference's, in one fused kernel per step: on 2 CPU cores
    # 14 ms instead of 100 ms for the 28 M parameters of ResNet-9 + PatchGAN pairs.
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, 0.999), fused=True)


def _keep_fused(opt: torch.optim.Optimizer) -> None:
    """A loaded optimizer state brings its saved `fused` flag (None from older checkpoints)."""
    if isinstance(opt, torch.optim.Adam):
        for group in opt.param_groups:
            group["fused"], group["foreach"] = True, None


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class GANModel:
    """Networks, optimizers, schedulers and scalers for one training run on one device."""

    NETWORKS: tuple[str, ...] = ()
    GENERATOR_SIDE: tuple[str, ...] = ()  # what opt_gen moves; the rest is opt_disc's
    DIRECTIONS: tuple[str, ...] = ("a2b",)  # the generators it trains, by direction

    def __init__(self, cfg: TrainConfig, device: torch.device, rank: int = 0):
        self.cfg, self.device, self.rank = cfg, device, rank
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        self.nets: dict[str, nn.Module] = self.build_networks()
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        for net in self.nets.values():
            init_weights(net, cfg.init_type, cfg.init_gain)
            apply_ops(net, cfg.ops, device).to(device, memory_format=fmt).train()
        self.gan_loss = GANLoss(cfg.gan_mode)
        gen_side = [n for n in self.NETWORKS if n in self.GENERATOR_SIDE]
        disc_side = [n for n in self.NETWORKS if n not in self.GENERATOR_SIDE]
        self.opt_gen = make_optimizer(cfg, itertools.chain(*(self.nets[n].parameters() for n in gen_side)), cfg.lr)
        self.opt_disc = make_optimizer(cfg, itertools.chain(*(self.nets[n].parameters() for n in disc_side)),
                                       cfg.lr_disc)
        self.sched_gen = build_scheduler(self.opt_gen, cfg, cfg.lr_decay)
        self.sched_disc = build_scheduler(self.opt_disc, cfg, cfg.lr_decay_d)
        self.per_step_schedule = cfg.lr_policy in PER_STEP
        self.amp = resolve_amp(cfg.amp, device)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)
        scale = self.amp == "fp16"
        self.scaler_gen = torch.amp.GradScaler(device.type, enabled=scale)
        self.scaler_disc = torch.amp.GradScaler(device.type, enabled=scale)
        # Every norm but batch norm treats each image on its own, so one call on two stacked
        # batches gives the same numbers as two calls, with larger (faster) kernels and one
        # weight cast and gradient per network instead of two.
        self.stack_calls = cfg.norm != "batch"
        self.run_nets = dict(self.nets)  # what the step calls: maybe DDP-wrapped and compiled
        self.local_nets = dict(self.nets)  # maybe compiled, never DDP (discriminators in the G step)

    def build_networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    # -- wrapping -------------------------------------------------------------------------
    def wrap(self, *, ddp: bool, compile: bool) -> None:
        """Wrap the networks for DDP and/or torch.compile (state_dicts stay unwrapped)."""
        for name, net in self.nets.items():
            run = net
            if ddp:
                from torch.nn.parallel import DistributedDataParallel

                ids = [self.device.index] if self.device.type == "cuda" else None
                run = DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)
            self.run_nets[name] = torch.compile(run) if compile else run
            self.local_nets[name] = torch.compile(net) if compile else net

    def _twice(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(net(x), net(y))`, in one call on `cat([x, y])` where `stack_calls` allows it and the
        images are the same size (`--preprocess none` keeps each image's own)."""
        if not self.stack_calls or x.shape[1:] != y.shape[1:]:
            return net(x), net(y)
        out = net(torch.cat([x, y]))
        return out[:len(x)], out[len(x):]

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _disc_loss(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """(L(D(real), 1) + L(D(fake), 0)) / 2, plus the gradient penalty for wgangp."""
        from cyclegan_tool.train.losses import gradient_penalty

        pred_real, pred_fake = self._twice(disc, real, fake)
        loss = (self.gan_loss(pred_real, True) + self.gan_loss(pred_fake, False)) * 0.5
        if self.cfg.gan_mode == "wgangp":
            loss = loss + gradient_penalty(disc, real, fake)
        return loss

    def _update(self, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    # -- one step -------------------------------------------------------------------------
    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One update of each side. `real_a`, `real_b`: `Tensor[N, C, H, W]` in the generators'
        value range on `self.device`. Returns the detached loss terms (still on the device)."""
        raise NotImplementedError

    def visuals(self) -> tuple[tuple[torch.Tensor, ...], ...]:
        """Rows of images of the last step for the sample grid (first image of each batch)."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        if not self.per_step_schedule:
            self.sched_gen.step()
            self.sched_disc.step()

    def _end_step(self) -> None:
        if self.per_step_schedule:
            self.sched_gen.step()
            self.sched_disc.step()

    @property
    def lr(self) -> float:
        return self.opt_gen.param_groups[0]["lr"]

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "networks": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {"gen": self.opt_gen.state_dict(), "disc": self.opt_disc.state_dict()},
            "schedulers": {"gen": self.sched_gen.state_dict(), "disc": self.sched_disc.state_dict()},
            "scalers": {"gen": self.scaler_gen.state_dict(), "disc": self.scaler_disc.state_dict()},
            **self.extra_state(),
        }

    def extra_state(self) -> dict:
        """A family's own resumable state (image pools, samplers' RNGs)."""
        return {}

    def load_extra_state(self, state: dict) -> None: ...

    def load_state_dict(self, state: dict) -> None:
        from cyclegan_tool.layout import load_into

        for name in self.NETWORKS:
            load_into(self.nets[name], state["networks"][name], f"checkpoint network '{name}'")
        self.opt_gen.load_state_dict(state["optimizers"]["gen"])
        self.opt_disc.load_state_dict(state["optimizers"]["disc"])
        _keep_fused(self.opt_gen)
        _keep_fused(self.opt_disc)
        for sched, key in ((self.sched_gen, "gen"), (self.sched_disc, "disc")):
            sched.load_state_dict(state["schedulers"][key])
            rules = getattr(sched, "lr_lambdas", [])
            for rule in rules:  # the config's schedule wins (it may have been extended)
                if isinstance(rule, LinearDecay):
                    rule.n_epochs, rule.n_epochs_decay = self.cfg.n_epochs, self.cfg.n_epochs_decay
            for group, base, rule in zip(sched.optimizer.param_groups, sched.base_lrs, rules):
                group["lr"] = base * rule(sched.last_epoch)  # the current epoch's rate under that schedule
        if state.get("scalers", {}).get("gen"):
            self.scaler_gen.load_state_dict(state["scalers"]["gen"])
            self.scaler_disc.load_state_dict(state["scalers"]["disc"])
        self.load_extra_state(state)

    def init_from(self, source: str) -> None:
        """Warm start from a checkpoint of the same family (all its networks); optimizers stay fresh."""
        from cyclegan_tool import checkpoints
        from cyclegan_tool.errors import ConfigError
        from cyclegan_tool.layout import load_into

        state = checkpoints.read(source)
        if not checkpoints.is_tool_checkpoint(state):
            raise ConfigError(f"--init-from {source}: not a cyclegan-tool training checkpoint")
        missing = [n for n in self.NETWORKS if n not in state.get("networks", {})]
        if missing:
            raise ConfigError(f"--init-from {source}: a {checkpoints.family(state)} checkpoint; this run "
                              f"({self.cfg.model}) needs {', '.join(missing)}")
        for name in self.NETWORKS:
            load_into(self.nets[name], state["networks"][name], f"{source} network '{name}'")
