"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020): one generator A -> B, one
discriminator of domain B, and PatchNCE between each input and its output instead of a
second generator and a cycle.

Networks: `gen_a2b` (the CUT code's G), `disc_b` (its D) and `head` (its F, the patch MLPs).
Per step (the CUT code's `optimize_parameters`):

    fake = G(x)               x = real_a, or [real_a, real_b] with the identity term (CUT),
                              mirrored left-right with probability 1/2 (FastCUT)
    D:  (L(D(real_b), 1) + L(D(fake_b.detach()), 0)) / 2
    G:  lambda_GAN L(D(fake_b), 1) + NCE(real_a, fake_b)          (FastCUT, lambda_NCE 10)
        lambda_GAN L(D(fake_b), 1) + (NCE(real_a, fake_b) + NCE(real_b, idt_b)) / 2   (CUT)

    NCE(src, out) = mean over layers l of lambda_NCE * mean PatchNCE(F_l(G_enc_l(out)), F_l(G_enc_l(src)))

The keys (the source's features) carry no gradient, so they come from the generator's own
forward pass where that pass saw the source unmirrored (the same numbers: instance norm
treats each image alone), and from an extra pass without gradients otherwise.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cyclegan_tool.checkpoints import family_networks
from cyclegan_tool.models import build_discriminator, build_generator
from cyclegan_tool.train.gan_model import GANModel, set_requires_grad
from cyclegan_tool.train.nce import PatchSampler, patch_nce_loss


def nce_layers(cfg) -> tuple[int, ...]:
    return tuple(int(i) for i in cfg.nce_layers.split(","))


class CUT(GANModel):
    """CUT or FastCUT, as `cfg.model` and its defaults (`train/families.py`) say."""

    NETWORKS = family_networks("cut")
    GENERATOR_SIDE = ("gen_a2b", "head")  # one Adam over G and F equals the CUT code's two (same settings)
    DIRECTIONS = ("a2b",)

    def __init__(self, cfg, device: torch.device, rank: int = 0):
        self.layers = nce_layers(cfg)
        super().__init__(cfg, device, rank)
        # Patch locations and mirroring draw from their own generator, saved with the run, so a
        # resumed run draws what an uninterrupted one would.
        self.rng = torch.Generator().manual_seed(cfg.seed * 2 + 3 + 1000 * rank)

    def build_networks(self) -> dict[str, nn.Module]:
        cfg = self.cfg
        gen = build_generator(cfg.generator_spec)
        head = PatchSampler(gen.feature_channels(self.layers), width=cfg.netf_nc, num_patches=cfg.num_patches)
        return {"gen_a2b": gen, "disc_b": build_discriminator(cfg.discriminator_spec("b")), "head": head}

    # -- one step -------------------------------------------------------------------------
    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The discriminator's update then the generator's (the CUT code's order; without
        `d_first` the other way round). Returns the detached loss terms."""
        cfg, n = self.cfg, len(real_a)
        identity = cfg.nce_idt and cfg.lambda_nce > 0
        real = torch.cat([real_a, real_b]) if identity else real_a
        flipped = cfg.flip_equivariance and bool(torch.rand(1, generator=self.rng) < 0.5)
        # The forward pass's features of the sources serve as keys when they are the keys' own numbers.
        reuse = not flipped and not cfg.dropout and self.stack_calls and cfg.lambda_nce > 0
        with self._autocast():
            x = torch.flip(real, [3]) if flipped else real
            fake, keys = self.run_nets["gen_a2b"](x, features=self.layers) if reuse else (
                self.run_nets["gen_a2b"](x), None)
        fake_b, idt_b = fake[:n], (fake[n:] if identity else None)
        losses: dict[str, torch.Tensor] = {}
        if cfg.d_first:
            losses.update(self._disc_step(real_b, fake_b))

        set_requires_grad([self.nets["disc_b"]], False)
        with self._autocast():
            loss_gen = torch.zeros((), device=real_a.device)
            if cfg.lambda_gan > 0:
                losses["gan_a2b"] = self.gan_loss(self.local_nets["disc_b"](fake_b), True) * cfg.lambda_gan
                loss_gen = loss_gen + losses["gan_a2b"]
            if cfg.lambda_nce > 0:
                keys_a = [k[:n].detach() for k in keys] if keys else None
                losses["nce"] = self._nce(real_a, fake_b, keys_a, flipped)
                nce = losses["nce"]
                if identity:
                    keys_b = [k[n:].detach() for k in keys] if keys else None
                    losses["nce_idt"] = self._nce(real_b, idt_b, keys_b, flipped)
                    nce = (nce + losses["nce_idt"]) * 0.5
                loss_gen = loss_gen + nce
        self._update(loss_gen, self.opt_gen, self.scaler_gen)
        set_requires_grad([self.nets["disc_b"]], True)
        if not cfg.d_first:
            losses.update(self._disc_step(real_b, fake_b))
        self._end_step()

        unflip = (lambda t: torch.flip(t, [3])) if flipped else (lambda t: t)
        self._visuals = ((real_a, unflip(fake_b)), (real_b, unflip(idt_b)) if identity else (real_b,))
        return {k: v.detach() for k, v in losses.items()}

    def _disc_step(self, real_b: torch.Tensor, fake_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The discriminator on the step's own fake (the CUT code keeps no image pool)."""
        with self._autocast():
            loss = self._disc_loss(self.run_nets["disc_b"], real_b, fake_b.detach())
        self._update(loss, self.opt_disc, self.scaler_disc)
        return {"disc_b": loss}

    def _nce(self, source: torch.Tensor, out: torch.Tensor, keys: list[torch.Tensor] | None,
             flipped: bool) -> torch.Tensor:
        """PatchNCE between `source` (`Tensor[N, C, H, W]`, unmirrored) and the generator's `out`
        for it (mirrored when `flipped`, so its features are mirrored back to line up)."""
        cfg, head = self.cfg, self.run_nets["head"]
        queries = self.local_nets["gen_a2b"].encode(out, self.layers)
        if flipped:
            queries = [torch.flip(q, [3]) for q in queries]
        with torch.no_grad():
            if keys is None:
                keys = self.local_nets["gen_a2b"].encode(source, self.layers)
            key_patches, ids = self.local_nets["head"](keys, generator=self.rng)
        query_patches, _ = head(queries, ids)
        total = sum((patch_nce_loss(q.float(), k.float(), len(source), cfg.nce_t) * cfg.lambda_nce).mean()
                    for q, k in zip(query_patches, key_patches))
        return total / len(self.layers)

    def visuals(self) -> tuple[tuple[torch.Tensor, ...], ...]:
        """(real_a, fake_b) over (real_b, idt_b) of the last step (real_b alone for FastCUT)."""
        return tuple(tuple(t.detach() for t in row) for row in self._visuals)

    def extra_state(self) -> dict:
        return {"sampler_rng": self.rng.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.rng.set_state(state["sampler_rng"])
