"""The Winograd F(2x2, 3x3) form of an FP32 graph (export/winograd.py) and its place in `--backend auto`."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import pytest
from conftest import write_domain

import cyclegan_tool as ct
from cyclegan_tool.errors import BackendError
from cyclegan_tool.export import winograd
from cyclegan_tool.export.parity import ort_session
from cyclegan_tool.export import forms as derived_forms
from cyclegan_tool.runtime import fidelity_check

needs_ov = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                              reason="OpenVINO is not installed (pip install '.[openvino]')")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def rewritten(tiny_onnx):
    return winograd.rewrite(onnx.load(str(tiny_onnx)))


def test_only_plain_3x3_and_narrow_convolutions_are_rewritten(tiny_onnx, rewritten):
    model, counts = rewritten
    # ResNet-6: two per block; not the 7x7 ends nor the stride-2 downsamplings. The last 7x7 (3 outputs) as columns.
    assert counts == {"winograd": 12, "narrow": 1}
    onnx.checker.check_model(model, full_check=True)
    before = [n.op_type for n in onnx.load(str(tiny_onnx)).graph.node]
    after = [n.op_type for n in model.graph.node]
    assert after.count("DepthToSpace") == 12 and after.count("ConvTranspose") == before.count("ConvTranspose")
    assert {p.key: p.value for p in model.metadata_props} == {p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props}


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 36, 44), (1, 3, 20, 52)])  # even and odd block sizes
def test_the_form_computes_the_same_convolutions(tiny_onnx, rewritten, shape):
    x = np.random.default_rng(sum(shape)).uniform(-1, 1, shape).astype(np.float32)
    direct = ort_session(onnx.load(str(tiny_onnx)).SerializeToString()).run(None, {"input": x})[0]
    wino = ort_session(rewritten[0].SerializeToString()).run(None, {"input": x})[0]
    assert wino.shape == direct.shape and np.abs(wino - direct).max() < 1e-4


def test_graphs_without_fp32_3x3_convolutions_have_no_winograd_form(tiny_generator, tmp_path):
    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.onnx_export import export_onnx

    fp16 = export_onnx(checkpoints.load_generator(tiny_generator), tmp_path / "fp16.onnx", fp16=True).path
    assert winograd.rewrite(onnx.load(str(fp16)))[1] == {"winograd": 0, "narrow": 0}
    with pytest.raises(BackendError, match="no FP32 3x3 convolution"):
        derived_forms.winograd("fp16-graph", lambda: fp16)
    assert not list((tmp_path / "cache").rglob("*.winograd*.onnx"))


def _fidelity_records() -> dict[str, float]:
    return {r["option"]: r["psnr"] for r in json.loads(fidelity_check.STORE.path.read_text()).values()}


@needs_ov
@pytest.mark.parametrize("fp32_only", [False, True])
def test_auto_tries_the_winograd_form_of_onnx_models_first(tiny_onnx, tmp_path, fp32_only):
    write_domain(tmp_path / "in", 2, (40, 36), (0.7, 0.4, 0.2), seed=5)
    said = []
    ct.convert(tmp_path / "in", tmp_path / "out", model=tiny_onnx, precision="fp32" if fp32_only else "auto",
               on_start=said.append)
    psnr = _fidelity_records()
    (first,) = psnr  # the first way tried held the bar: nothing else was checked
    assert first.startswith("winograd-openvino-") and psnr[first] > (60 if first.endswith("fp32") else 30)
    assert said[0].split(" -> ")[1].startswith(first)
    if fp32_only:
        assert first == "winograd-openvino-fp32"
    assert len(list((tmp_path / "cache").rglob("*.winograd.onnx"))) == 1


@needs_ov
def test_checkpoints_run_it_on_their_exported_graph(tiny_generator, tmp_path):
    write_domain(tmp_path / "in", 2, (40, 36), (0.7, 0.4, 0.2), seed=6)
    said = []
    ct.convert(tmp_path / "in", tmp_path / "out", model=tiny_generator, on_start=said.append)
    assert said[0].split(" -> ")[1].startswith("winograd-openvino-")
    assert len(list((tmp_path / "cache").rglob("*.winograd.onnx"))) == 1


@needs_ov
def test_a_new_way_is_checked_where_the_others_are_known(tiny_onnx, tmp_path, monkeypatch):
    """Upgrading to a release with a new way of running checks it (and only it)."""
    from cyclegan_tool.runtime import plan as plan_mod

    write_domain(tmp_path / "in", 2, (40, 36), (0.7, 0.4, 0.2), seed=7)
    real = plan_mod.make_plan

    def without_winograd(req, facts):
        p = real(req, facts)
        return plan_mod.Plan(device=p.device, reference=p.reference, reason=p.reason,
                             candidates=tuple(c for c in p.candidates if c.form != "winograd"))

    import cyclegan_tool.runner as runner

    monkeypatch.setattr(runner, "make_plan", without_winograd)
    said = []
    ct.convert(tmp_path / "in", tmp_path / "o1", model=tiny_onnx, on_start=said.append)
    assert not any(k.startswith("winograd") for k in _fidelity_records())
    monkeypatch.setattr(runner, "make_plan", real)
    ct.convert(tmp_path / "in", tmp_path / "o2", model=tiny_onnx, on_start=said.append)
    assert "checked now" in said[1] and said[1].split(" -> ")[1].startswith("winograd-")


@needs_ov
def test_checkpoint_after_checkpoint_keeps_the_cached_forms_within_their_limit(tiny_generator, tmp_path,
                                                                                monkeypatch):
    """Converting with every epoch's checkpoint must not fill the disk with their derived forms:
    the least recently used go, the ones in use stay, and a removed one is made again."""
    import os
    import time

    import torch

    from cyclegan_tool import cache

    write_domain(tmp_path / "in", 2, (40, 36), (0.7, 0.4, 0.2), seed=8)
    state = torch.load(tiny_generator, weights_only=True)
    epochs = []
    for i in range(2):  # two checkpoints: same architecture, different weights
        bumped = {k: v + 0.01 * i if v.is_floating_point() else v for k, v in state.items()}
        torch.save(bumped, tmp_path / f"{i + 1}_net_G_A.pth")
        epochs.append(tmp_path / f"{i + 1}_net_G_A.pth")
    store = derived_forms.FORMS

    def forms():
        return {p: p.stat().st_size for p in store.folder.glob("*.onnx")}

    def convert(pth, out):
        summary = ct.convert(tmp_path / "in", tmp_path / out, model=pth, backend="openvino")
        assert summary.converted == 2 and not summary.failed

    convert(epochs[0], "o1")
    first = forms()
    assert len(first) == 1  # its exported graph
    # Using a form again leaves the form itself as it was: its compiled OpenVINO forms are named by
    # its content, and a later run imports them instead of compiling anew.
    times = {p: p.stat().st_mtime_ns for p in first}
    blobs = set((tmp_path / "cache" / "cyclegan-tool" / "openvino").glob("*.blob"))
    convert(epochs[0], "o1b")
    assert {p: p.stat().st_mtime_ns for p in first} == times
    assert set((tmp_path / "cache" / "cyclegan-tool" / "openvino").glob("*.blob")) == blobs
    past = time.time() - 2 * cache.IN_USE_S
    for p in first:
        os.utime(store._record(p), (past, past))
    monkeypatch.setattr(store, "limit", int(1.5 * sum(first.values())))
    convert(epochs[1], "o2")
    second = forms()
    assert sum(second.values()) <= store.limit
    assert set(second) != set(first) and not set(first) & set(second)  # the older went first
    for p in second:  # (a form used in the last IN_USE_S seconds is never removed)
        os.utime(store._record(p), (past, past))
    convert(epochs[0], "o3")  # its removed form is made again
    assert sum(forms().values()) <= store.limit and set(forms()) == set(first)
