"""How close one output is to another: PSNR over the model's value range (NumPy only)."""

from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak_to_peak: float = 2.0) -> float:
    """10 log10(peak^2 / MSE) in dB; infinite for equal arrays."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak_to_peak**2 / mse)
