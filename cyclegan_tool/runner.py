"""From a model and a request to an opened backend: the planner's decision carried out.

    backend, why = open_backend(resolved, backend="auto", precision="auto", device="auto", jobs=jobs, opts=opts)

1. What the model is (`describe`): its kind, graph precision, architecture and direction, read
   from the ONNX metadata, the engine sidecar, or the checkpoint (whose facts are remembered
   by content digest, so a later run of it reads them without torch).
2. The plan (runtime/plan.py): device, reference and candidates, or a refusal.
3. Where a choice is left, the fidelity figures (runtime/fidelity_check.py): each way's PSNR
   against the exact way's output for this model, checked once on the run's first image and
   remembered by the model's content digest; `plan.choose` takes the first way in the plan's
   order within the bar. Nothing is timed: the choice depends on the model, the request and
   the CPU's features only.
4. The chosen way's form (export/forms.py: exported ONNX, Winograd form, int8 form), made once
   into the cache, and its backend.

This is layer 4 (it may use export/ and runtime/ together); the CLI, the GUI and `api` call it.
"""

from __future__ import annotations

import functools
import logging
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cyclegan_tool.cache import JsonCache, key
from cyclegan_tool.errors import BackendError, ConfigError
from cyclegan_tool.runtime.base import Backend, ModelInfo
from cyclegan_tool.runtime.plan import KIND_BY_SUFFIX, Option, Plan, Request, choose, make_plan
from cyclegan_tool.specs import GeneratorSpec

log = logging.getLogger("cyclegan_tool.convert")
MODEL_FACTS = JsonCache("models.json")


@dataclass(frozen=True, kw_only=True)
class ModelFacts:
    """What the runner needs to know of a model without opening it."""

    kind: str
    precision: str  # the file's own: fp32, fp16, int8
    spec: GeneratorSpec
    direction: str
    pad_multiple: int
    min_side: int
    value_range: tuple[float, float]
    digest: str

    def info(self, source: Path) -> ModelInfo:
        return ModelInfo(spec=self.spec, direction=self.direction, precision=self.precision,
                         pad_multiple=self.pad_multiple, min_side=self.min_side, source=str(source),
                         value_range=self.value_range)

    def arch(self) -> dict:
        """What speed depends on: the architecture and the graph's precision (not the weights)."""
        return {**self.spec.to_dict(), "graph": self.precision}


def kind_of(path: Path) -> str:
    kind = KIND_BY_SUFFIX.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"{path}: unknown model type '{path.suffix}' (use .plan, .onnx, .pt or .pth)")
    return kind


def describe(path: Path, *, direction: str | None = None, spec: GeneratorSpec | None = None,
             norm_stats: str = "auto") -> ModelFacts:
    from cyclegan_tool.conventions import value_range_of
    from cyclegan_tool.model_files import digest

    kind = kind_of(path)
    if not path.is_file():
        raise BackendError(f"{path}: no such file")
    if kind == "onnx":
        from cyclegan_tool.onnx_metadata import min_side_of, read_metadata_file, require

        meta = require(read_metadata_file(path), path)
        return ModelFacts(kind=kind, precision=meta.get("precision", "fp32"), spec=GeneratorSpec.from_dict(meta["generator"]),
                          direction=meta.get("direction", "a2b"), pad_multiple=int(meta["pad_multiple"]),
                          min_side=min_side_of(meta), value_range=value_range_of(meta.get("conventions")),
                          digest=digest(path))
    if kind == "engine":
        from cyclegan_tool import sidecar

        side = sidecar.read(path)
        return ModelFacts(kind=kind, precision=side["precision"], spec=GeneratorSpec.from_dict(side["generator"]),
                          direction=side["direction"], pad_multiple=int(side["pad_multiple"]),
                          min_side=int(side.get("min_side", 8)), value_range=value_range_of(side.get("conventions")),
                          digest=digest(path))
    model_digest = digest(path)
    record_key = key("checkpoint", model_digest, direction, spec.to_dict() if spec else None, norm_stats)

    def valid(r) -> bool:
        return isinstance(r, dict) and isinstance(r.get("spec"), dict) and r.get("direction") in ("a2b", "b2a")

    record = MODEL_FACTS.get(record_key, valid)
    if record is None:  # read the checkpoint once; later runs of it need not
        from cyclegan_tool.export import direct

        weights = direct.read(path, direction=direction, spec=spec, norm_stats=norm_stats)
        if weights is not None:  # the reference ResNet layout, read without torch
            found, direction_ = weights.spec, weights.direction
            multiple, smallest, values = direct.PAD_MULTIPLE, direct.MIN_SIDE, direct.VALUE_RANGE
        else:
            from cyclegan_tool import checkpoints
            from cyclegan_tool.models import min_side, pad_multiple, value_range

            loaded = checkpoints.load_generator(path, direction=direction, spec=spec, norm_stats=norm_stats)
            found, direction_ = loaded.spec, loaded.direction
            multiple, smallest, values = pad_multiple(found), min_side(found), value_range(found)
        record = {"spec": found.to_dict(), "direction": direction_, "pad_multiple": multiple, "min_side": smallest,
                  "value_range": list(values)}
        MODEL_FACTS.put(record_key, record)
    return ModelFacts(kind=kind, precision="fp32", spec=GeneratorSpec.from_dict(record["spec"]),
                      direction=record["direction"], pad_multiple=int(record["pad_multiple"]),
                      min_side=int(record["min_side"]), value_range=tuple(record["value_range"]), digest=model_digest)


class Forms:
    """The file each option runs: the model, or a form derived from it (export/forms.py), found in
    the cache or made on first use."""

    def __init__(self, path: Path, facts: ModelFacts, *, int8: Path | None, direction: str | None, spec,
                 norm_stats: str):
        from cyclegan_tool.export import forms

        self.path, self.facts, self.int8 = path, facts, int8
        self.model_args = dict(direction=direction, spec=spec, norm_stats=norm_stats)
        # What names the generator the forms come from: an ONNX model by its digest, a checkpoint's
        # generator by the file's digest and what selects it.
        self.source = facts.digest if facts.kind == "onnx" else forms.source_id(facts.digest, direction, spec,
                                                                                  norm_stats)

    @functools.cached_property
    def checked(self) -> str:
        """What a fidelity figure of these forms is kept by: the model's content (its int8 form's
        too) and the versions of the forms derived from it, so that a changed rewrite or another
        int8 form is checked again, never assumed."""
        from cyclegan_tool.export import forms
        from cyclegan_tool.model_files import digest

        return key(self.facts.digest, forms.versions(), digest(self.int8) if self.int8 is not None else "")

    def has_int8(self) -> bool:
        """A calibrated int8 form comes with the model (a shipped model's), never from a cache."""
        return self.int8 is not None

    def file(self, option: Option) -> Path:
        from cyclegan_tool.export import forms

        if option.form == "model":
            return self.path
        if option.form == "int8":
            if self.int8 is None:
                raise BackendError(f"{self.path}: no int8 form")
            return self.int8
        if self.facts.kind == "onnx":
            return self.path if option.form == "onnx" else forms.winograd(self.source, lambda: self.path)
        if option.form == "onnx":
            return forms.exported(self.path, self.source, **self.model_args)
        return forms.winograd(self.source, lambda: forms.exported_graph(self.path, self.source, **self.model_args))


def planned(path: Path, request: Request, machine) -> Plan:
    """The plan, or the planner's refusal naming the model file."""
    try:
        return make_plan(request, machine)
    except ConfigError as e:
        raise ConfigError(f"{path.name}: {e}") from None


def _forms_and_plan(path: Path, facts: ModelFacts, resolved, machine, *, backend: str = "auto",
                    precision: str = "auto", device: str = "auto", direction: str | None = None,
                    spec: GeneratorSpec | None = None, norm_stats: str = "auto") -> tuple[Forms, Plan]:
    """The model's forms and the plan for the request on `machine` (what runs, checks or times it)."""
    forms = Forms(path, facts, int8=getattr(resolved, "int8", None), direction=direction, spec=spec,
                  norm_stats=norm_stats)
    plan = planned(path, Request(kind=facts.kind, graph_precision=facts.precision, backend=backend,
                                 precision=precision, device=device, int8_form=forms.has_int8()), machine)
    return forms, plan


def open_backend(resolved, *, backend: str = "auto", precision: str = "auto", device: str = "auto",
                 direction: str | None = None, spec: GeneratorSpec | None = None, norm_stats: str = "auto",
                 jobs: list | None = None, opts=None) -> tuple[Backend, str]:
    """An unopened backend for `resolved` (`api.ResolvedModel`) and the reason line; opened
    already where the fidelity check opened it. `jobs`/`opts`: the run, for the check's sample."""
    from cyclegan_tool.runtime.facts import gather
    from cyclegan_tool.runtime.select import backend_for

    path = Path(resolved.path)
    machine = gather(kind_of(path))
    # What the request alone refuses (an engine on the CPU, a runtime that cannot take the file),
    # before the file is read.
    planned(path, Request(kind=kind_of(path), backend=backend, device=device), machine)
    facts = describe(path, direction=direction, spec=spec, norm_stats=norm_stats)
    if facts.kind != "checkpoint" and direction and direction != facts.direction:
        raise ConfigError(f"{path.name} translates {facts.direction} only; --direction {direction} does not apply")
    forms, plan = _forms_and_plan(path, facts, resolved, machine, backend=backend, precision=precision,
                                  device=device, direction=direction, spec=spec, norm_stats=norm_stats)
    model_args = dict(direction=direction, spec=spec, norm_stats=norm_stats)
    hint = "" if machine.openvino or plan.device != "cpu" or backend != "auto" else \
        "; OpenVINO, not installed, adds faster CPU forms (`pip install openvino`)"
    if len(plan.candidates) == 1:
        option = plan.candidates[0]
        return (backend_for(option, forms.file(option), plan.device, **model_args),
                f"{path.name}: {plan.reason}{hint}")
    option, opened, why = _first_faithful(plan, facts, forms, path, jobs, opts, model_args)
    if option.form == "int8":  # never silently: the line names the int8 form
        why += f"; the model's int8 form {forms.file(option).name} (`--precision fp32` for the FP32 graph)"
    backend = opened or backend_for(option, forms.file(option), plan.device, **model_args)
    return backend, f"{path.name}: {plan.reason} -> {why}{hint}"


def _first_faithful(plan: Plan, facts: ModelFacts, forms: Forms, path: Path, jobs, opts, model_args):
    """(the option to run, its backend where checking opened it (else None), the reason's words):
    the plan's first candidate whose output on the run's first image is within the fidelity bar
    of the reference's (fidelity_check.py)."""
    from cyclegan_tool.runtime import fidelity_check
    from cyclegan_tool.runtime.options import ConvertOptions
    from cyclegan_tool.runtime.select import backend_for

    ref, bar = plan.reference, fidelity_check.MIN_PSNR_DB
    db = fidelity_check.known_fidelity(plan.candidates, forms.checked)
    opened: dict[str, Backend] = {}
    reference: Future | None = None
    reference_out = None
    pool = ThreadPoolExecutor(1, thread_name_prefix="reference")

    def run_reference(sample):
        """(its backend, opened, or None where it ran in a process of its own; its output)."""
        from cyclegan_tool.runtime import exact_worker

        if ref.runtime == "pytorch" and plan.device == "cpu" and exact_worker.worthwhile():
            return None, exact_worker.exact_output(path, sample, **model_args)
        be = backend_for(ref, forms.file(ref), plan.device, **model_args).open()
        try:
            return be, be.infer(sample)
        except BaseException:
            be.close()
            raise

    def reference_output():
        nonlocal reference_out
        if reference_out is None:
            be, reference_out = reference.result()
            if be is not None:
                opened[ref.key] = be
        return reference_out

    try:
        while (choice := choose(plan, db, bar)) is None:
            c = next(c for c in plan.candidates if c.key not in db)
            if reference is None:
                sample = fidelity_check.sample_from(jobs or [], opts or ConvertOptions(), facts.info(path))()
                if sample is None:  # nothing checked, nothing recorded
                    first = ref if ref in plan.candidates else plan.candidates[0]
                    return first, None, f"{first.key} (not checked: no image of the run to check the others on)"
                # The exact way runs beside the making and compiling of the first candidate's form
                # (a checkpoint's in a process of its own: exact_worker.py).
                reference = pool.submit(run_reference, sample)
            try:
                be = opened[c.key] = backend_for(c, forms.file(c), plan.device, **model_args).open()
                out = be.infer(sample)
                be.remember(sample, out)  # (the run's first image itself, where it is the sample)
            except (OSError, MemoryError) as e:  # the machine's state, not the model's: not remembered
                log.warning("%s could not run now (%s); it is tried again next time", c.key, e)
                db[c.key] = -math.inf
                continue
            except Exception as e:  # this way cannot run this model: remembered
                log.info("%s cannot run %s: %s", c.key, path.name, str(e).splitlines()[0] if str(e) else e)
                db[c.key] = 0.0
                fidelity_check.record_fidelity(c, forms.checked, 0.0)
                continue
            db[c.key] = fidelity_check.fidelity_of(out, reference_output(), facts.value_range)
            fidelity_check.record_fidelity(c, forms.checked, db[c.key])
        if reference is not None:  # (the exact way's failure is the run's, even where no candidate needed it)
            reference_output()
        why = fidelity_check.summary(plan, choice, db, bar) + (" (checked now)" if reference is not None else "")
        return choice, opened.pop(choice.key, None), why
    finally:
        pool.shutdown(wait=True)
        if reference is not None and reference_out is None and not reference.exception():
            reference_output()  # an opened backend left by an interrupted check: closed below
        for be in opened.values():
            be.close()


def each_way(resolved, *, precision: str = "auto", device: str = "auto") -> tuple[Plan, list]:
    """The plan of `--backend auto` for `resolved` and an unopened backend for each of its
    candidates, in the order auto tries them (for `bench --ways`, which times them all)."""
    from cyclegan_tool.runtime.facts import gather
    from cyclegan_tool.runtime.select import backend_for

    path = Path(resolved.path)
    facts = describe(path)
    forms, plan = _forms_and_plan(path, facts, resolved, gather(facts.kind), precision=precision, device=device)
    return plan, [(c, backend_for(c, forms.file(c), plan.device)) for c in plan.candidates]


def describe_plan(resolved, *, backend: str = "auto", precision: str = "auto", device: str = "auto",
                  direction: str | None = None) -> str:
    """What a run of `resolved` would use, without making or checking anything: the plan's reason
    and the candidates in the order they are tried, with the figures known for this model (for
    `describe_model` and the GUI)."""
    from cyclegan_tool.runtime import fidelity_check
    from cyclegan_tool.runtime.facts import gather

    path = Path(resolved.path)
    facts = describe(path, direction=direction)
    forms, plan = _forms_and_plan(path, facts, resolved, gather(facts.kind), backend=backend, precision=precision,
                                  device=device, direction=direction)
    if len(plan.candidates) == 1:
        return f"{path.name}: {plan.reason}"
    db = fidelity_check.known_fidelity(plan.candidates, forms.checked)
    choice = choose(plan, db, fidelity_check.MIN_PSNR_DB)
    if choice is None:
        return (f"{path.name}: {plan.reason} -> the first of {', '.join(c.key for c in plan.candidates)} within "
                f"{fidelity_check.MIN_PSNR_DB:.0f} dB of {plan.reference.key} on the first image converted")
    return f"{path.name}: {plan.reason} -> {fidelity_check.summary(plan, choice, db, fidelity_check.MIN_PSNR_DB)}"


def exact_translator(resolved, *, direction: str | None = None, spec: GeneratorSpec | None = None,
                     norm_stats: str = "auto"):
    """How `run_convert` translates an image too large for one pass: band by band over the model's
    FP32 generator (runtime/banded.py; the same output as one pass, in bounded memory), loaded on
    first use from the checkpoint or the FP32 ONNX graph; None for an engine, or an ONNX graph in
    fp16 or int8 alone (no FP32 weights to run)."""
    path = Path(resolved.path)
    facts = describe(path, direction=direction, spec=spec, norm_stats=norm_stats)
    if facts.kind == "engine" or (facts.kind == "onnx" and facts.precision != "fp32"):
        return None
    state: dict = {}

    def run(x):
        from cyclegan_tool.runtime import banded

        if "net" not in state:
            if facts.kind == "onnx":
                from cyclegan_tool.weights import load_onnx_generator

                state["net"] = load_onnx_generator(path).net
            else:
                from cyclegan_tool import checkpoints

                state["net"] = checkpoints.load_generator(path, direction=direction, spec=spec,
                                                          norm_stats=norm_stats).net
            try:
                banded.check_bandable(state["net"])
            except banded.NotBandable:  # (the Keras chapter's U-Nets) one pass, in FP32
                state["one_pass"] = True
        if state.get("one_pass"):
            import torch

            with torch.no_grad():
                return state["net"](torch.from_numpy(x)).numpy()
        return banded.translate_exact(state["net"], x)

    return run

