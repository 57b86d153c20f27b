"""OpenVINO's compiled forms (runtime/ov_compiled.py): one for one image of a fixed size
(256x256), one for any other shape, chosen by the shape alone, so a model's output does not
depend on which shapes came before; kept as blobs that a later run imports; a bad blob is
compiled again."""

from __future__ import annotations

import importlib.util
import shutil
import time

import pytest
import torch
from conftest import count_compiles

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


def test_one_form_for_every_shape_compiled_once_and_imported_by_later_runs(model, tmp_path, monkeypatch):
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    made = count_compiles(monkeypatch)
    x, other = (torch.rand(1, 3, h, w) * 2 - 1 for h, w in ((32, 40), (24, 24)))
    with OpenVINOBackend(model) as be:
        assert made == []  # nothing compiled before the first input
        first = be.infer(x)
        for _ in range(10):
            be.infer(other)
        assert made == ["any"]
    assert blobs(tmp_path) == ["any.blob"]
    made.clear()
    with OpenVINOBackend(model) as be:  # a later run imports it (mapped, not read), compiles nothing
        assert torch.equal(be.infer(x), first) and len(be.forms.mapped) == 1
    assert made == []


@pytest.mark.parametrize("size", [(32, 40), (256, 256)])
def test_the_output_does_not_depend_on_the_shapes_before(model, tmp_path, size):
    """A form compiled for one shape alone gives other last bits than the any-shape form in bf16
    (the Winograd form) and int8 graphs: the same image must give the same numbers whatever came
    first, in this run or one before (for an image of a fixed size as for any other)."""
    import onnx

    from cyclegan_tool.export.graph_edit import save_model
    from cyclegan_tool.export.winograd import rewrite
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    wino = tmp_path / "w.onnx"
    save_model(rewrite(onnx.load(str(model)))[0], wino, full_check=False)
    model = wino
    x, other = (torch.rand(1, 3, h, w) * 2 - 1 for h, w in (size, (64, 64)))
    with OpenVINOBackend(model, compute="bf16") as be:
        alone = be.infer(x)
    for cache in ("fresh", "fresh2"):
        (tmp_path / "cache").rename(tmp_path / f"old_{cache}")
        with OpenVINOBackend(model, compute="bf16") as be:
            be.infer(other)
            assert torch.equal(be.infer(x), alone)


def test_one_image_of_a_fixed_size_runs_on_a_form_of_its_own(model, tmp_path, monkeypatch):
    """256x256 alone (10-11% faster compiled for that shape, bench/ov_forms_bench.py) has a form of
    its own, compiled on first use and imported by later runs; a batch of such images and every
    other size share the any-shape form."""
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend
    from cyclegan_tool.runtime.ov_compiled import form_for

    assert form_for((1, 3, 256, 256)) == "256x256"
    assert form_for((2, 3, 256, 256)) == form_for((1, 3, 256, 252)) == form_for((1, 1, 512, 512)) == "any"
    made = count_compiles(monkeypatch)
    fixed = torch.rand(1, 3, 256, 256) * 2 - 1
    with OpenVINOBackend(model) as be:
        first = be.infer(fixed)
        assert made == ["256x256"] and torch.equal(be.infer(fixed), first)
        pair = be.infer(torch.cat([fixed, fixed]))
        be.infer(torch.rand(1, 3, 24, 24))
        assert made == ["256x256", "any"]
        assert torch.allclose(pair[:1], first, atol=1e-4)  # the same arithmetic, differently blocked
    assert blobs(tmp_path) == ["256x256.blob", "any.blob"]
    made.clear()
    with OpenVINOBackend(model) as be:  # a later run imports both
        assert torch.equal(be.infer(fixed), first)
        be.infer(torch.rand(1, 3, 24, 24))
    assert made == []


def test_a_blob_that_cannot_be_imported_is_removed_and_the_graph_compiled_again(model, tmp_path, monkeypatch):
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with OpenVINOBackend(model) as be:
        first = be.infer(x)
    (blob,) = (tmp_path / "cache" / "cyclegan-tool" / "openvino").glob("*.any.blob")
    blob.write_bytes(blob.read_bytes()[:1000])  # cut, as by a full disk
    made = count_compiles(monkeypatch)
    with OpenVINOBackend(model) as be:
        assert torch.allclose(be.infer(x), first, atol=1e-5)
    assert made == ["any"] and blob.stat().st_size > 1000  # written again, whole


def test_a_blob_openvino_refuses_is_removed_and_the_form_compiled_again(model, tmp_path, monkeypatch):
    """A whole, recorded blob that this OpenVINO cannot import (written by another build)."""
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend
    from cyclegan_tool.runtime.ov_compiled import BLOBS

    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with OpenVINOBackend(model) as be:
        first = be.infer(x)
        key = be.forms.key("any")
    BLOBS.put_bytes(key, ".any.blob", b"not a compiled model" * 100)
    made = count_compiles(monkeypatch)
    with OpenVINOBackend(model) as be:
        assert torch.allclose(be.infer(x), first, atol=1e-5)
    assert made == ["any"]
    assert BLOBS.get(key, ".any.blob").stat().st_size > 2000  # written again, whole


def test_an_openvino_that_imports_bytes_only_still_imports_the_blob(model, tmp_path, monkeypatch):
    """Blobs are mapped into memory and given to OpenVINO as a tensor; an OpenVINO that takes no
    tensor there (before 2025) gets the file's bytes and compiles nothing."""
    import openvino

    x = torch.rand(1, 3, 32, 32) * 2 - 1
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    with OpenVINOBackend(model) as be:
        first = be.infer(x)

    def no_tensor(*a, **k):
        raise TypeError("import_model(): incompatible function arguments")

    monkeypatch.setattr(openvino, "Tensor", no_tensor)
    made = count_compiles(monkeypatch)
    with OpenVINOBackend(model) as be:
        assert torch.equal(be.infer(x), first) and not be.forms.mapped
    assert made == []


def test_a_model_that_does_not_compile_is_one_line_naming_the_file(model, tmp_path, monkeypatch):
    from cyclegan_tool.runtime import ov_compiled
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

    monkeypatch.setattr(ov_compiled.CompiledForms, "_compile", lambda self, form: 1 / 0)
    with OpenVINOBackend(model) as be, pytest.raises(BackendError, match="m.onnx: OpenVINO cannot compile it"):
        be.infer(torch.rand(1, 3, 16, 16))


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


def test_float_graphs_are_folded_before_compiling_with_the_same_output(model, tmp_path):
    """The constant shape arithmetic OpenVINO's ONNX reader adds for grouped convolutions (the
    Winograd form's depthwise steps) is folded before compiling: fewer operations to compile,
    the same numbers; int8 graphs are compiled as they are."""
    import onnx

    from cyclegan_tool.export.graph_edit import save_model
    from cyclegan_tool.export.winograd import rewrite
    from cyclegan_tool.runtime.ov_backend import OpenVINOBackend
    from cyclegan_tool.runtime.ov_compiled import CompiledForms, fold_constants

    wino = tmp_path / "w.onnx"
    save_model(rewrite(onnx.load(str(model)))[0], wino, full_check=False)
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16"}
    x = (torch.rand(1, 3, 36, 44) * 2 - 1).numpy()
    outs, ops = [], []
    for fold in (False, True):
        forms = CompiledForms(wino, config, fold=fold)
        outs.append(forms.request(x.shape).infer({0: x})[0].copy())
        forms.close()
        model_ = forms.read()
        if fold:
            fold_constants(model_)
        ops.append(len(model_.get_ops()))
    assert (outs[0] == outs[1]).all() and ops[1] < ops[0] * 0.6
    with OpenVINOBackend(wino, compute="bf16") as be:
        assert be.forms.fold
        assert (be.infer(x) == outs[1]).all()
    from cyclegan_tool.onnx_metadata import read_metadata_file, set_metadata

    int8, proto = tmp_path / "q.onnx", onnx.load(str(model))  # (its metadata is what decides)
    set_metadata(proto, {**read_metadata_file(model), "precision": "int8"})
    onnx.save(proto, str(int8))
    with OpenVINOBackend(int8) as be:
        be.infer(x[:, :, :32, :32])
        assert not be.forms.fold
