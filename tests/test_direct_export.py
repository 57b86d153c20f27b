"""A checkpoint's first run without torch in the critical path: `.pth` files read without torch
(pth_reader.py), the reference ResNet layout written straight to ONNX (export/direct.py), and the
exact way checked in a process of its own (runtime/exact_worker.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from cyclegan_tool import checkpoints, errors
from cyclegan_tool.export import direct
from cyclegan_tool.export.onnx_export import export_onnx
from cyclegan_tool.export.parity import ort_session
from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights, min_side, pad_multiple, value_range
from cyclegan_tool.pth_reader import read_state_dict


def saved(tmp_path: Path, spec: GeneratorSpec, name: str = "latest_net_G.pth", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = init_weights(build_generator(spec), "normal", 0.1)
    for m in net.modules():  # biases and affine norms that are not all zero or one
        for p in (getattr(m, "bias", None), getattr(m, "weight", None)):
            if isinstance(p, torch.nn.Parameter) and p.dim() == 1:
                with torch.no_grad():
                    p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path / name
    torch.save(net.state_dict(), path)
    return path


SPECS = [GeneratorSpec(name="resnet_6blocks", ngf=8),
         GeneratorSpec(name="resnet_9blocks", ngf=4, input_nc=1, output_nc=3),
         GeneratorSpec(name="resnet_2blocks", ngf=8, norm="instance_affine", use_dropout=True),
         GeneratorSpec(name="resnet_3blocks", ngf=8, norm="none")]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.name}-{s.norm}{'-dropout' if s.use_dropout else ''}")
def test_the_written_graph_computes_what_pytorch_does(tmp_path, spec):
    path = saved(tmp_path, spec)
    weights = direct.read(path)
    assert weights is not None and weights.spec == spec
    model = direct.graph(weights)
    onnx.checker.check_model(model, full_check=True)
    loaded = checkpoints.load_generator(path)
    traced = export_onnx(loaded, tmp_path / "traced.onnx", check=False)
    meta = {p.key: json.loads(p.value) if p.value[:1] in "{[" else p.value for p in model.metadata_props}
    assert meta == {p.key: json.loads(p.value) if p.value[:1] in "{[" else p.value
                    for p in onnx.load(str(traced.path)).metadata_props}
    assert (direct.PAD_MULTIPLE, direct.MIN_SIDE, direct.VALUE_RANGE) == (pad_multiple(spec), min_side(spec),
                                                                          value_range(spec))
    for shape in [(1, spec.input_nc, 32, 40), (2, spec.input_nc, 20, 28)]:
        x = np.random.default_rng(sum(shape)).uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            want = loaded.net(torch.from_numpy(x)).numpy()
        got = ort_session(model.SerializeToString()).run(None, {"input": x})[0]
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("spec", [GeneratorSpec(name="unet_128", ngf=4), GeneratorSpec(name="resnet_6blocks", ngf=8,
                                                                                      norm="batch"),
                                  GeneratorSpec(name="resnet_6blocks", ngf=8, antialias=True, antialias_up=True)],
                         ids=["unet", "batch-norm", "antialias"])
def test_other_architectures_are_left_to_torch(tmp_path, spec):
    assert direct.read(saved(tmp_path, spec)) is None


def test_a_file_that_does_not_fit_its_layout_is_left_to_torch(tmp_path):
    spec = GeneratorSpec(name="resnet_6blocks", ngf=8)
    state = torch.load(saved(tmp_path, spec), weights_only=True)
    for name, change in [("missing", lambda s: s.pop("model.4.weight")),
                         ("shape", lambda s: s.__setitem__("model.4.bias", torch.zeros(3))),
                         ("nan", lambda s: s["model.1.weight"].view(-1).__setitem__(0, float("nan"))),
                         ("fp16", lambda s: s.__setitem__("model.1.weight", s["model.1.weight"].half()))]:
        bad = dict(state)
        bad = {k: v.clone() for k, v in bad.items()}
        change(bad)
        torch.save(bad, tmp_path / f"{name}.pth")
        assert direct.read(tmp_path / f"{name}.pth") is None, name
    # and torch's reading still says what is wrong with them
    with pytest.raises(errors.CheckpointError, match="NaN"):
        checkpoints.load_generator(tmp_path / "nan.pth")


def test_pth_files_are_read_without_torch_only_as_tensors(tmp_path):
    x = torch.arange(24.0).reshape(4, 6)
    torch.save({"t": x.t(), "part": x[1:3, 2:], "count": torch.tensor([3]), "empty": torch.zeros(0)}, tmp_path / "a.pth")
    got = read_state_dict(tmp_path / "a.pth")
    assert set(got) == {"t", "part", "count", "empty"}
    assert np.array_equal(got["t"], x.t().numpy()) and np.array_equal(got["part"], x[1:3, 2:].numpy())
    assert got["count"].dtype == np.int64 and got["empty"].shape == (0,)
    torch.save(torch.nn.Conv2d(2, 2, 1), tmp_path / "module.pth")  # a pickled class: torch's to refuse
    torch.save({"networks": {"gen": torch.zeros(2)}}, tmp_path / "nested.pth")
    torch.save({"w": torch.zeros(2, dtype=torch.float16)}, tmp_path / "half.pth")
    torch.save({"w": torch.zeros(2)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    (tmp_path / "junk.pth").write_bytes(b"PK\x03\x04 not really a zip")
    for name in ("module", "nested", "half", "legacy", "junk"):
        assert read_state_dict(tmp_path / f"{name}.pth") is None, name


def test_a_first_run_of_a_reference_pth_imports_no_torch(tmp_path):
    """In a fresh interpreter, as a user's first run: describing the checkpoint, making its
    forms and converting import no torch; the exact way's check ran in a process of its own."""
    from conftest import write_domain

    path = saved(tmp_path, GeneratorSpec(name="resnet_6blocks", ngf=8))
    write_domain(tmp_path / "in", 2, (40, 36), (0.7, 0.4, 0.2), seed=5)
    code = (
        "import sys; from pathlib import Path\n"
        "import cyclegan_tool as ct\n"
        "from cyclegan_tool.export import forms\n"
        f"p, root = Path({str(path)!r}), Path({str(tmp_path)!r})\n"
        "said = []\n"
        "s = ct.convert(root / 'in', root / 'out', model=p, on_start=said.append)\n"
        "e = forms.exported(p, forms.source_id(ct.runner.describe(p).digest, None, None, 'auto'))\n"
        "print(s.converted, e.suffix, 'torch' in sys.modules)\n"
        "print(said[0])\n")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["2", ".onnx", "False"]
    if importlib.util.find_spec("openvino") is not None:  # a way was checked against the exact one
        assert "from pytorch-fp32 (checked now)" in lines[1]


def test_the_exact_way_in_its_own_process_is_the_exact_way(tmp_path):
    from cyclegan_tool.runtime import exact_worker
    from cyclegan_tool.runtime.torch_backend import TorchBackend

    path = saved(tmp_path, GeneratorSpec(name="resnet_6blocks", ngf=8), "latest_net_G_B.pth")
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    with TorchBackend(path) as be:
        want = be.infer(x)
    got = exact_worker.exact_output(path, x, direction="b2a")
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
    # What goes wrong there is raised here as the same one-line error.
    with pytest.raises(errors.ConfigError, match="latest_net_G_B.pth is the reference's G_B"):
        exact_worker.exact_output(path, x, direction="a2b")
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(errors.CheckpointError, match="broken.pth: not a readable PyTorch checkpoint"):
        exact_worker.exact_output(tmp_path / "broken.pth", x)


def test_a_failure_of_another_kind_in_the_exact_ways_process_is_one_line(tmp_path, monkeypatch):
    """A broken torch install in the check's process (here a `torch` that fails to import, found
    first on PYTHONPATH) is one error naming the checkpoint, not the process's traceback."""
    from cyclegan_tool.runtime import exact_worker

    path = saved(tmp_path, GeneratorSpec(name="resnet_6blocks", ngf=8))
    (tmp_path / "shadow").mkdir()
    (tmp_path / "shadow" / "torch.py").write_text("raise RuntimeError('this torch is broken')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))
    x = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(errors.BackendError, match=r"latest_net_G.pth: PyTorch could not run it \(RuntimeError: this "
                                                  r"torch is broken\)$") as e:
        exact_worker.exact_output(path, x)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_a_network_with_a_tensor_no_file_holds_is_still_loaded_whole(tmp_path, monkeypatch):
    """Checkpoints load into a network built on the meta device; a tensor the file does not hold
    (a non-persistent buffer) would stay without memory, so such a network is built for real."""
    path = saved(tmp_path, GeneratorSpec(name="resnet_6blocks", ngf=8))
    real_build = checkpoints.build_generator

    def with_scale(spec):
        net = real_build(spec)
        net.register_buffer("scale", torch.ones(1), persistent=False)
        return net

    monkeypatch.setattr(checkpoints, "build_generator", with_scale)
    loaded = checkpoints.load_generator(path)
    assert not any(t.is_meta for t in (*loaded.net.parameters(), *loaded.net.buffers()))
    assert loaded.net.scale.item() == 1.0
    monkeypatch.undo()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.net(x), checkpoints.load_generator(path).net(x))
