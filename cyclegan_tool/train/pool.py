"""The history of generated images the discriminators learn from (Shrivastava et al.)."""

from __future__ import annotations

import random

import torch


class ImagePool:
    """Holds up to `size` past fakes. `query(fakes)` returns a batch of the same shape in
    which each image is, with probability 1/2 once the pool is full, swapped for a stored
    one (which the new image replaces). With `size` 0 it returns its input.

    The pool draws from its own seeded RNG and its state round-trips through
    `state_dict`, so a resumed run draws exactly what an uninterrupted one would.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """`Tensor[N, C, H, W]` -> `Tensor[N, C, H, W]` (detached)."""
        fakes = fakes.detach().float()  # one dtype in the pool, whatever the autocast
        if self.size == 0:
            return fakes
        out = []
        for image in fakes:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                k = self.rng.randint(0, self.size - 1)
                out.append(self.images[k].clone())
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        images = torch.cat(self.images, 0).float().cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": images, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.size = state["size"]
        imgs = state["images"]
        self.images = [im.unsqueeze(0).to(device) for im in imgs] if imgs.numel() else []
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
