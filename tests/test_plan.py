"""The planner's table: every backend x precision x model kind x device x machine is either
honoured or refused with one line; nothing asked for is dropped, nothing falls back in silence."""

from __future__ import annotations

from dataclasses import replace

import itertools

import pytest

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.runtime.facts import Facts
from cyclegan_tool.runtime.plan import BACKENDS, PRECISIONS, Option, Request, choose, make_plan

KINDS = [("engine", "fp16"), ("engine", "fp32"), ("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"),
         ("checkpoint", "fp32")]
DEVICES = ["auto", "cpu", "cuda", "cuda:1"]
MACHINES = {
    "cpu only, no OpenVINO": Facts(),
    "cpu with bf16 and OpenVINO": Facts(openvino="2025.0", native_bf16=True),
    "cpu without bf16, OpenVINO": Facts(openvino="2025.0"),
    "one GPU, CUDA runtimes": Facts(gpus=1, ort_cuda=True, torch_cuda=True, openvino="2025.0", native_bf16=True),
    "one GPU, CPU-only runtimes": Facts(gpus=1, openvino="2025.0"),
}
CASES = list(itertools.product(KINDS, BACKENDS, PRECISIONS, DEVICES, [False, True], MACHINES))


def _arithmetic(o: Option) -> str:
    return {"int8-bf16": "bf16"}.get(o.compute, o.compute)


@pytest.mark.parametrize("kind_precision, backend, precision, device, int8, machine", CASES)
def test_every_request_is_honoured_or_refused_in_one_line(kind_precision, backend, precision, device, int8,
                                                           machine):
    kind, graph = kind_precision
    facts = MACHINES[machine]
    req = Request(kind=kind, graph_precision=graph, backend=backend, precision=precision, device=device,
                  int8_form=int8)
    try:
        plan = make_plan(req, facts)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert plan.candidates and plan.reference
    runtimes = {o.runtime for o in plan.candidates}
    # A backend asked for is the one that runs (a checkpoint's ONNX runtimes run its export).
    if backend != "auto":
        assert runtimes == {backend}, (plan, req)
    # A precision asked for is the arithmetic of every candidate (int8 forms only when nothing was asked).
    if precision != "auto":
        assert {_arithmetic(o) for o in plan.candidates} == {precision}, (plan, req)
    else:
        assert all(o.form != "int8" for o in plan.candidates) or int8 or graph == "int8"
    # A device asked for is where it runs; auto is a GPU only where the chosen runtime can use one.
    if device == "cpu":
        assert plan.device == "cpu"
    elif device.startswith("cuda"):
        assert plan.device == ("cuda:1" if device == "cuda:1" else "cuda:0")
    if plan.device.startswith("cuda"):
        assert runtimes <= {"tensorrt", "onnxruntime", "pytorch"} and facts.gpus
        assert runtimes != {"onnxruntime"} or facts.ort_cuda
        assert runtimes != {"pytorch"} or facts.torch_cuda
    else:
        assert "tensorrt" not in runtimes
        # bf16 is planned only where it is native, except PyTorch asked for it (said to be emulated)
        if any(_arithmetic(o) == "bf16" for o in plan.candidates) and not facts.native_bf16:
            assert precision == "bf16" and runtimes == {"pytorch"} and "emulates bf16" in plan.reason
        assert all(o.runtime != "openvino" for o in plan.candidates) or facts.openvino


@pytest.mark.parametrize("req, facts, message", [
    # the four silent drops issue 25 lists, each now honoured or a one-line error
    (Request(kind="onnx", backend="openvino", precision="bf16"), MACHINES["cpu with bf16 and OpenVINO"], None),
    (Request(kind="engine", graph_precision="fp16", precision="fp32"), MACHINES["one GPU, CUDA runtimes"],
     "computes in fp16, fixed when it was built"),
    (Request(kind="onnx", precision="fp16", device="cuda"), MACHINES["one GPU, CUDA runtimes"],
     "this ONNX graph computes in fp32"),
    (Request(kind="onnx", precision="fp16"), MACHINES["cpu with bf16 and OpenVINO"], "fp16 is for GPUs"),
    (Request(kind="onnx", device="cuda"), MACHINES["one GPU, CPU-only runtimes"], "no CUDA provider"),
    (Request(kind="onnx", precision="bf16"), MACHINES["cpu without bf16, OpenVINO"], "no native bf16"),
    (Request(kind="engine", device="cpu"), MACHINES["one GPU, CUDA runtimes"], "runs only on an NVIDIA GPU"),
])
def test_the_requests_that_used_to_be_dropped(req, facts, message):
    if message is None:
        plan = make_plan(req, facts)
        assert [(o.runtime, o.compute) for o in plan.candidates] == [("openvino", "bf16")]
        return
    with pytest.raises(ConfigError, match=message):
        make_plan(req, facts)


def test_auto_on_a_gpu_machine_with_a_cpu_only_onnxruntime_plans_the_cpu():
    plan = make_plan(Request(kind="onnx"), MACHINES["one GPU, CPU-only runtimes"])
    assert plan.device == "cpu" and "cpu" in plan.reason


def test_candidates_come_fastest_first_with_the_reference_last():
    plan = make_plan(Request(kind="onnx", int8_form=True), MACHINES["cpu with bf16 and OpenVINO"])
    assert [o.key for o in plan.candidates] == [
        "winograd-openvino-bf16", "openvino-bf16", "winograd-openvino-fp32", "openvino-fp32", "int8-openvino-int8",
        "onnxruntime-fp32"]  # (no int8 dot products in this machine's facts: its int8 form comes late)
    fast_int8 = replace(MACHINES["cpu with bf16 and OpenVINO"], native_int8=True)
    assert make_plan(Request(kind="onnx", int8_form=True), fast_int8).candidates[0].key == "int8-openvino-bf16"
    checkpoint = make_plan(Request(kind="checkpoint"), MACHINES["cpu with bf16 and OpenVINO"])
    assert [o.key for o in checkpoint.candidates] == [
        "winograd-openvino-bf16", "onnx-openvino-bf16", "winograd-openvino-fp32", "pytorch-bf16",
        "onnx-openvino-fp32", "pytorch-fp32"]
    assert checkpoint.candidates[-1] == checkpoint.reference
    users_int8 = make_plan(Request(kind="onnx", graph_precision="int8"), fast_int8)
    assert [o.key for o in users_int8.candidates] == ["openvino-int8-bf16", "openvino-int8", "onnxruntime-int8"]


def test_choose_takes_the_first_within_the_bar():
    plan = make_plan(Request(kind="onnx", int8_form=True), MACHINES["cpu with bf16 and OpenVINO"])
    db = {"winograd-openvino-bf16": 30.0, "openvino-bf16": 43.0}
    assert choose(plan, db, 35.0).key == "openvino-bf16"  # the first under the bar is passed over
    db["winograd-openvino-bf16"] = 36.0
    assert choose(plan, db, 35.0).key == "winograd-openvino-bf16"
    assert choose(plan, {"openvino-bf16": 50.0}, 35.0) is None  # the first's fidelity is unknown: check it
    every = {o.key: 10.0 for o in plan.candidates}
    assert choose(plan, every, 35.0) == plan.reference  # none within the bar: the exact way
    bf16 = make_plan(Request(kind="onnx", precision="bf16"), MACHINES["cpu with bf16 and OpenVINO"])
    assert choose(bf16, {o.key: 10.0 for o in bf16.candidates}, 35.0) == bf16.candidates[0]  # asked for
