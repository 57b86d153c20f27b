"""The int8 graph writer (export/qdq.py) and the calibration's range measure (export/int8.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import write_domain
from onnx import TensorProto, helper, numpy_helper

from cyclegan_tool.export import int8, qdq
from cyclegan_tool.export.parity import ort_session


def exact_tail(arrays: list[np.ndarray]) -> float:
    """The PERCENTILE of |x| as UpperTail defines it: the k-th largest of all values, k = ceil(n * 1e-4)."""
    a = np.sort(np.abs(np.concatenate([x.ravel() for x in arrays])))
    k = int(np.ceil(a.size * (1 - int8.PERCENTILE / 100)))
    return float(a[a.size - k])


@pytest.mark.parametrize("size", [1000, 300_000])  # the larger one takes the first array's shortcut
def test_the_upper_tail_is_exact_over_all_arrays(size):
    rng = np.random.default_rng(size)
    # Heavy tails, different scales per array: the tail mostly comes from a few of them.
    arrays = [rng.standard_t(3, size).astype(np.float32) * s for s in (1.0, 4.0, 0.5, 2.0, 1.0)]
    tail = int8.UpperTail(len(arrays))
    for a in arrays:
        tail.add(a)
    assert tail.value() == exact_tail(arrays)


def two_convs_sharing_initializers() -> onnx.ModelProto:
    """x -> Conv(w, b) -> Relu -> Conv(w, b): the exporter shares identical initializers like this
    (freshly initialised biases are all zeros)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w", "b"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_shared_initializers_get_a_quantized_copy_per_node():
    model = two_convs_sharing_initializers()
    rng = np.random.default_rng(1)
    inputs = [rng.normal(0, 1, (1, 4, 8, 8)).astype(np.float32) for _ in range(4)]
    quantized, references = int8.quantize(model, inputs)
    onnx.checker.check_model(quantized, full_check=True)  # names are unique
    ops = [n.op_type for n in quantized.graph.node]
    assert ops.count("Conv") == 2 and ops.count("QuantizeLinear") == 4  # each conv's input and output
    weights = [i for i in quantized.graph.initializer if i.data_type == TensorProto.INT8 and len(i.dims) == 4]
    assert len(weights) == 2
    session = ort_session(quantized.SerializeToString())
    y = session.run(None, {"x": inputs[0]})[0]
    assert int8.fidelity(quantized, inputs, references, 8.0) > 30 and y.shape == references[0].shape


def test_weights_are_int8_per_output_channel_within_half_a_step():
    w = np.random.default_rng(2).normal(0, 1, (5, 3, 3, 3)).astype(np.float32)
    w[2] = 0  # an all-zero channel keeps a usable scale
    q, scale = qdq.quantize_weights(w)
    assert q.dtype == np.int8 and scale.shape == (5,) and np.abs(q).max() <= 127 and scale[2] > 0
    assert np.all(np.abs(q * scale[:, None, None, None] - w) <= scale[:, None, None, None] / 2 + 1e-7)


def test_int8_export_prints_nothing_but_the_tools_own_lines(tiny_generator, tmp_path, capfd):
    """Calibration used to print ONNX Runtime's quantizer progress on stdout and warnings on stderr,
    in the middle of a `convert` run's output."""
    from cyclegan_tool import api

    write_domain(tmp_path / "calib", 8, (32, 32), (0.6, 0.4, 0.3), seed=3)
    capfd.readouterr()
    api.export(tiny_generator, output=tmp_path / "q.onnx", int8=tmp_path / "calib", calib_size=32, int8_min_psnr=15)
    out, err = capfd.readouterr()
    assert (tmp_path / "q.onnx").is_file() and out == "" and err == ""
