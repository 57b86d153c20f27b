"""Loads the compiled extension `cyclegan_tool._C` (built by setup.py from csrc/) if present."""

from __future__ import annotations

import functools

import torch


def _load() -> bool:
    try:
        import cyclegan_tool._C  # noqa: F401  (registers torch.ops.cyclegan_tool.*)
    except ImportError:
        return False
    return True


HAVE_EXTENSION = _load()


@functools.cache
def has_kernel(op: str, device_type: str) -> bool:
    """Whether the extension registered `op` for a device type ('CPU' or 'CUDA')."""
    if not HAVE_EXTENSION:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"cyclegan_tool::{op}", device_type.upper())
