"""Export: ONNX structure, parity with PyTorch, FP16 graph, TensorRT engine building."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from cyclegan_tool import checkpoints
from cyclegan_tool.cli import cli
from cyclegan_tool.errors import ExportError
from cyclegan_tool.export import parity
from cyclegan_tool.export.onnx_export import export_onnx
from cyclegan_tool.onnx_metadata import read_metadata
from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights


def _run(session, x: np.ndarray) -> np.ndarray:
    return session.run(None, {"input": x})[0]


def test_onnx_is_standard_dynamic_and_self_describing(tiny_onnx, tiny_generator):
    model = onnx.load(str(tiny_onnx))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    ops = {n.op_type for n in model.graph.node}
    assert {"Pad", "InstanceNormalization", "Conv", "ConvTranspose", "Tanh"} <= ops
    assert ops <= {"Pad", "InstanceNormalization", "Conv", "ConvTranspose", "Tanh", "Relu", "Add", "Constant"}
    assert all(a.s == b"reflect" for n in model.graph.node if n.op_type == "Pad" for a in n.attribute)
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]
    meta = read_metadata(model)
    assert meta["generator"]["name"] == "resnet_6blocks" and meta["direction"] == "a2b"
    assert meta["conventions"]["value_range"] == [-1.0, 1.0] and meta["pad_multiple"] == 4
    assert meta["source"]["origin"] == "reference"


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 36, 52), (1, 3, 124, 40), (3, 3, 8, 200)])
def test_onnx_runtime_equals_pytorch(tiny_onnx, tiny_generator, shape):
    net = checkpoints.load_generator(tiny_generator).net
    x = torch.rand(shape) * 2 - 1
    with torch.no_grad():
        ref = net(x).numpy()
    out = _run(ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]), x.numpy())
    assert np.abs(out - ref).max() < parity.FP32_MAX_ABS


def test_fp16_graph_is_strongly_typed_with_fp32_norms(tiny_generator, tmp_path):
    res = export_onnx(checkpoints.load_generator(tiny_generator), tmp_path / "g16.onnx", fp16=True)
    model = onnx.load(str(res.path))
    f16 = onnx.TensorProto.FLOAT16
    assert model.graph.input[0].type.tensor_type.elem_type == f16
    assert model.graph.output[0].type.tensor_type.elem_type == f16
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type == "InstanceNormalization":
            cast = producers[node.input[0]]
            assert cast.op_type == "Cast" and cast.attribute[0].i == onnx.TensorProto.FLOAT
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    assert all(i.data_type == f16 for i in model.graph.initializer if i.name in conv_weights)
    # FP16 output against the FP32 graph on a real-looking image, through ONNX Runtime.
    fp32 = export_onnx(checkpoints.load_generator(tiny_generator), tmp_path / "g32.onnx")
    x = (np.random.default_rng(0).random((1, 3, 96, 128)) * 2 - 1).astype(np.float32)
    y32 = _run(ort.InferenceSession(str(fp32.path)), x)
    y16 = _run(ort.InferenceSession(str(res.path)), x.astype(np.float16)).astype(np.float32)
    assert np.isfinite(y16).all() and parity.psnr(y16, y32) > 40
    assert all(c["psnr_db"] > 40 for c in res.parity["checks"])


def test_parity_failure_is_loud_and_writes_nothing(tiny_generator, tmp_path, monkeypatch):
    monkeypatch.setattr(parity, "FP32_MAX_ABS", 0.0)  # a tolerance nothing can meet
    loaded = checkpoints.load_generator(tiny_generator)
    loaded.net.model[1].weight.data += 0  # unchanged; tolerance 0 still fails on rounding
    with pytest.raises(ExportError, match="differs from PyTorch .* nothing was written"):
        export_onnx(loaded, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


@pytest.mark.parametrize("name", ["unet_128", "resnet_9blocks"])
def test_export_other_architectures(tmp_path, name):
    torch.manual_seed(0)
    net = init_weights(build_generator(GeneratorSpec(name=name, ngf=4)))
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    res = export_onnx(checkpoints.load_generator(tmp_path / "latest_net_G.pth"), tmp_path / "g.onnx")
    assert res.parity["checks"] and read_metadata(onnx.load(str(res.path)))["generator"]["name"] == name


def test_export_cli_from_training_checkpoint_b2a(tmp_path, dataroot):
    from conftest import tiny_config

    from cyclegan_tool.train.trainer import train

    run = train(tiny_config(dataroot, tmp_path, n_epochs=1, n_epochs_decay=0))
    res = CliRunner().invoke(cli, ["export", str(run / "latest.pt"), "--direction", "b2a", "-o",
                                   str(tmp_path / "b2a.onnx")])
    assert res.exit_code == 0, res.output
    last = res.stdout.strip().splitlines()[-1]
    assert str(tmp_path / "b2a.onnx") in last and "KiB" in last and "next: cyclegan-tool convert --onnx" in last
    assert read_metadata(onnx.load(str(tmp_path / "b2a.onnx")))["direction"] == "b2a"


def test_export_cli_errors(tmp_path, tiny_generator):
    res = CliRunner().invoke(cli, ["export", str(tiny_generator)])
    assert res.exit_code == 1 and "give -o" in res.output
    res = CliRunner().invoke(cli, ["export", str(tmp_path / "none.pth"), "-o", str(tmp_path / "x.onnx")])
    assert res.exit_code == 1 and "none.pth: no such file" in res.output


HAS_RTX = importlib.util.find_spec("tensorrt_rtx") is not None


def _has_full_trt() -> bool:
    from cyclegan_tool.trt_libs import _try_import

    return _try_import("tensorrt") is not None


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_RTX, reason="TensorRT for RTX is not installed (pip install tensorrt-rtx-cu13)")
@pytest.mark.parametrize("fp16", [True, False])
def test_rtx_engine_build_and_sidecar(tiny_generator, tmp_path, fp16):
    """export -> parse -> build with TensorRT for RTX, which needs no GPU, and the sidecar."""
    plan = tmp_path / "h2z.plan"
    args = ["export", str(tiny_generator), "--engine", str(plan), "--trt", "rtx", "--min-shape", "1x3x32x32",
            "--opt-shape", "2x3x128x128", "--max-shape", "4x3x256x256", "--workspace", "512"]
    res = CliRunner().invoke(cli, args + (["--fp16"] if fp16 else []))
    assert res.exit_code == 0, res.output
    assert plan.stat().st_size > 100_000 and "next: cyclegan-tool convert --engine" in res.stdout
    side = json.loads((tmp_path / "h2z.plan.json").read_text())
    assert side["library"]["name"] == "tensorrt_rtx" and side["precision"] == ("fp16" if fp16 else "fp32")
    assert side["io"]["dtype"] == ("float16" if fp16 else "float32")
    assert side["profile"] == {"min": [1, 3, 32, 32], "opt": [2, 3, 128, 128], "max": [4, 3, 256, 256]}
    assert side["pad_multiple"] == 4 and side["direction"] == "a2b" and side["source"]["sha256"]
    assert side["generator"]["ngf"] == 8 and side["target_compute_capabilities"]
    import hashlib

    assert side["plan_sha256"] == hashlib.sha256(plan.read_bytes()).hexdigest()


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_RTX, reason="TensorRT for RTX is not installed (pip install tensorrt-rtx-cu13)")
def test_rtx_engine_for_chosen_compute_capability_and_bad_profile(tiny_generator, tmp_path):
    args = ["export", str(tiny_generator), "--engine", str(tmp_path / "e.plan"), "--trt", "rtx", "--fp16",
            "--compute-capability", "8.9", "--min-shape", "1x3x32x32", "--opt-shape", "1x3x64x64",
            "--max-shape", "1x3x128x128"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "e.plan.json").read_text())["target_compute_capabilities"] == ["8.9"]
    bad = CliRunner().invoke(cli, args[:-2] + ["--max-shape", "1x3x130x130"])
    assert bad.exit_code == 1 and "multiples of 4" in bad.output


@pytest.mark.tensorrt
@pytest.mark.skipif(not _has_full_trt(), reason="full TensorRT is not installable from the registries reachable "
                    "here (only stub packages); this path runs where NVIDIA's TensorRT wheel is installed")
def test_full_tensorrt_engine_build(tiny_generator, tmp_path):
    res = CliRunner().invoke(cli, ["export", str(tiny_generator), "--engine", str(tmp_path / "t.plan"),
                                   "--trt", "tensorrt", "--fp16"])
    assert res.exit_code == 0, res.output


def test_export_takes_an_exported_onnx_or_a_shipped_name_and_never_overwrites_it(tiny_onnx, tmp_path):
    import shutil

    import cyclegan_tool as ct
    from cyclegan_tool.errors import ConfigError
    from cyclegan_tool.onnx_metadata import read_metadata

    src = tmp_path / "g.onnx"
    shutil.copy(tiny_onnx, src)
    report = ct.export(src, output=tmp_path / "again.onnx")  # parity-checked against the rebuilt network
    meta = read_metadata(onnx.load(str(report.onnx)))
    assert meta["source"]["origin"] == "cyclegan-tool onnx" and meta["direction"] == "a2b"
    before = src.read_bytes()
    with pytest.raises(ConfigError, match="is the model being exported"):
        ct.export(src, output=src)
    assert src.read_bytes() == before
    with pytest.raises(ConfigError, match="says its own architecture"):
        ct.export(src, output=tmp_path / "x.onnx", direction="b2a")
    assert ct.export("horse2zebra", output=tmp_path / "h2z.onnx", check=False).onnx.is_file()
