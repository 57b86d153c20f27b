"""FID and KID from feature matrices `float [N, D]` (computed in float64).

FID (Heusel et al., 2017): ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)), with the
trace of the matrix square root taken as the sum of the square roots of the eigenvalues of
S_1^(1/2) S_2 S_1^(1/2) (symmetric, so no complex round-off as with a general sqrtm).

KID (Binkowski et al., 2018): the unbiased MMD^2 estimate with the cubic polynomial kernel
k(x, y) = (x.y / D + 1)^3, averaged over random subsets; reported unscaled (not x 1000)
with the standard deviation over the subsets.
"""

from __future__ import annotations

import numpy as np

from cyclegan_tool.errors import DataError


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def _check(name: str, feats: np.ndarray, minimum: int) -> np.ndarray:
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < minimum:
        raise DataError(f"{name}: at least {minimum} images are needed, got {feats.shape[0] if feats.ndim else 0}")
    return feats


def fid_from_features(fake: np.ndarray, real: np.ndarray) -> float:
    """FID between two feature sets (each at least 2 rows)."""
    fake, real = _check("fake images", fake, 2), _check("real images", real, 2)
    mu1, mu2 = fake.mean(0), real.mean(0)
    s1, s2 = np.cov(fake, rowvar=False), np.cov(real, rowvar=False)
    root1 = _psd_sqrt(s1)
    cross = np.linalg.eigvalsh(root1 @ s2 @ root1)
    tr_sqrt = np.sqrt(np.clip(cross, 0.0, None)).sum()
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(value, 0.0)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kid_from_features(fake: np.ndarray, real: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased KID over `subsets` random subsets of
    min(`subset_size`, N_fake, N_real) images from each side (drawn without replacement)."""
    fake, real = _check("fake images", fake, 2), _check("real images", real, 2)
    m = min(subset_size, len(fake), len(real))
    rng = np.random.default_rng(seed)
    values = np.array([_mmd2_unbiased(fake[rng.choice(len(fake), m, replace=False)],
                                      real[rng.choice(len(real), m, replace=False)]) for _ in range(subsets)])
    return float(values.mean()), float(values.std())
