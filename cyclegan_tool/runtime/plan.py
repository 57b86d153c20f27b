"""The one planner: what a run's request means on this machine.

`make_plan(request, facts)` is a pure function. It turns what the user asked (the model file's
kind and precision, `--backend`, `--precision`, `--device`, whether the model comes with a
calibrated int8 form) and what the machine has (`facts.Facts`) into a frozen `Plan`: the device, the
reference way to run the model and, where `--backend auto` leaves a choice on a CPU, the
candidates in the order they are tried (`_cpu_ways`): the first whose fidelity holds runs
(runtime/fidelity_check.py measures fidelity; `choose` picks). Every combination is
either honoured or refused with a one-line ConfigError; nothing falls back in silence
(tests/test_plan.py walks the whole table).

A way to run a model is an `Option`: the form of the model (the file itself; a checkpoint
exported to ONNX; the FP32 graph's Winograd form; the int8 form), the runtime, and the
arithmetic it computes in. Backends are given these resolved values only.
"""

from __future__ import annotations

from dataclasses import dataclass

from cyclegan_tool.errors import ConfigError
from cyclegan_tool.runtime.facts import Facts

BACKENDS = ("auto", "tensorrt", "onnxruntime", "openvino", "pytorch")
PRECISIONS = ("auto", "fp16", "fp32", "bf16")
KINDS = ("engine", "onnx", "checkpoint")
KIND_BY_SUFFIX = {".plan": "engine", ".engine": "engine", ".onnx": "onnx", ".pt": "checkpoint", ".pth": "checkpoint"}
RUNTIME_OF_KIND = {"engine": "tensorrt", "onnx": "onnxruntime", "checkpoint": "pytorch"}


@dataclass(frozen=True)
class Option:
    """One way to run the model: `form` is "model" (the file as given), "onnx" (a checkpoint's
    generator exported to ONNX), "winograd" (the FP32 graph's Winograd form) or "int8" (its int8
    form); `compute` is the arithmetic: fp32, fp16, bf16, or int8 (with float parts in fp32 or,
    as "int8-bf16", in bf16)."""

    form: str
    runtime: str
    compute: str

    @property
    def key(self) -> str:
        """The name fidelity records and reason lines use: "openvino-bf16", "winograd-openvino-bf16", ..."""
        prefix = "" if self.form == "model" else f"{self.form}-"
        compute = self.compute.removeprefix("int8-") if self.form == "int8" else self.compute
        return f"{prefix}{self.runtime}-{compute}"


@dataclass(frozen=True, kw_only=True)
class Request:
    kind: str  # engine, onnx, checkpoint
    graph_precision: str = "fp32"  # an ONNX file's or engine's own: fp32, fp16 or int8 (checkpoints: fp32)
    backend: str = "auto"
    precision: str = "auto"
    device: str = "auto"
    int8_form: bool = False  # the model comes with a calibrated int8 form (a shipped model's)


@dataclass(frozen=True, kw_only=True)
class Plan:
    device: str  # "cpu" or "cuda:N"
    reference: Option  # the exact way: what candidates are compared with and what runs without a choice
    candidates: tuple[Option, ...]  # in the order they are tried (the reference among them when it may run)
    reason: str  # why, for the start line

    @property
    def fixed(self) -> bool:
        return self.candidates == (self.reference,)


def _cuda_index(device: str, facts: Facts) -> str:
    index = device.split(":", 1)[1] if ":" in device else "0"
    if not index.isdigit():
        raise ConfigError(f"--device '{device}' is not a device (use cpu, cuda or cuda:N)")
    if facts.gpus == 0:
        raise ConfigError(f"--device {device}: this machine has no NVIDIA GPU (use --device cpu)")
    if int(index) >= facts.gpus:
        raise ConfigError(f"--device {device}: this machine has {facts.gpus} NVIDIA GPU(s)")
    return f"cuda:{index}"


def _device(req: Request, facts: Facts, can_cuda: bool, why_not: str, cpu_runtime: bool = False) -> str:
    """`--device` resolved: auto is the GPU where the runtime can use one. `cpu_runtime`: the
    runtime asked for runs on CPUs only (said before anything about the machine's GPUs)."""
    if req.device == "cpu":
        return "cpu"
    if req.device == "auto":
        return "cuda:0" if facts.gpus and can_cuda else "cpu"
    if not (req.device == "cuda" or req.device.startswith("cuda:")):
        raise ConfigError(f"--device '{req.device}' is not a device (use auto, cpu, cuda or cuda:N)")
    if cpu_runtime:
        raise ConfigError(f"--device {req.device}: {why_not}")
    device = _cuda_index(req.device, facts)
    if not can_cuda:
        raise ConfigError(f"--device {req.device}: {why_not}")
    return device


def make_plan(req: Request, facts: Facts) -> Plan:
    if req.kind not in KINDS:
        raise ConfigError(f"unknown model kind '{req.kind}'")
    if req.backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, not '{req.backend}'")
    if req.precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, not '{req.precision}'")
    return {"engine": _engine, "onnx": _onnx, "checkpoint": _checkpoint}[req.kind](req, facts)


def _fixed(device: str, option: Option, reason: str) -> Plan:
    return Plan(device=device, reference=option, candidates=(option,), reason=reason)


def _engine(req: Request, facts: Facts) -> Plan:
    if req.backend not in ("auto", "tensorrt"):
        raise ConfigError(f"--backend {req.backend} cannot run a TensorRT engine (it runs on tensorrt)")
    if req.device == "cpu":
        raise ConfigError("a TensorRT engine runs only on an NVIDIA GPU, not with --device cpu; convert with the "
                          ".onnx file instead")
    if req.device == "auto" and not facts.gpus:
        raise ConfigError("a TensorRT engine needs an NVIDIA GPU, and this machine has none; convert with the "
                          ".onnx file instead")
    device = "cuda:0" if req.device == "auto" else _cuda_index(req.device, facts)
    if req.precision not in ("auto", req.graph_precision):
        raise ConfigError(f"--precision {req.precision}: this engine computes in {req.graph_precision}, fixed "
                          f"when it was built (build another with `export --engine`{' --fp16' if req.precision == 'fp16' else ''})")
    return _fixed(device, Option("model", "tensorrt", req.graph_precision), f"TensorRT engine -> tensorrt on {device}")


def _onnx(req: Request, facts: Facts) -> Plan:
    graph = req.graph_precision
    if req.backend in ("tensorrt", "pytorch"):
        raise ConfigError(f"--backend {req.backend} cannot run an ONNX model (use onnxruntime, openvino or auto; "
                          f"{'build an engine with `export --engine`' if req.backend == 'tensorrt' else 'give the checkpoint instead'})")
    can_cuda = req.backend != "openvino" and facts.ort_cuda
    why_not = ("--backend openvino runs on the CPU here" if req.backend == "openvino" else
               "this ONNX Runtime has no CUDA provider (pip install onnxruntime-gpu), so it would run on the CPU")
    device = _device(req, facts, can_cuda, why_not, cpu_runtime=req.backend == "openvino")
    if device.startswith("cuda"):
        if req.precision not in ("auto", graph):
            raise ConfigError(f"--precision {req.precision}: this ONNX graph computes in {graph} on ONNX Runtime's "
                              f"CUDA provider ({'export it with --fp16' if req.precision == 'fp16' else 'export it again at that precision'})")
        return _fixed(device, Option("model", "onnxruntime", graph), f"ONNX model -> onnxruntime on {device}")
    if req.precision == "fp16" and graph != "fp16":
        raise ConfigError("--precision fp16: this CPU computes fp32, bf16 (where native) or int8; fp16 is for GPUs "
                          "(or give an ONNX graph exported with --fp16)")
    if graph == "int8" and req.precision != "auto":
        raise ConfigError(f"--precision {req.precision}: this is an int8 graph; it runs at its own precision "
                          "(give the FP32 export for fp32 or bf16)")
    if graph == "fp16" and req.precision not in ("auto", "fp16"):
        raise ConfigError(f"--precision {req.precision}: this is an fp16 graph; give the FP32 export for "
                          f"{req.precision}")
    own = Option("model", "onnxruntime", graph)  # graph precision on ONNX Runtime: the reference
    ov = facts.openvino
    if req.backend == "onnxruntime":
        if req.precision == "bf16":
            raise ConfigError("--precision bf16: ONNX Runtime computes the graph's own precision; use --backend "
                              "openvino (or auto) for bf16")
        return _fixed(device, own, "ONNX model -> onnxruntime on cpu (asked for)")
    if req.precision == "bf16":
        _need_bf16(facts)
    if req.backend == "openvino":
        if not ov:
            raise ConfigError("--backend openvino: OpenVINO is not installed (pip install openvino)")
        compute = "bf16" if req.precision == "bf16" else graph
        option = Option("model", "openvino", compute if graph != "int8" else "int8")
        return Plan(device="cpu", reference=own, candidates=(option,),
                    reason=f"ONNX model -> openvino computing in {compute} on cpu (asked for)")
    # --backend auto on a CPU: the ways that may run, in the order they are tried.
    if graph == "int8":  # a user's int8 graph: OpenVINO first (its float parts in bf16 where native), as measured
        found = [Option("model", "openvino", "int8-bf16")] if ov and facts.native_int8 and facts.native_bf16 else []
        found += [Option("model", "openvino", "int8")] if ov else []
        return Plan(device="cpu", reference=own, candidates=(*found, own), reason="int8 ONNX model on cpu")
    if graph != "fp32":  # a user's fp16 graph: its own precision on either runtime
        found = [own] + ([Option("model", "openvino", graph)] if ov else [])
        return Plan(device="cpu", reference=own, candidates=tuple(found), reason=f"{graph} ONNX model on cpu")
    what = {"auto": "ONNX model on cpu", "fp32": "ONNX model on cpu, fp32 arithmetic",
            "bf16": "ONNX model on cpu, bf16 arithmetic"}[req.precision]
    return Plan(device="cpu", reference=own, candidates=_cpu_ways("model", own, req, facts), reason=what)


def _cpu_ways(form: str, reference: Option, req: Request, facts: Facts) -> tuple[Option, ...]:
    """The ways `--backend auto` may run an FP32 model on this CPU, in the order it tries them:
    fastest first as measured on CPUs (docs/BENCHMARKS.md, bench/convert_bench.py), the exact
    reference last. The first whose output stays within the fidelity bar of the reference's on
    the run's first image runs (runner.py); so the choice is a function of the model, the request
    and the CPU's features, never of timings or of what a cache holds. `form` is the FP32 graph's:
    "model" (an ONNX file) or "onnx" (a checkpoint's export)."""
    ov = bool(facts.openvino)
    bf16 = req.precision in ("auto", "bf16") and facts.native_bf16
    fp32 = req.precision in ("auto", "fp32")
    int8 = req.precision == "auto" and req.int8_form
    checkpoint = reference.runtime == "pytorch"
    ways: list[Option] = []
    if int8 and ov and facts.native_int8 and facts.native_bf16:
        ways.append(Option("int8", "openvino", "int8-bf16"))
    if bf16 and ov:
        ways += [Option("winograd", "openvino", "bf16"), Option(form, "openvino", "bf16")]
    if int8 and facts.native_int8:
        ways.append(Option("int8", "openvino", "int8") if ov else Option("int8", "onnxruntime", "int8"))
    if fp32 and ov:
        ways.append(Option("winograd", "openvino", "fp32"))
    if checkpoint and (bf16 or (req.precision == "bf16" and not facts.native_bf16)):
        ways.append(Option("model", "pytorch", "bf16"))  # asked for where emulated: honoured, and said
    if fp32 and ov:
        ways.append(Option(form, "openvino", "fp32"))
    if int8 and not facts.native_int8:  # without int8 dot products the float forms come first
        ways.append(Option("int8", "openvino", "int8") if ov else Option("int8", "onnxruntime", "int8"))
    if fp32:
        ways.append(reference)
    return tuple(ways)


def _need_bf16(facts: Facts) -> None:
    if not facts.native_bf16:
        raise ConfigError("--precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX); it would be emulated, "
                          "slower and less exact than fp32")
    if not facts.openvino:
        raise ConfigError("--precision bf16 for an ONNX model computes on OpenVINO, which is not installed "
                          "(pip install openvino)")


def _checkpoint(req: Request, facts: Facts) -> Plan:
    if req.backend == "tensorrt":
        raise ConfigError("--backend tensorrt runs engines; build one with `cyclegan-tool export CHECKPOINT --engine "
                          "m.plan`")
    can_cuda = req.backend in ("auto", "pytorch") and facts.torch_cuda
    why_not = ("this PyTorch has no CUDA (install a CUDA build of torch)" if req.backend in ("auto", "pytorch")
               else f"--backend {req.backend} runs the checkpoint's ONNX export on the CPU here")
    device = _device(req, facts, can_cuda, why_not, cpu_runtime=req.backend in ("onnxruntime", "openvino"))
    exact = Option("model", "pytorch", "fp32")
    if device.startswith("cuda"):
        compute = {"auto": "fp16"}.get(req.precision, req.precision)
        return _fixed(device, Option("model", "pytorch", compute), f"PyTorch weights -> pytorch {compute} on {device}")
    if req.precision == "fp16":
        raise ConfigError("--precision fp16: FP16 PyTorch inference needs a CUDA GPU; on this CPU use fp32 or bf16")
    ov = facts.openvino
    if req.backend == "pytorch":
        compute = "bf16" if req.precision == "bf16" else "fp32"
        note = "" if compute != "bf16" or facts.native_bf16 else " (this CPU emulates bf16: slower than fp32)"
        return Plan(device="cpu", reference=exact, candidates=(Option("model", "pytorch", compute),),
                    reason=f"PyTorch weights -> pytorch {compute} on cpu (asked for){note}")
    if req.backend == "onnxruntime":
        if req.precision == "bf16":
            raise ConfigError("--precision bf16: ONNX Runtime computes the graph's own fp32; use --backend openvino, "
                              "pytorch or auto for bf16")
        return Plan(device="cpu", reference=exact, candidates=(Option("onnx", "onnxruntime", "fp32"),),
                    reason="PyTorch weights exported to ONNX -> onnxruntime on cpu (asked for)")
    if req.backend == "openvino":
        if not ov:
            raise ConfigError("--backend openvino: OpenVINO is not installed (pip install openvino)")
        if req.precision == "bf16":
            _need_bf16(facts)
        compute = "bf16" if req.precision == "bf16" else "fp32"
        return Plan(device="cpu", reference=exact, candidates=(Option("onnx", "openvino", compute),),
                    reason=f"PyTorch weights exported to ONNX -> openvino computing in {compute} on cpu (asked for)")
    note = " (this CPU emulates bf16: slower than fp32)" if req.precision == "bf16" and not facts.native_bf16 else ""
    what = {"auto": "PyTorch weights on cpu", "fp32": "PyTorch weights on cpu, fp32 arithmetic",
            "bf16": "PyTorch weights on cpu, bf16 arithmetic"}[req.precision]
    return Plan(device="cpu", reference=exact, candidates=_cpu_ways("onnx", exact, req, facts), reason=what + note)


def choose(plan: Plan, psnr: dict[str, float], min_psnr: float) -> Option | None:
    """The candidate to run: the first, in the plan's order, whose output is within `min_psnr`
    (PSNR against the reference's, on the run's first image); the reference passes by definition.
    None while the first that could still be chosen lacks its figure (check it). Where none
    passes, the reference if it is a candidate, else the first (a precision asked for)."""
    for c in plan.candidates:
        if c == plan.reference:
            return c
        if c.key not in psnr:
            return None
        if psnr[c.key] >= min_psnr:
            return c
    return plan.reference if plan.reference in plan.candidates else plan.candidates[0]
