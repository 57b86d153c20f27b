"""`--backend auto` for ONNX models on the CPU: measured once per model and machine, cached,
never a runtime whose output strays from ONNX Runtime FP32, and said in the start line."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from conftest import write_domain

import cyclegan_tool as ct
from cyclegan_tool.devices import cpu_has_native_bf16
from cyclegan_tool.runtime import autotune, derived
from cyclegan_tool.runtime.base import Backend
from cyclegan_tool.runtime.ort_backend import OnnxRuntimeBackend

needs_ov = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                              reason="OpenVINO is not installed (pip install '.[openvino]')")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def convert(src, out, model, **kw) -> str:
    said = []
    summary = ct.convert(src, out, model=model, on_start=said.append, **kw)
    assert not summary.failed and summary.converted == len(list(src.iterdir()))
    return said[0]


@needs_ov
def test_auto_measures_once_caches_and_says_why(tiny_onnx, tmp_path):
    write_domain(tmp_path / "in", autotune.MIN_IMAGES, (40, 36), (0.7, 0.4, 0.2), seed=5)
    first = convert(tmp_path / "in", tmp_path / "out1", tiny_onnx)
    assert "measured now" in first and "onnxruntime" in first and "openvino-fp32" in first
    cache = json.loads(autotune.cache_path().read_text())
    (record,) = cache.values()
    assert set(record["ms"]) >= {"onnxruntime", "openvino-fp32"} and record["size"] == "40x36"
    assert record["choice"] in record["ms"] and record["psnr"]["openvino-fp32"] > 60
    assert record["psnr"][record["choice"]] >= autotune.MIN_PSNR_DB
    second = convert(tmp_path / "in", tmp_path / "out2", tiny_onnx)
    assert "measured on this machine before" in second and record["choice"] in second
    # Outputs agree with ONNX Runtime's whichever runtime won.
    convert(tmp_path / "in", tmp_path / "out3", tiny_onnx, backend="onnxruntime")
    import numpy as np
    from PIL import Image

    for p in (tmp_path / "out2").glob("*.png"):
        a = np.asarray(Image.open(p), np.float64)
        b = np.asarray(Image.open(tmp_path / "out3" / p.name), np.float64)
        mse = max(np.mean((a - b) ** 2), 1e-9)
        assert 10 * np.log10(255**2 / mse) > autotune.MIN_PSNR_DB - 3, p.name


@needs_ov
def test_small_runs_do_not_measure(tiny_onnx, tmp_path):
    write_domain(tmp_path / "in", autotune.MIN_IMAGES - 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", tiny_onnx)
    assert "onnxruntime (the alternatives not measured here yet)" in said
    assert not autotune.cache_path().exists()


@needs_ov
def test_a_broken_cache_is_measured_again(tiny_onnx, tmp_path):
    write_domain(tmp_path / "in", autotune.MIN_IMAGES, (40, 36), (0.7, 0.4, 0.2), seed=5)
    autotune.cache_path().parent.mkdir(parents=True, exist_ok=True)
    autotune.cache_path().write_text("{not json")
    assert "measured now" in convert(tmp_path / "in", tmp_path / "out", tiny_onnx)
    assert len(json.loads(autotune.cache_path().read_text())) == 1


class Wrong(Backend):
    """Fast, but its output is not the model's: must never be chosen."""

    name = "wrong"

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def _open(self):
        return self.inner.open().info

    def _infer_impl(self, x):
        return torch.zeros_like(x)

    def _close(self):
        self.inner.close()


def test_a_fast_runtime_outside_the_fidelity_bar_is_not_chosen(tiny_onnx):
    reference = OnnxRuntimeBackend(tiny_onnx, device="cpu").open()
    wrong = autotune.Candidate("wrong", lambda: Wrong(OnnxRuntimeBackend(tiny_onnx, device="cpu")))
    faithful = autotune.Candidate("faithful", lambda: OnnxRuntimeBackend(tiny_onnx, device="cpu"))
    record = autotune.measure(reference, [wrong, faithful], torch.rand(1, 3, 64, 64) * 2 - 1, "onnxruntime")
    assert record["psnr"]["wrong"] < autotune.MIN_PSNR_DB <= record["psnr"]["faithful"]
    assert record["choice"] in ("onnxruntime", "faithful")
    assert reference.info is not None  # the reference stays open for the run
    # The reason line says why the other runtime was left out, whatever its speed.
    said = autotune._summary(record)
    assert f"wrong {record['ms']['wrong']:.0f} ms ({record['psnr']['wrong']:.1f} dB: under the 35 dB bar)" in said
    assert said.count("under the") == 1


class Failing(Wrong):
    name = "failing"

    def _infer_impl(self, x):
        raise RuntimeError("this runtime cannot run that shape")


def test_a_runtime_that_cannot_load_or_run_the_model_is_left_out(tiny_onnx, tmp_path):
    reference = OnnxRuntimeBackend(tiny_onnx, device="cpu").open()
    broken = autotune.Candidate("broken", lambda: OnnxRuntimeBackend(tmp_path / "missing.onnx", device="cpu"))
    failing = autotune.Candidate("failing", lambda: Failing(OnnxRuntimeBackend(tiny_onnx, device="cpu")))
    record = autotune.measure(reference, [broken, failing], torch.rand(1, 3, 32, 32) * 2 - 1)
    assert record["choice"] == "onnxruntime" and set(record["ms"]) == {"onnxruntime"}


class Counted(Wrong):
    """The model's own output, `delay` seconds late, counting its passes."""

    name = "counted"

    def __init__(self, inner, delay):
        super().__init__(inner)
        self.delay, self.passes = delay, 0

    def _infer_impl(self, x):
        import time

        self.passes += 1
        time.sleep(self.delay)
        return self.inner.infer(x)


def test_runtimes_far_slower_than_the_fastest_are_timed_once(tiny_onnx):
    """A first run on a small folder must not spend seconds timing runtimes that cannot win."""
    made = {}

    def candidate(key, delay):
        def make():
            made[key] = Counted(OnnxRuntimeBackend(tiny_onnx, device="cpu"), delay)
            return made[key]
        return autotune.Candidate(key, make)

    reference = Counted(OnnxRuntimeBackend(tiny_onnx, device="cpu"), 0.03).open()  # sleeps dwarf the model
    record = autotune.measure(reference, [candidate("slow", 0.2), candidate("fast", 0.02), candidate("close", 0.025)],
                              torch.rand(1, 3, 32, 32) * 2 - 1)
    assert made["slow"].passes == 2 and made["fast"].passes == made["close"].passes == 2 + 2 * autotune.ROUNDS
    assert record["ms"]["slow"] >= 200 and record["choice"] != "slow" and set(record["psnr"]) >= {"slow", "fast"}


def test_the_runtime_chosen_by_measuring_is_the_one_the_run_gets(tiny_onnx):
    """Measured now, the winner is handed over open and warm (an OpenVINO form compiled for the
    sample's shape is not compiled or imported again); the others are closed."""
    made = []

    def candidate(key, delay):
        def make():
            made.append(Counted(OnnxRuntimeBackend(tiny_onnx, device="cpu"), delay))
            made[-1].key = key
            return made[-1]
        return autotune.Candidate(key, make)

    found = [candidate("reference", 0.03), candidate("fast", 0.0), candidate("slow", 0.06)]
    backend, why = autotune.choose(found, tiny_onnx, lambda be: torch.rand(1, 3, 32, 32) * 2 - 1)
    assert "fast" in why and "measured now" in why
    assert [b.key for b in made] == ["reference", "fast", "slow"]  # nothing made twice
    assert backend is made[1] and backend._opened and backend.passes >= 2  # measured, still open
    assert made[0].info is not None and not made[0]._opened and not made[2]._opened


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 or AMX)")
def test_checkpoints_choose_between_fp32_and_bf16_per_direction(tiny_generator, tmp_path):
    write_domain(tmp_path / "in", autotune.MIN_IMAGES, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", tiny_generator, direction="a2b")
    assert "PyTorch weights on CPU -> " in said and "measured now" in said
    assert "pytorch-fp32" in said and "pytorch-bf16" in said
    if importlib.util.find_spec("openvino"):  # the generator exported to ONNX once, into the cache
        assert "onnx-openvino-bf16" in said
        assert len(list((autotune.cache_path().parent / "onnx").glob("*-a2b-*.onnx"))) == 1
    # The other direction is another model: measured on its own.
    assert "measured now" in convert(tmp_path / "in", tmp_path / "out_b", tiny_generator, direction="b2a")
    assert len(json.loads(autotune.cache_path().read_text())) == 2
    # An explicit precision is obeyed, never tuned.
    assert "fp32" in convert(tmp_path / "in", tmp_path / "out_c", tiny_generator, direction="a2b",
                             precision="fp32").split("->")[-1]


@needs_ov
def test_an_unwritable_cache_costs_only_a_new_measurement(tiny_onnx, tiny_generator, tmp_path, monkeypatch):
    write_domain(tmp_path / "in", autotune.MIN_IMAGES, (40, 36), (0.7, 0.4, 0.2), seed=5)
    (tmp_path / "not_a_folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not_a_folder"))  # nothing can be written under it
    for model in (tiny_onnx, tiny_generator):
        for out in ("out1", "out2"):
            assert "measured now" in convert(tmp_path / "in", tmp_path / f"{out}_{model.stem}", model)


@pytest.fixture
def shipped_with_int8(tiny_onnx, tmp_path, monkeypatch):
    """A zoo holding one model, 'tiny', with an int8 form exported from its ONNX file."""
    import shutil

    from cyclegan_tool import zoo

    root = tmp_path / "zoo"
    root.mkdir()
    shutil.copy(tiny_onnx, root / "tiny.onnx")
    write_domain(tmp_path / "calib", 10, (40, 36), (0.8, 0.5, 0.2), seed=11)
    ct.export(root / "tiny.onnx", output=root / "tiny.int8.onnx", int8=tmp_path / "calib", calib_size=32,
              int8_min_psnr=20)
    (root / "models.json").write_text(json.dumps({"tiny": {
        "file": "tiny.onnx", "int8": "tiny.int8.onnx", "direction": "a2b", "summary": "test", "arch": "resnet_6blocks",
        "precision": "fp32"}}))
    monkeypatch.setattr(zoo, "HERE", root)
    return root


def test_a_shipped_models_int8_form_is_a_measured_candidate(shipped_with_int8, tmp_path):
    write_domain(tmp_path / "in", autotune.MIN_IMAGES, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", "tiny")
    assert "measured now" in said and "int8-onnxruntime" in said
    (record,) = json.loads(autotune.cache_path().read_text()).values()
    assert "int8-onnxruntime" in record["ms"] and record["psnr"][record["choice"]] >= autotune.MIN_PSNR_DB
    if record["choice"].startswith("int8"):  # never silently: the start line names the int8 file
        assert "the model's int8 form tiny.int8.onnx" in said and "int8" in said.split(":")[-2]
    # Asked for FP32, the int8 form is not even measured.
    fp32 = convert(tmp_path / "in", tmp_path / "out_fp32", "tiny", precision="fp32")
    assert "int8" not in fp32 and "bf16" not in fp32 and "measured now" in fp32
    assert "measured on this machine before" in convert(tmp_path / "in", tmp_path / "out_auto", "tiny")
    # A changed int8 form is measured again (its digest is part of the cache key).
    (shipped_with_int8 / "tiny.int8.onnx").write_bytes((shipped_with_int8 / "tiny.int8.onnx").read_bytes() + b" ")
    assert "measured now" in convert(tmp_path / "in", tmp_path / "out_again", "tiny")


def test_an_int8_form_outside_the_fidelity_bar_is_never_chosen(shipped_with_int8, tmp_path, monkeypatch):
    monkeypatch.setattr(autotune, "MIN_PSNR_DB", 99.0)  # nothing but the reference itself qualifies
    write_domain(tmp_path / "in", autotune.MIN_IMAGES, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", "tiny")
    (record,) = json.loads(autotune.cache_path().read_text()).values()
    assert not record["choice"].startswith("int8") and "int8 form" not in said
    assert record["psnr"]["int8-onnxruntime"] < 99.0


def test_calibration_images_come_from_large_runs_only_and_spare_the_sample(monkeypatch):
    from types import SimpleNamespace

    jobs = [SimpleNamespace(src=f"img{i:03d}.png") for i in range(derived.INT8_MIN_IMAGES)]
    assert derived.calibration_from(jobs[:-1]) is None  # a smaller run does not pay for calibrating
    picked = derived.calibration_from(jobs)
    assert len(picked) == derived.INT8_CALIBRATION_IMAGES == len(set(picked))
    assert not {j.src for j in jobs[:3]} & set(picked)  # the measuring sample is one of the first three


@needs_ov
def test_a_large_run_makes_a_checkpoints_int8_form_once_and_names_it(tiny_generator, tmp_path, monkeypatch):
    import onnx

    from cyclegan_tool.onnx_metadata import read_metadata

    monkeypatch.setattr(derived, "INT8_MIN_IMAGES", 12)
    monkeypatch.setattr(autotune, "MIN_PSNR_DB", 12.0)  # random tiny weights: a bar they can pass
    real_measure, made = autotune.measure, []

    def prefer_int8(reference, others, x, ref_key, **kw):  # this test is about the int8 path, not about speed
        record = real_measure(reference, others, x, ref_key, **kw)
        record["choice"] = max((k for k in record["ms"] if k.startswith("int8-")), key=record["psnr"].get)
        return record

    real_make = derived.calibrated_int8

    def counting(*args):  # calibrations, not lookups of the cached file
        if not args[4].is_file():
            made.append(args)
        return real_make(*args)

    monkeypatch.setattr(autotune, "measure", prefer_int8)
    monkeypatch.setattr(derived, "calibrated_int8", counting)
    write_domain(tmp_path / "in", 12, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", tiny_generator, direction="a2b")
    assert len(made) == 1  # every int8 runtime measured shares the one calibration
    (int8,) = (autotune.cache_path().parent / "onnx").glob("*-a2b-*.int8.onnx")
    record = read_metadata(onnx.load(str(int8), load_external_data=False))
    assert record["precision"] == "int8" and record["calibration"]["images"] == derived.INT8_CALIBRATION_IMAGES
    assert record["calibration"]["folder"] == "in" and record["calibration"]["psnr_db_vs_fp32"] >= 12.0
    assert f"int8 form calibrated on {derived.INT8_CALIBRATION_IMAGES} images of in" in said and str(int8) in said
    # A small run later reuses the cached form and its measurement, and still names it.
    write_domain(tmp_path / "few", 2, (40, 36), (0.7, 0.4, 0.2), seed=6)
    again = convert(tmp_path / "few", tmp_path / "out_few", tiny_generator, direction="a2b")
    assert "measured on this machine before" in again and "int8 form calibrated" in again and len(made) == 1
    # Asked for a precision, the int8 form is not a candidate.
    assert "int8" not in convert(tmp_path / "in", tmp_path / "out_fp32", tiny_generator, direction="a2b",
                                 precision="fp32")


@needs_ov
def test_an_int8_form_that_misses_the_bar_is_not_written_and_the_run_goes_on(tiny_generator, tmp_path, monkeypatch):
    monkeypatch.setattr(derived, "INT8_MIN_IMAGES", 12)
    monkeypatch.setattr(autotune, "MIN_PSNR_DB", 98.0)  # int8 cannot get this close to FP32
    real_make, tries = derived.calibrated_int8, []
    monkeypatch.setattr(derived, "calibrated_int8", lambda *a: tries.append(a) or real_make(*a))
    write_domain(tmp_path / "in", 12, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", tiny_generator, direction="a2b")
    assert len(tries) == 1  # one failed calibration, not one per int8 runtime
    assert "int8" not in said and not list((autotune.cache_path().parent / "onnx").glob("*.int8.onnx"))
    (record,) = json.loads(autotune.cache_path().read_text()).values()
    assert not any(k.startswith("int8") for k in record["ms"])  # failed to make: not a candidate


def test_cpus_that_share_a_brand_name_are_different_machines(tmp_path, monkeypatch):
    """Virtual machines often show "AMD EPYC" for every generation: a measurement (and a compiled
    OpenVINO form) from one must not be taken for another."""
    from cyclegan_tool import devices

    keys = {}
    for family, model in (("25", "17"), ("26", "2")):
        info = tmp_path / f"cpuinfo_{family}"
        info.write_text(f"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: {model}\n"
                        f"model name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu avx512f avx512_bf16\n\n"
                        f"processor\t: 1\nmodel name\t: something else\n")
        monkeypatch.setattr(devices, "CPUINFO", str(info))
        assert devices.cpu_model() == f"AMD EPYC ({family}/{model}/1)" and devices.cpu_has_native_bf16()
        keys[family] = autotune.machine_key()
    assert keys["25"] != keys["26"]
    monkeypatch.setattr(devices, "CPUINFO", str(tmp_path / "missing"))
    assert devices.cpu_model() == "cpu"


@pytest.mark.parametrize("model", ["tiny_onnx", "tiny_generator"])
def test_without_openvino_the_start_line_says_how_to_get_it(model, request, tmp_path, monkeypatch):
    write_domain(tmp_path / "in", 2, (40, 36), (0.7, 0.4, 0.2), seed=5)
    monkeypatch.setattr(autotune, "openvino_version", lambda: None)
    said = convert(tmp_path / "in", tmp_path / "out", request.getfixturevalue(model))
    assert "; OpenVINO, not installed, adds faster CPU forms (`pip install openvino`)" in said
    if importlib.util.find_spec("openvino") is not None:
        monkeypatch.undo()
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        assert "pip install openvino" not in convert(tmp_path / "in", tmp_path / "out2", request.getfixturevalue(model))
