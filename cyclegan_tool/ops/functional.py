"""Typed wrappers over the `cyclegan_tool` custom ops, their fake (meta) kernels and
autograd formulas, and the pure-PyTorch reference each falls back to when the compiled
kernel is absent for the tensor's device, or while exporting to ONNX (standard ops only).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cyclegan_tool.ops.library import HAVE_EXTENSION, has_kernel


def _layout(x: torch.Tensor) -> torch.memory_format:
    """Output layout rule, mirroring `layout_of` in csrc/common.h."""
    if x.is_contiguous():
        return torch.contiguous_format
    if x.dim() == 4 and (x.is_contiguous(memory_format=torch.channels_last) or x.stride(1) == 1):
        return torch.channels_last
    return torch.contiguous_format


def _native(x: torch.Tensor, op: str) -> bool:
    return (not has_kernel(op, x.device.type)) or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


# -- reflection pad ---------------------------------------------------------------------------

def reflection_pad2d(x: torch.Tensor, pad: Sequence[int]) -> torch.Tensor:
    """Reflect-pad the last two dims.

    Args:
        x: `Tensor[N, C, H, W]`, NCHW or channels-last, float16/bfloat16/float32/float64.
        pad: (left, right, top, bottom), each smaller than the side it pads.
    Returns:
        `Tensor[N, C, H + top + bottom, W + left + right]` in x's layout.
    """
    pad = [int(p) for p in pad]
    if _native(x, "reflection_pad2d"):
        return F.pad(x, pad, mode="reflect")
    return torch.ops.cyclegan_tool.reflection_pad2d(x, pad)


# -- instance norm ----------------------------------------------------------------------------

def instance_norm_reference(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                            *, eps: float = 1e-5, relu: bool = False,
                            residual: torch.Tensor | None = None) -> torch.Tensor:
    """`act(instance_norm(x) * weight + bias) + residual` with plain PyTorch ops."""
    y = F.instance_norm(x, weight=weight, bias=bias, eps=eps)
    if relu:
        y = F.relu(y)
    return y + residual if residual is not None else y


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  *, eps: float = 1e-5, relu: bool = False, residual: torch.Tensor | None = None) -> torch.Tensor:
    """Instance norm over H x W per sample and channel, with optional fused ReLU and residual add.

    Args:
        x: `Tensor[N, C, H, W]`, NCHW or channels-last; statistics accumulate in float32
            (float64 for float64 input).
        weight, bias: optional `Tensor[C]` (affine).
        relu: apply ReLU after the affine transform.
        residual: optional `Tensor[N, C, H, W]` added last (the ResNet block's skip).
    Returns:
        `Tensor[N, C, H, W]` like x.
    """
    if _native(x, "instance_norm"):
        return instance_norm_reference(x, weight, bias, eps=eps, relu=relu, residual=residual)
    out, _, _ = torch.ops.cyclegan_tool.instance_norm(x, weight, bias, residual, eps, relu)
    return out


if HAVE_EXTENSION:

    @torch.library.register_fake("cyclegan_tool::reflection_pad2d")
    def _pad_fake(x, pad):
        n, c, h, w = x.shape
        return x.new_empty((n, c, h + pad[2] + pad[3], w + pad[0] + pad[1])).contiguous(memory_format=_layout(x))

    @torch.library.register_fake("cyclegan_tool::reflection_pad2d_backward")
    def _pad_backward_fake(grad, pad, in_h, in_w):
        n, c = grad.shape[:2]
        return grad.new_empty((n, c, in_h, in_w)).contiguous(memory_format=_layout(grad))

    def _pad_setup(ctx, inputs, output):
        x, pad = inputs
        ctx.pad, ctx.size = pad, x.shape[-2:]

    def _pad_backward(ctx, grad):
        return torch.ops.cyclegan_tool.reflection_pad2d_backward(grad, ctx.pad, *ctx.size), None

    torch.library.register_autograd("cyclegan_tool::reflection_pad2d", _pad_backward, setup_context=_pad_setup)

    def _pad_double_setup(ctx, inputs, output):
        ctx.pad = inputs[1]

    def _pad_double_backward(ctx, grad):  # the backward of a gather-sum is the pad itself
        return torch.ops.cyclegan_tool.reflection_pad2d(grad, ctx.pad), None, None, None

    torch.library.register_autograd("cyclegan_tool::reflection_pad2d_backward", _pad_double_backward,
                                    setup_context=_pad_double_setup)

    def _stat_dtype(x):
        return torch.float64 if x.dtype == torch.float64 else torch.float32

    @torch.library.register_fake("cyclegan_tool::instance_norm")
    def _norm_fake(x, weight, bias, residual, eps, relu):
        n, c = x.shape[:2]
        out = torch.empty_like(x, memory_format=_layout(x))
        return out, x.new_empty((n, c), dtype=_stat_dtype(x)), x.new_empty((n, c), dtype=_stat_dtype(x))

    @torch.library.register_fake("cyclegan_tool::instance_norm_backward")
    def _norm_backward_fake(grad, x, mean, rstd, weight, bias, relu):
        c = x.shape[1]
        return (torch.empty_like(x, memory_format=_layout(x)), x.new_empty((c,), dtype=_stat_dtype(x)),
                x.new_empty((c,), dtype=_stat_dtype(x)))

    def _norm_setup(ctx, inputs, output):
        x, weight, bias, residual, eps, relu = inputs
        _, mean, rstd = output
        ctx.save_for_backward(x, mean, rstd, weight, bias)
        ctx.relu, ctx.has_residual = relu, residual is not None
        ctx.mark_non_differentiable(mean, rstd)

    def _norm_backward(ctx, grad_out, _grad_mean, _grad_rstd):
        x, mean, rstd, weight, bias = ctx.saved_tensors
        gx, gw, gb = torch.ops.cyclegan_tool.instance_norm_backward(grad_out, x, mean, rstd, weight, bias, ctx.relu)
        gw = gw.to(weight.dtype) if weight is not None else None
        gb = gb.to(bias.dtype) if bias is not None else None
        return gx, gw, gb, (grad_out if ctx.has_residual else None), None, None

    torch.library.register_autograd("cyclegan_tool::instance_norm", _norm_backward, setup_context=_norm_setup)
