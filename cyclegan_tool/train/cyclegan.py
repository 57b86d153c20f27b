"""The CycleGAN model: two generators, two discriminators, their losses and one step.

Naming: `gen_a2b` maps A -> B (the reference's G_A), `gen_b2a` maps B -> A (G_B),
`disc_b` judges images of domain B (the reference's D_A), `disc_a` judges domain A (D_B).
"""

from __future__ import annotations

import contextlib
import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F

from cyclegan_tool.devices import resolve_amp
from cyclegan_tool.errors import ConfigError
from cyclegan_tool.models import build_discriminator, build_generator, init_weights
from cyclegan_tool.ops import apply_ops
from cyclegan_tool.train.config import TrainConfig
from cyclegan_tool.train.losses import GANLoss, gradient_penalty
from cyclegan_tool.train.pool import ImagePool
from cyclegan_tool.train.schedule import PER_STEP, LinearDecay, build_scheduler

NETWORKS = ("gen_a2b", "gen_b2a", "disc_a", "disc_b")


def _optimizer(cfg: TrainConfig, params, lr: float) -> torch.optim.Optimizer:
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


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class CycleGAN:
    """Networks, optimizers, schedulers and image pools for one training run on one device."""

    def __init__(self, cfg: TrainConfig, device: torch.device, rank: int = 0):
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        gspec = cfg.generator_spec
        self.nets: dict[str, nn.Module] = {
            "gen_a2b": build_generator(gspec), "gen_b2a": build_generator(gspec.reversed()),
            "disc_a": build_discriminator(cfg.discriminator_spec("a")),
            "disc_b": build_discriminator(cfg.discriminator_spec("b")),
        }
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        for net in self.nets.values():
            init_weights(net, cfg.init_type, cfg.init_gain)
            apply_ops(net, cfg.ops, device).to(device, memory_format=fmt).train()
        self.gan_loss = GANLoss(cfg.gan_mode)
        self.opt_gen = _optimizer(cfg, itertools.chain(self.nets["gen_a2b"].parameters(),
                                                       self.nets["gen_b2a"].parameters()), cfg.lr)
        self.opt_disc = _optimizer(cfg, itertools.chain(self.nets["disc_a"].parameters(),
                                                        self.nets["disc_b"].parameters()), cfg.lr_disc)
        self.sched_gen = build_scheduler(self.opt_gen, cfg, cfg.lr_decay)
        self.sched_disc = build_scheduler(self.opt_disc, cfg, cfg.lr_decay_d)
        self.per_step_schedule = cfg.lr_policy in PER_STEP
        self.pool_a = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 1 + 1000 * rank)
        self.pool_b = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 2 + 1000 * rank)
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

    # -- one step -------------------------------------------------------------------------
    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One generator update then one discriminator update (the reference order), or the
        other way round with `d_first` (the Keras chapter's).

        `real_a`, `real_b`: `Tensor[N, C, H, W]` in the generators' value range on `self.device`.
        Returns the detached loss terms (still on the device: reading them synchronises, so
        the trainer does it only when it logs); keeps the step's images for `visuals()`.
        """
        cfg, run = self.cfg, self.run_nets
        gen_a2b, gen_b2a = run["gen_a2b"], run["gen_b2a"]
        disc_a, disc_b = self.local_nets["disc_a"], self.local_nets["disc_b"]  # no DDP sync in the G step
        identity = cfg.lambda_identity > 0
        with self._autocast():
            if identity:  # G_A(A) with G_A(B), G_B(B) with G_B(A)
                fake_b, idt_b = self._twice(gen_a2b, real_a, real_b)
                fake_a, idt_a = self._twice(gen_b2a, real_b, real_a)
            else:
                fake_b, fake_a = gen_a2b(real_a), gen_b2a(real_b)
            rec_a = gen_b2a(fake_b)  # G_B(G_A(A))
            rec_b = gen_a2b(fake_a)  # G_A(G_B(B))
        losses: dict[str, torch.Tensor] = {}  # the generator terms; the discriminators' are added after
        disc_losses = self._disc_step(real_a, real_b, fake_a, fake_b) if cfg.d_first else {}

        # Generators: fool both discriminators, reconstruct both domains, keep identity.
        _set_requires_grad([self.nets["disc_a"], self.nets["disc_b"]], False)
        self.opt_gen.zero_grad(set_to_none=True)
        with self._autocast():
            if identity:
                # ||G_A(B) - B||_1 and ||G_B(A) - A||_1, weighted lambda * lambda_identity.
                losses["idt_b"] = F.l1_loss(idt_b.float(), real_b) * cfg.lambda_b * cfg.lambda_identity
                losses["idt_a"] = F.l1_loss(idt_a.float(), real_a) * cfg.lambda_a * cfg.lambda_identity
            losses["gan_a2b"] = self.gan_loss(disc_b(fake_b), True)  # L_GAN(G_A, D_A)
            losses["gan_b2a"] = self.gan_loss(disc_a(fake_a), True)  # L_GAN(G_B, D_B)
            # Cycle consistency: ||G_B(G_A(A)) - A||_1 and ||G_A(G_B(B)) - B||_1.
            losses["cycle_a"] = F.l1_loss(rec_a.float(), real_a) * cfg.lambda_a
            losses["cycle_b"] = F.l1_loss(rec_b.float(), real_b) * cfg.lambda_b
            loss_gen = sum(losses.values())
        self.scaler_gen.scale(loss_gen).backward()
        self.scaler_gen.step(self.opt_gen)
        self.scaler_gen.update()
        _set_requires_grad([self.nets["disc_a"], self.nets["disc_b"]], True)
        if not cfg.d_first:
            disc_losses = self._disc_step(real_a, real_b, fake_a, fake_b)
        losses.update(disc_losses)
        if self.per_step_schedule:
            self.sched_gen.step()
            self.sched_disc.step()

        self._visuals = (real_a, fake_b, rec_a, real_b, fake_a, rec_b)
        return {k: v.detach() for k, v in losses.items()}

    def _disc_step(self, real_a, real_b, fake_a, fake_b) -> dict[str, torch.Tensor]:
        """Discriminators: real vs. a fake drawn through the image pool (the fakes are detached)."""
        run = self.run_nets
        self.opt_disc.zero_grad(set_to_none=True)
        pooled_b = self.pool_b.query(fake_b.detach()).to(real_b.dtype)
        pooled_a = self.pool_a.query(fake_a.detach()).to(real_a.dtype)
        with self._autocast():
            loss_b = self._disc_loss(run["disc_b"], real_b, pooled_b)
            loss_a = self._disc_loss(run["disc_a"], real_a, pooled_a)
        self.scaler_disc.scale(loss_a + loss_b).backward()
        self.scaler_disc.step(self.opt_disc)
        self.scaler_disc.update()
        return {"disc_b": loss_b, "disc_a": loss_a}

    def _disc_loss(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """(L(D(real), 1) + L(D(fake), 0)) / 2, plus the gradient penalty for wgangp."""
        pred_real, pred_fake = self._twice(disc, real, fake)
        loss = (self.gan_loss(pred_real, True) + self.gan_loss(pred_fake, False)) * 0.5
        if self.cfg.gan_mode == "wgangp":
            loss = loss + gradient_penalty(disc, real, fake)
        return loss

    def visuals(self) -> tuple[torch.Tensor, ...]:
        """(real_a, fake_b, rec_a, real_b, fake_a, rec_b) of the last step."""
        return tuple(t.detach() for t in self._visuals)

    def end_epoch(self) -> None:
        if not self.per_step_schedule:
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
            "pools": {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()},
        }

    def init_from(self, source: str) -> None:
        """Warm start: load trained networks (see `TrainConfig.init_from`); optimizers stay fresh."""
        from cyclegan_tool import checkpoints
        from cyclegan_tool.models.layout import load_into
        from cyclegan_tool.weights import generator_weights

        parts = [p.strip() for p in source.split(",")]
        if len(parts) == 1 and parts[0].lower().endswith(".pt"):
            state = checkpoints.read(parts[0])
            if not checkpoints.is_tool_checkpoint(state):
                raise ConfigError(f"--init-from {parts[0]}: not a cyclegan-tool training checkpoint")
            for name in NETWORKS:
                load_into(self.nets[name], state["networks"][name], f"{parts[0]} network '{name}'")
            return
        if len(parts) != 2:
            raise ConfigError(f"--init-from {source}: give a cyclegan-tool checkpoint or two generators A2B,B2A")
        for name, part, direction in (("gen_a2b", parts[0], "a2b"), ("gen_b2a", parts[1], "b2a")):
            spec, weights = generator_weights(part, direction)
            want = self.cfg.generator_spec if direction == "a2b" else self.cfg.generator_spec.reversed()
            if spec != want:
                raise ConfigError(f"--init-from {part}: its generator is {spec.to_dict()}, the run's is "
                                  f"{want.to_dict()} (set --netG/--ngf/--norm/--input-nc/--output-nc to match)")
            load_into(self.nets[name], weights, f"--init-from {part}")

    def load_state_dict(self, state: dict) -> None:
        from cyclegan_tool.models.layout import load_into

        for name in NETWORKS:
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
        self.pool_a.load_state_dict(state["pools"]["a"], self.device)
        self.pool_b.load_state_dict(state["pools"]["b"], self.device)
