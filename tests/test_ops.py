"""Custom ops (csrc/) against plain PyTorch: outputs, gradients, gradcheck, opcheck, and the
generator with custom ops against the one with native ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cyclegan_tool import ops
from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights

pytestmark = pytest.mark.skipif(not ops.HAVE_EXTENSION, reason="the csrc extension is not built "
                                "(pip install --no-build-isolation -e .)")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and ops.has_kernel("instance_norm", "cuda") else [])
LAYOUTS = [torch.contiguous_format, torch.channels_last]
# Tolerances: max |custom - float64 reference|, scaled by the output's magnitude.
TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}
SHAPES = [(2, 3, 7, 9), (1, 8, 16, 16), (3, 5, 1, 1), (2, 4, 5, 1), (1, 2, 33, 17)]


def ref_norm(x, w, b, relu, res, eps=1e-5):
    """float64 reference (F.instance_norm refuses 1x1 planes, this does not)."""
    x64 = x.double()
    mean = x64.mean(dim=(2, 3), keepdim=True)
    var = x64.var(dim=(2, 3), unbiased=False, keepdim=True)
    y = (x64 - mean) / torch.sqrt(var + eps)
    if w is not None:
        y = y * w.double()[None, :, None, None] + b.double()[None, :, None, None]
    if relu:
        y = y.clamp_min(0)
    return y + res.double() if res is not None else y


def rand(shape, dtype, layout, device, scale=1.0, requires_grad=False):
    t = (torch.randn(shape, dtype=torch.float64) * scale + 0.5).to(device=device, dtype=dtype)
    return t.contiguous(memory_format=layout).requires_grad_(requires_grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [s for s in SHAPES if min(s[2:]) > 1] + [(2, 3, 4, 4)])
def test_reflection_pad_forward_backward(device, dtype, layout, shape):
    pad = (min(3, shape[3] - 1), min(2, shape[3] - 1), min(1, shape[2] - 1), min(3, shape[2] - 1))
    x = rand(shape, dtype, layout, device, requires_grad=True)
    y = ops.reflection_pad2d(x, pad)
    xr = x.detach().double().requires_grad_(True)
    yr = F.pad(xr, pad, mode="reflect")
    assert torch.equal(y.double(), yr.detach())  # a pad copies values exactly
    assert y.is_contiguous(memory_format=layout) or min(y.shape[2:]) == 1
    g = torch.randn_like(yr)
    y.backward(g.to(dtype))
    yr.backward(g.to(dtype).double())
    assert torch.allclose(x.grad.double(), xr.grad, atol=TOL[dtype] * 10, rtol=TOL[dtype])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("relu,residual,affine", [(False, False, False), (True, False, True), (False, True, True),
                                                   (True, True, False)])
def test_instance_norm_forward_backward(device, dtype, layout, shape, relu, residual, affine):
    x = rand(shape, dtype, layout, device, scale=3.0, requires_grad=True)
    c = shape[1]
    w = rand((c,), dtype, torch.contiguous_format, device, requires_grad=True) if affine else None
    b = rand((c,), dtype, torch.contiguous_format, device, requires_grad=True) if affine else None
    res = rand(shape, dtype, layout, device, requires_grad=True) if residual else None
    y = ops.instance_norm(x, w, b, relu=relu, residual=res)
    leaves = [t for t in (x, w, b, res) if t is not None]
    ref_leaves = [t.detach().double().requires_grad_(True) for t in leaves]
    it = iter(ref_leaves)
    xr, wr, br, rr = next(it), (next(it) if affine else None), (next(it) if affine else None), \
        (next(it) if residual else None)
    yr = ref_norm(xr, wr, br, relu, rr)
    tol = TOL[dtype] * max(1.0, yr.abs().max().item())
    assert y.dtype == dtype and y.is_contiguous(memory_format=layout)
    assert (y.double() - yr.detach()).abs().max().item() <= tol
    g = torch.randn_like(yr)
    y.backward(g.to(dtype))
    yr.backward(g)
    for got, want in zip(leaves, ref_leaves):
        scale = max(1.0, want.grad.abs().max().item())
        # Gradients pass through the input rounded to `dtype`, and ReLU masks can flip on ties.
        err = (got.grad.double() - want.grad).abs()
        assert err.max().item() <= 20 * TOL[dtype] * scale * (50 if relu and dtype != torch.float64 else 1)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_float64(device):
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.randn(3, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, device=device, requires_grad=True)
    r = torch.randn(2, 3, 5, 6, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ops.reflection_pad2d(t, (2, 1, 3, 2)), (x,))
    assert torch.autograd.gradcheck(lambda t, a, c, s: ops.instance_norm(t, a, c, residual=s), (x, w, b, r))
    # ReLU's kink: keep inputs away from it by checking the no-ReLU formula plus the mask path
    assert torch.autograd.gradcheck(lambda t: ops.instance_norm(t, relu=True), (x,), atol=1e-5)
    xl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, a, c: ops.instance_norm(t, a, c), (xl, w, b))
    assert torch.autograd.gradgradcheck(lambda t: ops.reflection_pad2d(t, (1, 2, 1, 1)), (x,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_opcheck(device, layout):
    x = torch.randn(2, 4, 6, 5, device=device).contiguous(memory_format=layout).requires_grad_(True)
    w = torch.randn(4, device=device, requires_grad=True)
    b = torch.randn(4, device=device, requires_grad=True)
    r = torch.randn(2, 4, 6, 5, device=device).contiguous(memory_format=layout)
    lib = torch.ops.cyclegan_tool
    torch.library.opcheck(lib.reflection_pad2d, (x, [2, 1, 1, 3]))
    torch.library.opcheck(lib.instance_norm, (x, w, b, r, 1e-5, True))
    torch.library.opcheck(lib.instance_norm, (x, None, None, None, 1e-5, False))
    out, mean, rstd = lib.instance_norm(x.detach(), w.detach(), b.detach(), None, 1e-5, True)
    torch.library.opcheck(lib.instance_norm_backward, (torch.randn_like(out), x.detach(), mean, rstd,
                                                       w.detach(), b.detach(), True))
    torch.library.opcheck(lib.reflection_pad2d_backward, (torch.randn(2, 4, 10, 8, device=device), [2, 1, 1, 3], 6, 5))


def test_bad_arguments_name_the_problem():
    lib = torch.ops.cyclegan_tool
    with pytest.raises(RuntimeError, match="width pads 4, 0 must be smaller than the input width 4"):
        lib.reflection_pad2d(torch.zeros(1, 1, 4, 4), [4, 0, 0, 0])
    with pytest.raises(RuntimeError, match="expected a 4-D tensor"):
        lib.instance_norm(torch.zeros(3, 4), None, None, None, 1e-5, False)
    with pytest.raises(RuntimeError, match=r"weight and bias must have shape \[3\]"):
        lib.instance_norm(torch.zeros(1, 3, 2, 2), torch.ones(4), None, None, 1e-5, False)
    assert lib.reflection_pad2d(torch.zeros(0, 3, 4, 4), [1, 1, 1, 1]).shape == (0, 3, 6, 6)
    assert lib.instance_norm(torch.zeros(0, 3, 4, 4), None, None, None, 1e-5, False)[0].shape == (0, 3, 4, 4)


def test_fallback_without_compiled_kernel(monkeypatch):
    monkeypatch.setattr("cyclegan_tool.ops.functional.has_kernel", lambda op, dev: False)
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(ops.instance_norm(x, relu=True), F.relu(F.instance_norm(x)))
    assert torch.equal(ops.reflection_pad2d(x, (1, 1, 1, 1)), F.pad(x, (1, 1, 1, 1), mode="reflect"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_generator_custom_matches_native_and_checkpoints_cross_load(device, layout):
    torch.manual_seed(0)
    spec = GeneratorSpec(name="resnet_6blocks", ngf=8)
    native = init_weights(build_generator(spec), "normal", 0.05).to(device, memory_format=layout)
    custom = ops.apply_ops(build_generator(spec), "custom", device).to(device, memory_format=layout)
    custom.load_state_dict(native.state_dict())  # keys are identical
    assert list(custom.state_dict()) == list(native.state_dict())
    assert sum(isinstance(m, ops.FusedInstanceNorm) for m in custom.modules()) == 2 + 2 + 6 * 2 + 1
    x = (torch.rand(2, 3, 36, 44, device=device) * 2 - 1).contiguous(memory_format=layout)
    y_native, y_custom = native(x), custom(x)
    assert (y_native - y_custom).abs().max().item() < 1e-4
    y_native.square().mean().backward()
    y_custom.square().mean().backward()
    for (name, p), q in zip(native.named_parameters(), custom.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-4, rtol=1e-3), name
    native2 = build_generator(spec).to(device)
    native2.load_state_dict(custom.state_dict())


def test_training_with_custom_ops_and_export(dataroot, tmp_path):
    from conftest import tiny_config

    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.onnx_export import export_onnx
    from cyclegan_tool.train.trainer import train

    run = train(tiny_config(dataroot, tmp_path, ops="custom", n_epochs=1, n_epochs_decay=0))
    loaded = checkpoints.load_generator(run / "latest.pt")  # loads into a native network
    result = export_onnx(loaded, tmp_path / "g.onnx")
    assert result.parity["checks"]


def test_ops_switch_errors(monkeypatch):
    from cyclegan_tool.errors import ConfigError

    with pytest.raises(ConfigError, match="--ops must be one of"):
        ops.resolve("fast", "cpu")
    monkeypatch.setattr("cyclegan_tool.ops.modules.has_kernel", lambda op, dev: False)
    with pytest.raises(ConfigError, match="--ops custom needs"):
        ops.resolve("custom", "cpu")
    assert ops.resolve("auto", "cpu") in ("native", "custom")
