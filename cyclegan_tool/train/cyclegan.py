"""The CycleGAN model: two generators, two discriminators, their losses and one step.

Naming: `gen_a2b` maps A -> B (the reference's G_A), `gen_b2a` maps B -> A (G_B),
`disc_b` judges images of domain B (the reference's D_A), `disc_a` judges domain A (D_B).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.models import build_discriminator, build_generator
from cyclegan_tool.train.gan_model import GANModel, set_requires_grad
from cyclegan_tool.train.pool import ImagePool

NETWORKS = ("gen_a2b", "gen_b2a", "disc_a", "disc_b")


class CycleGAN(GANModel):
    """Two generators and two discriminators, image pools, cycle and identity losses."""

    NETWORKS = NETWORKS
    GENERATOR_SIDE = ("gen_a2b", "gen_b2a")
    DIRECTIONS = ("a2b", "b2a")

    def __init__(self, cfg, device: torch.device, rank: int = 0):
        super().__init__(cfg, device, rank)
        self.pool_a = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 1 + 1000 * rank)
        self.pool_b = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 2 + 1000 * rank)

    def build_networks(self) -> dict[str, nn.Module]:
        cfg, gspec = self.cfg, self.cfg.generator_spec
        return {"gen_a2b": build_generator(gspec), "gen_b2a": build_generator(gspec.reversed()),
                "disc_a": build_discriminator(cfg.discriminator_spec("a")),
                "disc_b": build_discriminator(cfg.discriminator_spec("b"))}

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
        set_requires_grad([self.nets["disc_a"], self.nets["disc_b"]], False)
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
        self._update(loss_gen, self.opt_gen, self.scaler_gen)
        set_requires_grad([self.nets["disc_a"], self.nets["disc_b"]], True)
        if not cfg.d_first:
            disc_losses = self._disc_step(real_a, real_b, fake_a, fake_b)
        losses.update(disc_losses)
        self._end_step()

        self._visuals = (real_a, fake_b, rec_a, real_b, fake_a, rec_b)
        return {k: v.detach() for k, v in losses.items()}

    def _disc_step(self, real_a, real_b, fake_a, fake_b) -> dict[str, torch.Tensor]:
        """Discriminators: real vs. a fake drawn through the image pool (the fakes are detached)."""
        run = self.run_nets
        pooled_b = self.pool_b.query(fake_b.detach()).to(real_b.dtype)
        pooled_a = self.pool_a.query(fake_a.detach()).to(real_a.dtype)
        with self._autocast():
            loss_b = self._disc_loss(run["disc_b"], real_b, pooled_b)
            loss_a = self._disc_loss(run["disc_a"], real_a, pooled_a)
        self._update(loss_a + loss_b, self.opt_disc, self.scaler_disc)
        return {"disc_b": loss_b, "disc_a": loss_a}

    def visuals(self) -> tuple[tuple[torch.Tensor, ...], ...]:
        """(real_a, fake_b, rec_a) over (real_b, fake_a, rec_b) of the last step."""
        v = tuple(t.detach() for t in self._visuals)
        return v[:3], v[3:]

    def extra_state(self) -> dict:
        return {"pools": {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()}}

    def load_extra_state(self, state: dict) -> None:
        self.pool_a.load_state_dict(state["pools"]["a"], self.device)
        self.pool_b.load_state_dict(state["pools"]["b"], self.device)

    def init_from(self, source: str) -> None:
        """Warm start: load trained networks (see `TrainConfig.init_from`); optimizers stay fresh."""
        from cyclegan_tool.layout import load_into
        from cyclegan_tool.weights import generator_weights

        parts = [p.strip() for p in source.split(",")]
        if len(parts) == 1 and parts[0].lower().endswith(".pt"):
            return super().init_from(parts[0])
        if len(parts) != 2:
            raise ConfigError(f"--init-from {source}: give a cyclegan-tool checkpoint or two generators A2B,B2A")
        for name, part, direction in (("gen_a2b", parts[0], "a2b"), ("gen_b2a", parts[1], "b2a")):
            spec, weights = generator_weights(part, direction)
            want = self.cfg.generator_spec if direction == "a2b" else self.cfg.generator_spec.reversed()
            if spec != want:
                raise ConfigError(f"--init-from {part}: its generator is {spec.to_dict()}, the run's is "
                                  f"{want.to_dict()} (set --netG/--ngf/--norm/--input-nc/--output-nc to match)")
            load_into(self.nets[name], weights, f"--init-from {part}")
