"""OpenVINO's compiled forms (runtime/ov_compiled.py): one for any shape, one per recurring
shape, each kept as a blob that a later run imports; bad blobs and failed forms fall back."""

from __future__ import annotations

import importlib.util
import shutil
import time

import pytest
import torch

from cyclegan_tool.errors import BackendError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                reason="OpenVINO is not installed (pip install '.[openvino]')")


@pytest.fixture
def model(tiny_onnx, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx, path)
    return path


def blobs(tmp_path) -> list[str]:
    return sorted(p.name.split(".", 1)[1] for p in (tmp_path / "cache" / "cyclegan-tool" / "openvino").glob("*.blob"))


def count_compiles(monkeypatch) -> list:
    from cyclegan_tool.runtime import ov_compiled

    made = []
    real = ov_compiled.CompiledForms._compile

    def spy(self, shape):
        made.append(shape)
        return real(self, shape)

    monkeypatch.setattr(ov_compiled.CompiledForms, "_compile", spy)
    return made


def test_forms_per_shape_are_compiled_once_and_imported_by_later_runs(model, tmp_path, monkeypatch):
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend
    from cyclegan_tool.runtime.ov_compiled import FIXED_AFTER

    made = count_compiles(monkeypatch)
    x, other, third = (torch.rand(1, 3, h, w) * 2 - 1 for h, w in ((32, 40), (24, 24), (16, 16)))
    with OpenVINOBackend(model) as be:
        assert made == []  # nothing compiled before the first input
        outs = [be.infer(x) for _ in range(2)]
        assert made == [(1, 3, 32, 40)]  # the model's first shape here: its own form
        for _ in range(FIXED_AFTER - 1):
            be.infer(other)
        assert made == [(1, 3, 32, 40), None]  # another shape: the form for any shape
        be.infer(other)
        assert made == [(1, 3, 32, 40), None, (1, 3, 24, 24)]  # recurred FIXED_AFTER times: its own
    assert blobs(tmp_path) == ["1x3x24x24.blob", "1x3x32x40.blob", "any.blob"]
    assert torch.allclose(outs[1], outs[0], atol=1e-5)
    made.clear()
    with OpenVINOBackend(model) as be:  # a later run imports what it needs, compiles nothing
        assert torch.allclose(be.infer(x), outs[0], atol=1e-5)
        be.infer(third)
        assert list(be.forms.requests) == [(1, 3, 32, 40), None]
    assert made == []
    with OpenVINOBackend(model) as be:  # the same from the form for any shape
        be.forms.unfixed.add((1, 3, 32, 40))
        assert torch.allclose(be.infer(x), outs[0], atol=1e-5) and list(be.forms.requests) == [None]


def test_a_blob_that_cannot_be_imported_is_removed_and_the_graph_compiled_again(model, tmp_path, monkeypatch):
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with OpenVINOBackend(model) as be:
        first = be.infer(x)
    (blob,) = (tmp_path / "cache" / "cyclegan-tool" / "openvino").glob("*.1x3x32x32.blob")
    blob.write_bytes(blob.read_bytes()[:1000])  # cut, as by a full disk
    made = count_compiles(monkeypatch)
    with OpenVINOBackend(model) as be:
        assert torch.allclose(be.infer(x), first, atol=1e-5)
    assert made == [(1, 3, 32, 32)] and blob.stat().st_size > 1000  # written again, whole


def test_a_shape_whose_own_form_fails_keeps_the_form_for_any_shape(model, tmp_path, monkeypatch):
    from cyclegan_tool.runtime import ov_compiled
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    real = ov_compiled.CompiledForms._compile

    def no_fixed(self, shape):
        if shape is not None:
            raise RuntimeError("cannot reshape")
        return real(self, shape)

    monkeypatch.setattr(ov_compiled.CompiledForms, "_compile", no_fixed)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with OpenVINOBackend(model) as be:
        outs = [be.infer(x) for _ in range(ov_compiled.FIXED_AFTER + 2)]
        assert list(be.forms.requests) == [None] and be.forms.unfixed == {(1, 3, 32, 32)}
    monkeypatch.setattr(ov_compiled.CompiledForms, "_compile", lambda self, shape: 1 / 0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    with OpenVINOBackend(model) as be, pytest.raises(BackendError, match="m.onnx: OpenVINO cannot compile it"):
        be.infer(torch.rand(1, 3, 16, 16))  # nothing compiles: one line naming the file
    assert all(torch.allclose(o, outs[0]) for o in outs)


def test_blobs_are_named_by_the_models_content_and_settings(model, tmp_path):
    from cyclegan_tool.runtime.ov_compiled import blob_key

    config = {"INFERENCE_PRECISION_HINT": "f32"}
    key = blob_key(model, config, "1")
    assert key == blob_key(model, dict(config), "1")
    assert key != blob_key(model, {"INFERENCE_PRECISION_HINT": "bf16"}, "1") != blob_key(model, config, "2")
    data = model.read_bytes()
    time.sleep(0.05)  # past the file system's clock tick
    model.write_bytes(data)  # rewritten in place with the same bytes: the same model, the same blobs
    assert blob_key(model, config, "1") == key
    import numpy as np
    import onnx

    proto = onnx.load(str(model))
    init = proto.graph.initializer[0]
    init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init) + np.float32(1), init.name))
    onnx.save(proto, str(model))  # other weights at the same path: never an old blob
    assert blob_key(model, config, "1") != key


def test_a_run_holds_at_most_FIXED_MAX_forms_for_one_shape(model, monkeypatch):
    from cyclegan_tool.runtime import ov_compiled
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    monkeypatch.setattr(ov_compiled, "FIXED_AFTER", 1)  # every shape recurs "enough"
    monkeypatch.setattr(ov_compiled, "FIXED_MAX", 2)
    sizes = [(16, 16), (16, 20), (20, 16), (24, 24)]
    with OpenVINOBackend(model) as be:
        for h, w in sizes:
            be.infer(torch.rand(1, 3, h, w))
        assert list(be.forms.requests) == [(1, 3, 16, 16), (1, 3, 16, 20), None]
