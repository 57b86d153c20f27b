"""`--backend auto` on a CPU (cyclegan_tool/runner.py, runtime/fidelity_check.py): the plan's
ways in order, the first within the fidelity bar of the reference runs; never a way whose output
strays from the reference; the same choice whatever the run's size or the cache holds; said in
the start line; and never stale: every cached thing is named by the content of every file it
depends on."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import count_compiles, write_domain
from PIL import Image

import cyclegan_tool as ct
from cyclegan_tool.runtime import fidelity_check
from cyclegan_tool.runtime.base import Backend

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


def records() -> dict:
    return json.loads(fidelity_check.STORE.path.read_text())


def outputs(folder) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.iterdir())}


@needs_ov
def test_checked_once_then_reused_and_said_why(tiny_onnx, tmp_path):
    write_domain(tmp_path / "in", 2, (40, 36), (0.7, 0.4, 0.2), seed=5)
    first = convert(tmp_path / "in", tmp_path / "out1", tiny_onnx)
    assert "(checked now)" in first and " dB from onnxruntime-fp32" in first
    assert all("psnr" in r and "ms" not in r for r in records().values())  # fidelity only: nothing timed
    again = convert(tmp_path / "in", tmp_path / "out2", tiny_onnx)
    assert "checked now" not in again
    assert again == first.replace(" (checked now)", "")


@needs_ov
def test_the_choice_depends_on_neither_the_run_size_nor_the_cache(tiny_onnx, tmp_path):
    write_domain(tmp_path / "one", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    write_domain(tmp_path / "many", 10, (40, 36), (0.7, 0.4, 0.2), seed=5)
    small = convert(tmp_path / "one", tmp_path / "o1", tiny_onnx)
    shutil.rmtree(tmp_path / "cache")
    large = convert(tmp_path / "many", tmp_path / "o2", tiny_onnx)
    again = convert(tmp_path / "one", tmp_path / "o3", tiny_onnx)  # after the large run, with its cache
    assert small.split(" -> ")[1].split(",")[0] == large.split(" -> ")[1].split(",")[0] == \
        again.split(" -> ")[1].split(",")[0]
    first = {outputs(tmp_path / d)["img_000.png"].tobytes() for d in ("o1", "o2", "o3")}
    assert len(first) == 1


@pytest.mark.parametrize("content", ["{not json", "[1]", '{"k": "a string"}', '{"k": {"psnr": "x"}}'])
def test_a_malformed_measurements_file_is_ignored(tiny_onnx, tmp_path, content):
    fidelity_check.STORE.path.parent.mkdir(parents=True, exist_ok=True)
    fidelity_check.STORE.path.write_text(content)
    write_domain(tmp_path / "in", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    assert "checked now" in convert(tmp_path / "in", tmp_path / "out", tiny_onnx)


class Wrong(Backend):
    """Fast, but its output is not the model's."""

    name = "wrong"

    def __init__(self, inner: Backend):
        super().__init__()
        self.inner = inner

    def _open(self):
        return self.inner.open().info

    def _infer_impl(self, x):
        return -self.inner.infer(x)

    def _close(self):
        self.inner.close()


def _patched(monkeypatch, **wrap):
    """backend_for with the backends of some candidate keys wrapped (Wrong, or raising)."""
    from cyclegan_tool.runtime import select

    real = select.backend_for

    def backend_for(option, path, device, **kw):
        be = real(option, path, device, **kw)
        return wrap[option.key](be) if option.key in wrap else be

    monkeypatch.setattr(select, "backend_for", backend_for)


FIRST_WAYS = ("winograd-openvino-bf16", "openvino-bf16", "winograd-openvino-fp32")  # tried before openvino-fp32


@needs_ov
def test_a_way_outside_the_fidelity_bar_is_passed_over_and_said(tiny_onnx, tmp_path, monkeypatch):
    _patched(monkeypatch, **{k: Wrong for k in FIRST_WAYS})
    write_domain(tmp_path / "in", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", tiny_onnx)
    assert said.split(" -> ")[1].startswith("openvino-fp32")
    assert "passed over: " in said and "winograd-openvino-fp32 " in said and "(under 35)" in said


class Fails(Backend):
    name = "fails"

    def __init__(self, inner, error):
        super().__init__()
        self.error = error

    def _open(self):
        raise self.error

    def _infer_impl(self, x):
        raise AssertionError


@needs_ov
def test_a_failure_of_the_machine_is_not_remembered_one_of_the_model_is(tiny_onnx, tmp_path, monkeypatch):
    """A way that could not run because the disk was full is tried again next time; one that
    cannot run the model is recorded and passed over from then on."""
    _patched(monkeypatch, **{"winograd-openvino-fp32": lambda be: Fails(be, OSError(28, "No space left on device")),
                             "openvino-bf16": lambda be: Fails(be, RuntimeError("unsupported operator")),
                             "winograd-openvino-bf16": lambda be: Fails(be, RuntimeError("unsupported operator"))})
    write_domain(tmp_path / "in", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    first = convert(tmp_path / "in", tmp_path / "out1", tiny_onnx)
    assert first.split(" -> ")[1].startswith("openvino-fp32") and "winograd-openvino-fp32 could not run now" in first
    kept = {r["option"]: r["psnr"] for r in records().values()}
    assert "winograd-openvino-fp32" not in kept
    assert all(kept.get(k, 0.0) == 0.0 for k in ("openvino-bf16", "winograd-openvino-bf16"))
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    second = convert(tmp_path / "in", tmp_path / "out2", tiny_onnx)
    assert "checked now" in second and second.split(" -> ")[1].startswith("winograd-openvino-fp32")


@needs_ov
def test_a_model_checked_before_opens_only_the_way_that_runs(tiny_generator, tmp_path, monkeypatch):
    from cyclegan_tool.runtime import select

    write_domain(tmp_path / "in", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    convert(tmp_path / "in", tmp_path / "out1", tiny_generator)
    made = []
    real = select.backend_for
    monkeypatch.setattr(select, "backend_for", lambda o, *a, **k: made.append(o.key) or real(o, *a, **k))
    said = convert(tmp_path / "in", tmp_path / "out2", tiny_generator)
    assert len(made) == 1 and said.split(" -> ")[1].startswith(made[0])


def test_a_replaced_checkpoint_gives_its_own_output_in_one_process(tiny_generator, tmp_path):
    """Overwritten in place with other weights of the same size, its mtime put back: the second
    convert must use the new weights (the derived forms used to be looked up by path and time)."""
    model = tmp_path / "m" / "model.pth"
    model.parent.mkdir()
    torch.save(torch.load(tiny_generator, weights_only=True), model)
    write_domain(tmp_path / "in", 8, (40, 36), (0.7, 0.4, 0.2), seed=5)
    before = os.stat(model)
    convert(tmp_path / "in", tmp_path / "out1", model)
    state = torch.load(model, weights_only=True)
    for v in state.values():
        if v.is_floating_point():
            v.neg_()
    torch.save(state, model)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(model).st_size == before.st_size
    convert(tmp_path / "in", tmp_path / "out2", model)
    assert not np.array_equal(*[outputs(tmp_path / d)["img_000.png"] for d in ("out1", "out2")])
    # Two different files of one name, size and mtime in two folders, converted after a chdir.
    twin = tmp_path / "n" / "model.pth"
    twin.parent.mkdir()
    torch.save(torch.load(tiny_generator, weights_only=True), twin)
    os.utime(twin, ns=(before.st_atime_ns, before.st_mtime_ns))
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path / "m")
        convert(tmp_path / "in", tmp_path / "out3", "model.pth")
        os.chdir(tmp_path / "n")
        convert(tmp_path / "in", tmp_path / "out4", "model.pth")
    finally:
        os.chdir(cwd)
    a, b = (outputs(tmp_path / d)["img_000.png"] for d in ("out3", "out4"))
    assert not np.array_equal(a, b)
    assert np.array_equal(b, outputs(tmp_path / "out1")["img_000.png"])


@pytest.mark.parametrize("backend", ["auto", pytest.param("openvino", marks=needs_ov)])
def test_onnx_external_data_is_part_of_the_models_name(tiny_onnx, tmp_path, backend):
    """Replacing only `m.onnx.data` must give the new weights (the Winograd form's and the
    OpenVINO blobs' names used to cover the .onnx alone)."""
    import onnx

    model = onnx.load(str(tiny_onnx))
    folder = tmp_path / "ext"
    folder.mkdir()
    onnx.save_model(model, str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.onnx.data", size_threshold=256)
    model = onnx.load(str(tiny_onnx))
    write_domain(tmp_path / "in", 8, (40, 36), (0.7, 0.4, 0.2), seed=5)
    convert(tmp_path / "in", tmp_path / "out1", folder / "m.onnx", backend=backend)
    for init in model.graph.initializer:  # other weights, same graph
        arr = onnx.numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.ndim == 4:
            init.CopyFrom(onnx.numpy_helper.from_array(-arr, init.name))
    other = tmp_path / "other"
    other.mkdir()
    onnx.save_model(model, str(other / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.onnx.data", size_threshold=256)
    assert (folder / "m.onnx").read_bytes() == (other / "m.onnx").read_bytes()  # only the weights differ
    shutil.copy(other / "m.onnx.data", folder / "m.onnx.data")
    convert(tmp_path / "in", tmp_path / "out2", folder / "m.onnx", backend=backend)
    convert(tmp_path / "in", tmp_path / "ref", other / "m.onnx", backend=backend)
    new, ref, old = (outputs(tmp_path / d)["img_000.png"] for d in ("out2", "ref", "out1"))
    assert np.array_equal(new, ref) and not np.array_equal(new, old)


@needs_ov
def test_a_damaged_form_in_the_cache_is_made_again(tiny_generator, tmp_path):
    write_domain(tmp_path / "in", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    convert(tmp_path / "in", tmp_path / "out1", tiny_generator, backend="openvino")
    (form,) = (tmp_path / "cache" / "cyclegan-tool" / "onnx").glob("*.onnx")
    form.write_bytes(form.read_bytes()[:100])  # cut short by a full disk, say
    convert(tmp_path / "in", tmp_path / "out2", tiny_generator, backend="openvino")
    form.write_bytes(b"")
    convert(tmp_path / "in", tmp_path / "out3", tiny_generator, backend="openvino")
    assert form.stat().st_size > 1000
    assert outputs(tmp_path / "out1") .keys() == outputs(tmp_path / "out3").keys()


def test_an_unwritable_cache_costs_only_a_new_check(tiny_onnx, tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "ro"))
    write_domain(tmp_path / "in", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    try:
        for out in ("out1", "out2"):
            convert(tmp_path / "in", tmp_path / out, tiny_onnx)
    finally:
        os.chmod(tmp_path / "ro", 0o700)


@pytest.fixture
def shipped_with_int8(tiny_onnx, tmp_path, monkeypatch):
    """A zoo holding one model, 'tiny', with an int8 form exported from its ONNX file."""
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


def test_a_shipped_models_int8_form_is_a_candidate_and_named(shipped_with_int8, tmp_path, monkeypatch):
    from cyclegan_tool.runtime.facts import gather

    write_domain(tmp_path / "in", 2, (40, 36), (0.7, 0.4, 0.2), seed=5)
    monkeypatch.setattr(fidelity_check, "MIN_PSNR_DB", 15.0)  # a random tiny network quantizes poorly
    said = convert(tmp_path / "in", tmp_path / "out", "tiny")
    machine = gather("onnx")
    if machine.native_int8 and machine.openvino:  # tried first where the CPU has int8 dot products
        assert "the model's int8 form tiny.int8.onnx" in said and said.split(" -> ")[1].startswith("int8-")
    # Asked for FP32, the int8 form is not even a candidate.
    fp32 = convert(tmp_path / "in", tmp_path / "out_fp32", "tiny", precision="fp32")
    assert "int8" not in fp32 and "bf16" not in fp32
    # Outside the bar, it is never chosen.
    monkeypatch.setattr(fidelity_check, "MIN_PSNR_DB", 99.0)
    shutil.rmtree(tmp_path / "cache")
    said = convert(tmp_path / "in", tmp_path / "out_bar", "tiny")
    assert "int8 form" not in said and said.split(" -> ")[1].startswith("onnxruntime-fp32")


def test_cpus_that_share_a_brand_name_are_different_machines(tmp_path, monkeypatch):
    """Virtual machines often show "AMD EPYC" for every generation: a compiled OpenVINO form from
    one generation must not be reused on another."""
    from cyclegan_tool import cache, devices

    keys = {}
    for family in ("23", "25"):
        info = tmp_path / f"cpuinfo{family}"
        info.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: {family}\nmodel\t\t: 1\n"
                        "flags\t\t: avx2\n\n")
        monkeypatch.setattr(devices, "CPUINFO", str(info))
        keys[family] = cache.machine_id()
    assert keys["23"] != keys["25"]


def test_without_openvino_the_start_line_says_how_to_get_it(tiny_onnx, tmp_path, monkeypatch):
    from cyclegan_tool.runtime import facts

    real = facts.package_version
    monkeypatch.setattr(facts, "package_version", lambda name: None if name == "openvino" else real(name))
    write_domain(tmp_path / "in", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", tiny_onnx)
    assert "OpenVINO, not installed, adds faster CPU forms (`pip install openvino`)" in said


def test_a_fidelity_figure_from_another_cpu_decides_nothing_here(tmp_path, monkeypatch):
    """bf16 and int8 ways round differently on different CPUs: a cache shared between machines
    (a networked home folder) must not carry one machine's figure to another."""
    from cyclegan_tool import devices
    from cyclegan_tool.runtime.plan import Option

    way = Option("model", "openvino", "bf16")
    for family in ("23", "25"):
        info = tmp_path / f"cpuinfo{family}"
        info.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: {family}\nmodel\t\t: 1\n"
                        "flags\t\t: avx512_bf16\n\n")
    monkeypatch.setattr(devices, "CPUINFO", str(tmp_path / "cpuinfo23"))
    fidelity_check.record_fidelity(way, "digest", 30.0)
    assert fidelity_check.known_fidelity((way,), "digest") == {way.key: 30.0}
    monkeypatch.setattr(devices, "CPUINFO", str(tmp_path / "cpuinfo25"))
    assert fidelity_check.known_fidelity((way,), "digest") == {}


@needs_ov
def test_a_changed_form_or_int8_form_is_checked_again(shipped_with_int8, tmp_path, monkeypatch):
    """A figure belongs to the forms it was measured on: a new version of the Winograd rewrite, or
    another int8 form beside the same FP32 model, is checked again rather than assumed."""
    from cyclegan_tool.export import winograd

    write_domain(tmp_path / "in", 1, (40, 36), (0.7, 0.4, 0.2), seed=5)
    monkeypatch.setattr(fidelity_check, "MIN_PSNR_DB", 15.0)
    assert "(checked now)" in convert(tmp_path / "in", tmp_path / "o1", "tiny")
    assert "checked now" not in convert(tmp_path / "in", tmp_path / "o2", "tiny")
    monkeypatch.setattr(winograd, "FORM_VERSION", winograd.FORM_VERSION + 1)
    assert "(checked now)" in convert(tmp_path / "in", tmp_path / "o3", "tiny")
    import onnx

    int8 = shipped_with_int8 / "tiny.int8.onnx"
    proto = onnx.load(str(int8))
    proto.doc_string = "another calibration"
    onnx.save(proto, str(int8))
    assert "(checked now)" in convert(tmp_path / "in", tmp_path / "o4", "tiny")


@needs_ov
@pytest.mark.parametrize("size, form", [((40, 36), "any"), ((300, 280), "any"), ((256, 256), "256x256")])
def test_a_first_run_checks_and_runs_on_one_compiled_form(tiny_onnx, tmp_path, monkeypatch, size, form):
    """The check's sample runs on the OpenVINO form the run's images will (runtime/ov_compiled.py:
    one 256x256 image has a form of its own): a first run compiles one form, the one it uses."""
    made = count_compiles(monkeypatch)
    write_domain(tmp_path / "in", 2, size, (0.7, 0.4, 0.2), seed=5)
    said = convert(tmp_path / "in", tmp_path / "out", tiny_onnx)
    assert "openvino" in said and "(checked now)" in said
    assert made == [form]


@needs_ov
@pytest.mark.parametrize("size, extra", [((256, 256), 0), ((300, 280), 1)])
def test_a_first_run_translates_its_first_image_once(tiny_onnx, tmp_path, monkeypatch, size, extra):
    """Where the check's sample is the run's first image as the network sees it (a 256x256
    image), the candidate's output on it is that image's output: translated once, not twice.
    The written image is the one a later run (checked already) writes."""
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    inputs = []
    real = OpenVINOBackend._infer_impl
    monkeypatch.setattr(OpenVINOBackend, "_infer_impl", lambda self, x: inputs.append(x.shape) or real(self, x))
    write_domain(tmp_path / "in", 3, size, (0.7, 0.4, 0.2), seed=6)
    assert "(checked now)" in convert(tmp_path / "in", tmp_path / "first", tiny_onnx)
    assert len(inputs) == 3 + extra
    assert "(checked now)" not in convert(tmp_path / "in", tmp_path / "later", tiny_onnx)
    for name in os.listdir(tmp_path / "first"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "first" / name)),
                              np.asarray(Image.open(tmp_path / "later" / name)))
