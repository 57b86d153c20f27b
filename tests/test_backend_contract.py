"""Every backend keeps one contract, and the pipeline keeps every backend's limits.

- The contract (all backends that run on this CPU: PyTorch, ONNX Runtime FP32 and FP16
  graphs): declared limits, shapes and dtypes out, refusals, close() releasing the model.
- Engine limits: real TensorRT-for-RTX engines are built here (no GPU needed to build), and
  their sidecar limits drive a CPU backend through the whole convert pipeline: no batch over
  the engine's maximum, no shape outside its profile, nothing half-failed.
- GPU-style failures (out of memory, kernel errors) fail one file or batch, never the run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_domain

from cyclegan_tool.cli import cli
from cyclegan_tool.errors import BackendError
from cyclegan_tool.export.parity import psnr
from cyclegan_tool.runtime import ConvertOptions, plan_jobs, run_convert
from cyclegan_tool.runtime.base import Backend
from cyclegan_tool.runtime.ort_backend import OnnxRuntimeBackend
from cyclegan_tool.runtime.torch_backend import TorchBackend

HAS_RTX = importlib.util.find_spec("tensorrt_rtx") is not None
RESOURCE = {"onnxruntime": "session", "pytorch": "net", "openvino": "forms"}
HAS_OV = importlib.util.find_spec("openvino") is not None
needs_ov = pytest.mark.skipif(not HAS_OV, reason="OpenVINO is not installed (pip install '.[openvino]')")


@pytest.fixture(scope="module")
def fp16_onnx(tiny_generator) -> Path:
    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.onnx_export import export_onnx

    out = tiny_generator.parent / "tiny_fp16.onnx"
    if not out.exists():
        export_onnx(checkpoints.load_generator(tiny_generator), out, fp16=True)
    return out


@pytest.fixture(params=["pytorch", "pytorch-bf16", "onnxruntime-fp32", "onnxruntime-fp16",
                        pytest.param("openvino-fp32", marks=needs_ov), pytest.param("openvino-fp16", marks=needs_ov),
                        pytest.param("openvino-bf16", marks=needs_ov)])
def cpu_backend(request, tiny_generator, tiny_onnx, fp16_onnx) -> Backend:
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    return {"pytorch": lambda: TorchBackend(tiny_generator, device="cpu"),
            "pytorch-bf16": lambda: TorchBackend(tiny_generator, device="cpu", precision="bf16"),
            "onnxruntime-fp32": lambda: OnnxRuntimeBackend(tiny_onnx, device="cpu"),
            "onnxruntime-fp16": lambda: OnnxRuntimeBackend(fp16_onnx, device="cpu"),
            "openvino-fp32": lambda: OpenVINOBackend(tiny_onnx),
            "openvino-fp16": lambda: OpenVINOBackend(fp16_onnx),
            "openvino-bf16": lambda: OpenVINOBackend(tiny_onnx, compute="bf16")}[request.param]()


def test_backend_contract(cpu_backend, tiny_generator):
    with cpu_backend as be:
        info = be.info
        assert info.min_batch >= 1 and (info.max_batch is None or info.max_batch >= info.min_batch)
        assert info.input_dtype in ("float32", "float16") and info.layout == "NCHW"
        assert info.input_dtype == ("float16" if info.precision == "fp16" else "float32")
        m = info.pad_multiple
        x = np.random.default_rng(0).random((2, 3, 5 * m, 3 * m), np.float32) * 2 - 1
        y = be.infer(x)  # NumPy in, NumPy out: no torch on the ONNX paths
        assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == np.float32
        assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
        as_torch = be.infer(torch.from_numpy(x[:1]))  # a torch tensor comes back as one
        assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32
        reduced = info.precision in ("fp16", "bf16") or info.extra.get("compute") == "bf16"
        if reduced:
            # Reduced-precision kernels may block a batch differently from a single image (CPUs
            # with AMX do), so hold each result to the FP32 model within the precision instead.
            with TorchBackend(tiny_generator, device="cpu") as fp32:
                ref = fp32.infer(x)
            assert psnr(be.infer(x[1:]), ref[1:]) >= 30
            assert psnr(y, ref) >= 30
        else:
            assert np.allclose(be.infer(x[1:]), y[1:], atol=1e-4)
            assert np.allclose(as_torch.numpy(), y[:1], atol=1e-4)
        with pytest.raises(BackendError, match=r"expected \[N, 3, H, W\]"):
            be.infer(np.zeros((1, 4, m, m), np.float32))
        if m > 1:
            with pytest.raises(BackendError, match="not a multiple"):
                be.infer(np.zeros((1, 3, m + 1, m), np.float32))
        assert getattr(be, RESOURCE[be.name]) is not None
    assert getattr(be, RESOURCE[be.name]) is None  # close() released the model
    with pytest.raises(BackendError, match="before open"):
        be.infer(x)


def test_a_remembered_output_answers_an_equal_input_once(tiny_onnx):
    """`Backend.remember`: the output kept for an input is returned for an equal one, once; any
    other input is computed; closing forgets it."""
    calls = []

    class Counted(OnnxRuntimeBackend):
        def _infer_impl(self, x):
            calls.append(x.shape)
            return super()._infer_impl(x)

    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    with Counted(tiny_onnx) as be:
        y = be.infer(x)
        be.remember(x.copy(), y)
        assert be.infer(x.copy()) is y and len(calls) == 1
        assert np.array_equal(be.infer(x), y) and len(calls) == 2  # once only
        be.remember(x, y)
        be.infer(x[..., :8, :8])
        be.infer(-x)
        assert len(calls) == 4  # another shape, other values: computed
        be.close()
        be.open()
        be.infer(x)
        assert len(calls) == 5


# -- engine limits, from real engines ------------------------------------------------------
class EngineLimited(Backend):
    """A CPU backend that accepts only what an engine's sidecar allows (and records each call)."""

    name = "engine-limited"

    def __init__(self, inner: Backend, limits: dict):
        super().__init__()
        self.inner, self.limits, self.calls = inner, limits, []

    def _open(self):
        self.inner.open()
        return replace(self.inner.info, **self.limits)

    def _infer_impl(self, x):
        self.calls.append(tuple(x.shape))
        return self.inner.infer(x)

    def _close(self):
        self.inner.close()


@pytest.fixture(scope="module", params=["fp16", "fp32"])
def engine_limits(request, tiny_generator, tmp_path_factory) -> dict:
    """Limits read from the sidecar of an engine TensorRT for RTX builds here (max batch 2)."""
    if not HAS_RTX:
        pytest.skip("TensorRT for RTX is not installed (pip install tensorrt-rtx-cu13)")
    from cyclegan_tool import sidecar

    import subprocess
    import sys

    plan = tmp_path_factory.mktemp("engine") / f"small_{request.param}.plan"
    args = ["export", str(tiny_generator), "--engine", str(plan), "--trt", "rtx", "--min-shape", "1x3x32x32",
            "--opt-shape", "2x3x64x64", "--max-shape", "2x3x96x96", "--workspace", "256"]
    # In a child process: the TensorRT libraries stay out of the test process, whose later Qt
    # worker threads create ONNX Runtime sessions.
    res = subprocess.run([sys.executable, "-m", "cyclegan_tool", *args, *(["--fp16"] if request.param == "fp16"
                                                                          else [])],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    limits = sidecar.limits(sidecar.read(plan))
    assert limits["max_batch"] == 2 and limits["min_hw"] == (32, 32) and limits["max_hw"] == (96, 96)
    return limits


@pytest.mark.tensorrt
def test_pipeline_keeps_real_engine_limits(engine_limits, tiny_onnx, tmp_path):
    src = tmp_path / "in"
    for i, size in enumerate([(20, 24), (40, 60), (64, 64), (64, 64), (64, 64), (150, 100), (96, 96), (33, 90)]):
        write_domain(src / f"s{i}", 2 if size == (64, 64) else 1, size, (0.8, 0.4, 0.2), seed=i)
    be = EngineLimited(OnnxRuntimeBackend(tiny_onnx, device="cpu"), engine_limits)
    opts = ConvertOptions(batch_size=8, decode_workers=1, write_workers=1)
    jobs = plan_jobs(src, tmp_path / "out", opts)
    with be:
        events = list(run_convert(jobs, be, opts))
    summary = events[-1]
    assert summary.failed == [] and summary.converted == len(jobs) == 11
    assert be.calls and all(n <= 2 and 32 <= h <= 96 and 32 <= w <= 96 for n, _, h, w in be.calls), be.calls
    assert any(n == 2 for n, *_ in be.calls)  # batching still happens, at the engine's maximum
    from PIL import Image

    with Image.open(tmp_path / "out" / "s5" / "img_000.png") as im:  # tiled beyond the profile
        assert im.size == (100, 150)
    with Image.open(tmp_path / "out" / "s0" / "img_000.png") as im:  # padded up to the minimum
        assert im.size == (24, 20)


def test_min_batch_is_padded_and_tiles_respect_a_minimum(tiny_onnx, tmp_path):
    write_domain(tmp_path / "in", 3, (44, 52), (0.2, 0.6, 0.9), seed=3)
    limits = {"min_batch": 2, "max_batch": 3, "min_hw": (48, 48), "max_hw": (64, 64)}
    be = EngineLimited(OnnxRuntimeBackend(tiny_onnx, device="cpu"), limits)
    opts = ConvertOptions(batch_size=1, tile=16, tile_overlap=4, decode_workers=1, write_workers=1)
    with be:
        summary = list(run_convert(plan_jobs(tmp_path / "in", tmp_path / "out", opts), be, opts))[-1]
    assert summary.failed == [] and summary.converted == 3
    assert all(2 <= n <= 3 and 48 <= h <= 64 and 48 <= w <= 64 for n, _, h, w in be.calls), be.calls


# -- GPU-style failures ----------------------------------------------------------------------
class Flaky(EngineLimited):
    """Out of memory for batches over one image; a kernel error on 48-pixel-wide inputs."""

    def _infer_impl(self, x):
        self.calls.append(tuple(x.shape))
        if x.shape[0] > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if x.shape[-1] == 48:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.inner.infer(x)


def test_gpu_errors_fail_one_file_and_oom_retries_smaller(tiny_onnx, tmp_path):
    write_domain(tmp_path / "in" / "a", 4, (32, 32), (0.9, 0.1, 0.1), seed=1)
    write_domain(tmp_path / "in" / "b", 1, (32, 48), (0.1, 0.9, 0.1), seed=2)
    be = Flaky(OnnxRuntimeBackend(tiny_onnx, device="cpu"), {})
    opts = ConvertOptions(batch_size=4, decode_workers=1, write_workers=1)
    with be:
        summary = list(run_convert(plan_jobs(tmp_path / "in", tmp_path / "out", opts), be, opts))[-1]
    assert summary.converted == 4 and len(summary.failed) == 1
    path, msg = summary.failed[0]
    assert path.name == "img_000.png" and path.parent.name == "b"
    assert str(path) in msg and "illegal memory access" in msg
    assert any(n == 4 for n, *_ in be.calls)  # tried as a batch first, then one by one


def test_engine_with_device_cpu_is_one_line(tmp_path):
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"x")
    write_domain(tmp_path / "in", 1, (16, 16), (1, 0, 0), seed=1)
    res = CliRunner().invoke(cli, ["convert", "--engine", str(plan), "--device", "cpu", str(tmp_path / "in"),
                                   str(tmp_path / "out")])
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert "runs only on an NVIDIA GPU" in res.output and "m.plan" in res.output


@needs_ov
def test_openvino_matches_onnxruntime_and_is_chosen_only_when_asked(tiny_onnx, tmp_path):
    """OpenVINO runs FP32 graphs in FP32 (not its bf16 default on CPUs that have it)."""
    from conftest import make_backend

    be, why = make_backend(tiny_onnx, backend="openvino")
    assert be.name == "openvino" and "openvino" in why
    assert make_backend(tiny_onnx, precision="fp32", backend="onnxruntime")[0].name == "onnxruntime"
    with pytest.raises(Exception, match="runs on the CPU"):
        make_backend(tiny_onnx, backend="openvino", device="cuda")[0].open()
    x = np.random.default_rng(1).random((3, 3, 64, 48), np.float32) * 2 - 1
    with be, OnnxRuntimeBackend(tiny_onnx, device="cpu") as ort_be:
        assert np.abs(be.infer(x) - ort_be.infer(x)).max() < 1e-4
    write_domain(tmp_path / "in", 3, (30, 26), (0.5, 0.5, 0.5), seed=3)
    res = CliRunner().invoke(cli, ["convert", "--onnx", str(tiny_onnx), "--backend", "openvino",
                                   str(tmp_path / "in"), str(tmp_path / "out")])
    assert res.exit_code == 0 and "openvino" in res.output and len(list((tmp_path / "out").glob("*.png"))) == 3


@pytest.fixture(scope="module")
def int8_onnx(tiny_generator, tmp_path_factory) -> Path:
    from cyclegan_tool import api

    root = tmp_path_factory.mktemp("int8")
    write_domain(root / "calib", 10, (40, 36), (0.8, 0.5, 0.2), seed=11)
    # A random tiny network quantizes worse than a trained one (26 vs 32 dB): a lower bar here.
    api.export(tiny_generator, output=root / "tiny_int8.onnx", int8=root / "calib", calib_size=32, int8_min_psnr=20)
    return root / "tiny_int8.onnx"


@pytest.mark.parametrize("runtime", ["onnxruntime", pytest.param("openvino", marks=needs_ov)])
def test_int8_graph_keeps_the_contract_and_records_its_calibration(int8_onnx, tiny_onnx, runtime):
    from cyclegan_tool.onnx_metadata import read_metadata
    from conftest import make_backend

    import onnx

    meta = read_metadata(onnx.load(str(int8_onnx)))
    cal = meta["calibration"]
    assert meta["precision"] == "int8" and cal["images"] == 10 and cal["folder"] == "calib" and cal["files_sha256"]
    assert cal["psnr_db_vs_fp32"] >= 20 and "percentile" in cal["method"]
    ops = {n.op_type for n in onnx.load(str(int8_onnx)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    with make_backend(int8_onnx, backend=runtime)[0] as q, OnnxRuntimeBackend(tiny_onnx, device="cpu") as ref:
        assert q.info.precision == "int8" and q.info.input_dtype == "float32"
        y, r = q.infer(x), ref.infer(x)
        assert y.shape == r.shape and 10 * torch.log10(4 / ((y - r) ** 2).mean()) > 20  # close to FP32


def test_int8_needs_calibration_images(tiny_generator, tmp_path):
    from cyclegan_tool import api
    from cyclegan_tool.errors import ConfigError

    with pytest.raises(ConfigError, match="calibration needs a folder"):
        api.export(tiny_generator, output=tmp_path / "q.onnx", int8=tmp_path / "missing")
    write_domain(tmp_path / "few", 3, (32, 32), (0.5, 0.5, 0.5), seed=1)
    with pytest.raises(ConfigError, match="at least 8"):
        api.export(tiny_generator, output=tmp_path / "q.onnx", int8=tmp_path / "few")
    with pytest.raises(ConfigError, match="engines are built FP16 or FP32"):
        api.export(tiny_generator, engine=tmp_path / "q.plan", int8=tmp_path / "few")
    write_domain(tmp_path / "enough", 8, (32, 32), (0.5, 0.5, 0.5), seed=2)
    from cyclegan_tool.errors import ExportError

    with pytest.raises(ExportError, match="from FP32 on its calibration images"):  # the fidelity bar
        api.export(tiny_generator, output=tmp_path / "q.onnx", int8=tmp_path / "enough", calib_size=32,
                   int8_min_psnr=90)
    assert not (tmp_path / "q.onnx").exists()


@needs_ov
def test_openvino_keeps_compiled_models_in_the_user_cache_and_never_a_stale_one(tiny_onnx, tmp_path, monkeypatch):
    import shutil

    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.onnx_export import export_onnx
    from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    blobs = tmp_path / "cache" / "cyclegan-tool" / "openvino"
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx, model)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with OpenVINOBackend(model) as be:
        first = be.infer(x)
    assert len(list(blobs.glob("*.blob"))) == 1
    with OpenVINOBackend(model) as be:  # from the blob
        assert torch.allclose(be.infer(x), first, atol=1e-5)
    # The same path with another model inside: compiled anew, never served from the old blob.
    torch.manual_seed(7)
    torch.save(init_weights(build_generator(GeneratorSpec(name="resnet_6blocks", ngf=8)), "normal", 0.1).state_dict(),
               tmp_path / "latest_net_G_A.pth")
    model.unlink()
    export_onnx(checkpoints.load_generator(tmp_path / "latest_net_G_A.pth"), model, check=False)
    with OpenVINOBackend(model) as be, TorchBackend(tmp_path / "latest_net_G_A.pth", device="cpu") as ref:
        assert torch.allclose(be.infer(x), ref.infer(x), atol=1e-3)
    # A cache that cannot be written costs only the compilation.
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    with OpenVINOBackend(model) as be:
        assert be.infer(x).shape == x.shape


def test_onnx_metadata_is_read_without_parsing_the_graph(tiny_onnx, tmp_path):
    """OpenVINO's backend reads our metadata by walking the file's top-level fields (the graph
    skipped): the same dict as a full parse; a cut or foreign file is one line naming it."""
    import onnx

    from cyclegan_tool.onnx_metadata import read_metadata, read_metadata_file

    meta = read_metadata_file(tiny_onnx)
    assert meta == read_metadata(onnx.load(str(tiny_onnx))) and meta["generator"] and meta["direction"]
    data = tiny_onnx.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "photo.onnx").write_bytes(b"\xff\xd8\xff\xe0 not a model at all")
    for bad in ("cut.onnx", "photo.onnx"):
        with pytest.raises(BackendError, match=f"{bad}: not a readable ONNX file"):
            read_metadata_file(tmp_path / bad)
