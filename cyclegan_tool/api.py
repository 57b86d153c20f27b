"""The public Python API: every decision a user's options imply is made here or below.

    import cyclegan_tool as ct
    report = ct.convert("photos/", "zebras/", model="horse2zebra")        # -> runtime.Summary
    result = ct.evaluate(model="horse2zebra", source="testA/", real="testB/")  # -> EvalReport

`model` is anything `convert` runs: a `.plan` engine, an `.onnx` file, a `.pt` checkpoint,
a reference `.pth`, or a model's name (`cyclegan-tool models`: shipped, published (downloaded on
first use) or added by the user). The CLI and the GUI only parse options, call these and display
what they return or yield.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cyclegan_tool.errors import ConfigError

PathLike = str | os.PathLike


@dataclass(frozen=True)
class ResolvedModel:
    """A model file and what the tool knows about running it (models by name carry a scale)."""

    path: Path
    name: str | None = None  # the catalogue's name it was asked by
    source: str | None = None  # that entry's: shipped, published or user
    scale: int | None = None  # run at this shorter side, outputs resized back
    int8: Path | None = None  # a shipped model's calibrated int8 form, a CPU candidate of --backend auto
    direction: str | None = None  # which generator of the file to run (a training checkpoint holds two)
    note: str = ""  # how a request was met, for the start line (a shipped model's pair for --direction)


def shipped_models() -> list[str]:
    """The names of every model the catalogue knows (`cyclegan-tool models`: shipped, published and
    the user's), for menus."""
    from cyclegan_tool import zoo

    return list(zoo.catalogue())


def models() -> dict[str, dict]:
    """The catalogue: every model by name with its entry and `status` (shipped, published: not
    downloaded yet, downloaded, user)."""
    from cyclegan_tool import zoo

    return {name: {**entry, "status": zoo.status(name)} for name, entry in zoo.catalogue().items()}


def add_model(name: str, file: PathLike, *, link: bool = False, summary: str = "") -> dict:
    """Add a model file under `name` (`cyclegan-tool models add`); returns its catalogue entry."""
    from cyclegan_tool.zoo import user

    return user.add(name, file, link=link, summary=summary)


def remove_model(name: str) -> Path:
    """Remove a user's model, or a downloaded published model's file; returns the file removed."""
    from cyclegan_tool.zoo import user

    return user.remove(name)


def datasets() -> dict[str, Path | None]:
    """The benchmark datasets `pull_dataset` fetches, each with its folder where pulled already."""
    from cyclegan_tool.zoo.datasets import NAMES, find

    return {name: find(name) for name in NAMES}


def pull_dataset(name: str, dest: PathLike | None = None) -> tuple[Path, dict[str, int]]:
    """Download and unpack a benchmark dataset (zoo/datasets.py); (its folder, images per folder)."""
    from cyclegan_tool.zoo.datasets import pull

    return pull(name, Path(dest) if dest else None)


def resolve_model(model: PathLike, direction: str | None = None) -> ResolvedModel:
    """A path, or a model's name, -> the file to run and its defaults (a published model is
    downloaded here on first use). A training run's folder (ours or the reference's) stands for
    its latest checkpoint (`checkpoints.in_folder`; `direction` picks between the reference's two
    generator files). A named model asked for its other direction runs its pair."""
    path = Path(model)
    if path.is_dir():
        from cyclegan_tool import checkpoints

        return ResolvedModel(checkpoints.in_folder(path, direction), direction=direction)
    if path.exists() or path.suffix:
        return ResolvedModel(path, direction=direction)
    from cyclegan_tool import zoo

    name, note = str(model), ""
    entry = zoo.entry(name)
    if direction and entry["source"] != "user" and direction != entry.get("direction", "a2b"):
        pair = entry.get("pair")
        if not pair:
            raise ConfigError(f"model '{name}' translates {entry.get('direction', 'a2b')} only; --direction "
                              f"{direction} has no model to run")
        name, note, entry = pair, f" (--direction {direction} of {model}: its pair {pair})", zoo.entry(pair)
    user_direction = direction if entry["source"] == "user" else None  # a user's checkpoint holds both
    return ResolvedModel(zoo.model_file(name), name=name, source=entry["source"], scale=entry.get("size"),
                         int8=zoo.int8_file(name), direction=user_direction, note=note)


def convert_options(resolved: ResolvedModel, options=None, **overrides):
    """The ConvertOptions a run uses: `options` (or defaults) with `overrides`, plus a shipped
    model's training scale unless a size was asked for."""
    from cyclegan_tool.runtime import ConvertOptions

    opts = replace(options or ConvertOptions(), **overrides)
    if resolved.scale and not (opts.size or opts.max_side) and opts.preprocess == "none":
        opts = replace(opts, size=resolved.scale, keep_size=True)
    return opts.validate()


def with_share(opts):
    """`opts` with this process's share of the files: as given (`shard`, set by --shard or
    --devices), else the torchrun rank's when launched by torchrun with several processes."""
    from cyclegan_tool.runtime.multi import shard_from_env

    env = shard_from_env()
    if env and opts.shard == (0, 1):
        return replace(opts, shard=env[0])
    return opts


def convert_events(inputs: PathLike | Sequence[PathLike], out: PathLike, *, model: PathLike, options=None,
                   backend: str = "auto", device: str = "auto", precision: str = "auto",
                   direction: str | None = None, cancel=None, on_start: Callable[[str], None] | None = None,
                   nest_folders: bool | None = None, devices: str | Sequence[str] | None = None,
                   norm_stats: str = "auto", **overrides) -> Iterator:
    """Like `convert`, as a generator of `runtime.Progress` events ending with a `runtime.Summary`.

    `on_start` receives one line saying which backend runs which model, and at what scale (only
    in the share that reports, the first).
    `nest_folders`: a folder input goes to OUT/<its name>/ (default: only with several inputs).
    `devices` ("0,1", or "cpu,cpu"): one process per device, each on a disjoint share of the files.
    `norm_stats`: "batch" runs batch-norm generators with each image's statistics (as the
    reference's test.py without --eval); "running" (default) with their running statistics.
    """
    from cyclegan_tool.runner import exact_translator, open_backend
    from cyclegan_tool.runtime import plan_many, run_convert
    from cyclegan_tool.runtime.multi import convert_on_devices, parse_devices, shard_from_env

    resolved = resolve_model(model, direction)
    opts = with_share(convert_options(resolved, options, **overrides))
    sources = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if devices:
        targets = parse_devices(devices)
        planned = plan_many(sources, out, opts, nest_folders=nest_folders)  # refused before any process
        if on_start:
            on_start(f"{len(targets)} processes, one per device ({', '.join(targets)}), each on a share of the files")
        yield from convert_on_devices(targets, convert_events, dict(
            inputs=inputs, out=out, model=model, options=opts, backend=backend, precision=precision,
            direction=direction, nest_folders=nest_folders, norm_stats=norm_stats), planned)
        return
    env = shard_from_env()
    if env and device == "auto":  # under torchrun: this rank's share on its own GPU
        device = f"cuda:{env[1]}"
    jobs = plan_many(sources, out, opts, nest_folders=nest_folders)
    be, why = open_backend(resolved, backend=backend, device=device, precision=precision,
                           direction=resolved.direction, norm_stats=norm_stats, jobs=jobs, opts=opts)
    with be:
        if on_start and opts.shard[0] == 0:
            scale = (f"; runs at its training scale (shorter side {resolved.scale}), outputs resized back"
                     if resolved.scale and opts.size == resolved.scale and opts.keep_size else "")
            on_start(f"{why}{resolved.note}: {be.describe()}; model {be.info.summary()}{scale}")
        exact = exact_translator(resolved, direction=resolved.direction, norm_stats=norm_stats)
        yield from run_convert(jobs, be, opts, cancel, exact=exact)


def plan_convert(inputs: PathLike | Sequence[PathLike], out: PathLike, *, model: PathLike, options=None,
                 direction: str | None = None, nest_folders: bool | None = None, **overrides) -> list:
    """The `runtime.Job`s `convert` would run with these arguments (which file goes where), or the
    refusal it would give; nothing is read or written."""
    from cyclegan_tool.runtime import plan_many

    opts = with_share(convert_options(resolve_model(model, direction), options, **overrides))
    sources = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    return plan_many(sources, out, opts, nest_folders=nest_folders)


def convert(inputs: PathLike | Sequence[PathLike], out: PathLike, *, model: PathLike, **kwargs):
    """Translate image files or folders (recursively) into `out`; returns the `runtime.Summary`.

    Keyword arguments: those of `convert_events` and any `ConvertOptions` field.
    """
    summary = None
    for event in convert_events(inputs, out, model=model, **kwargs):
        summary = event
    return summary


def describe_model(model: PathLike, *, backend: str = "auto", device: str = "auto") -> dict:
    """{"what": architecture, direction, precision; "how": the backend and scale it will run
    with; "artifact": everything `cyclegan-tool info` says} for any model `convert` takes."""
    from cyclegan_tool.describe import describe_artifact
    from cyclegan_tool.runner import describe_plan

    resolved = resolve_model(model)
    desc = describe_artifact(str(resolved.path))
    gen = desc.get("generator") or {}
    direction = desc.get("direction", desc.get("directions", "a2b"))
    arch = f"{gen.get('name', '?')} ngf={gen.get('ngf', '?')} {gen.get('norm', '')}".strip()
    channels = (gen.get("input_nc", 3), gen.get("output_nc", 3))
    if channels != (3, 3):  # for a checkpoint, the a2b generator's
        words = {1: "gray", 3: "RGB"}
        arch += f", {words.get(channels[0], channels[0])} -> {words.get(channels[1], channels[1])}"
    kind = f"{resolved.source} model {resolved.name} ({desc['kind']})" if resolved.name else desc["kind"]
    how = describe_plan(resolved, backend=backend, device=device)
    if resolved.scale:
        how += f"; runs at its training scale (shorter side {resolved.scale}) unless a size is set"
    return {"what": f"{kind}: {arch}, {direction}, {desc.get('precision', 'fp32')}", "how": how, "artifact": desc}


def load_model(model: PathLike, *, backend: str = "auto", device: str = "auto", precision: str = "auto",
               direction: str | None = None):
    """An opened inference backend for any model `convert` takes (use it as a context manager):

        with ct.load_model("horse2zebra") as m:
            y = m.infer(x)      # [N, C, H, W] float32 in m.info.value_range (NumPy; a torch tensor gives a torch
                                # tensor), H and W multiples of m.info.pad_multiple
    """
    from cyclegan_tool.runner import open_backend

    resolved = resolve_model(model, direction)
    be, _ = open_backend(resolved, backend=backend, device=device, precision=precision, direction=resolved.direction)
    return be.open()


def bench(model: PathLike, *, backend: str = "auto", device: str = "auto", precision: str = "auto",
          sizes: Sequence[tuple[int, int]] = ((256, 256),), batch: int = 1, iters: int = 10,
          warmup: int = 3, ways: bool = False) -> Iterator[str]:
    """Inference speed of `model` as `convert` would run it: yields the reason line, then one line
    per size (median of `iters` batches of `batch` random images after `warmup`; no file I/O).
    `ways`: time every way `--backend auto` may take here instead, in the order it tries them
    (the first within its fidelity bar runs), to check that order on this machine."""
    from cyclegan_tool.runner import each_way, open_backend

    if batch < 1 or iters < 1 or warmup < 0:
        raise ConfigError("--batch and --iters must be at least 1, --warmup 0 or more")
    if ways:
        if backend != "auto":
            raise ConfigError("--ways times the ways of --backend auto; leave --backend out")
        plan, backends = each_way(resolve_model(model), precision=precision, device=device)
        yield f"{Path(str(resolve_model(model).path)).name}: {plan.reason}; the ways auto tries, in order:"
        for option, be in backends:
            with be:
                for line in _timed(be, sizes, batch, iters, warmup):
                    yield f"  {option.key}: {line}"
        return
    be, why = open_backend(resolve_model(model), backend=backend, device=device, precision=precision)
    with be:
        yield f"{why}: {be.describe()}"
        yield from _timed(be, sizes, batch, iters, warmup)


def _timed(be, sizes, batch: int, iters: int, warmup: int) -> Iterator[str]:
    import statistics
    import time

    import numpy as np

    from cyclegan_tool.conventions import padded_size

    lo, hi = be.info.value_range
    for h, w in sizes:
        h, w = padded_size(max(h, be.info.min_side), max(w, be.info.min_side), be.info.pad_multiple)
        x = (np.random.default_rng(0).random((batch, be.info.spec.input_nc, h, w), np.float32) * (hi - lo) + lo)
        for _ in range(warmup):
            be.infer(x)
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            be.infer(x)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        yield f"{h}x{w} batch {batch}: {med * 1000:.1f} ms/batch, {batch / med:.1f} images/s"


@dataclass(frozen=True)
class ExportReport:
    onnx: Path
    precision: str
    parity: dict
    engine: Path | None = None
    engine_info: dict | None = None
    seconds: float = 0.0


def export(checkpoint: PathLike, *, output: PathLike | None = None, engine: PathLike | None = None,
           direction: str | None = None, netG: str | None = None, ngf: int | None = None, norm: str | None = None,
           fp16: bool = False, opset: int = 17, check: bool = True, trt: str = "auto",
           min_shape: str | None = None, opt_shape: str | None = None, max_shape: str | None = None,
           workspace_mib: int = 4096, compute_capabilities: tuple[str, ...] = (), int8: PathLike | None = None,
           calib_count: int = 64, calib_size: int = 256, int8_min_psnr: float | None = None,
           norm_stats: str = "auto") -> ExportReport:
    """A generator (our .pt, a reference .pth, an FP32 ONNX file we exported or a shipped
    model's name) -> ONNX, parity-checked, and with `engine` a
    TensorRT engine plus its JSON sidecar. Without `output` the ONNX goes next to the engine,
    and an existing file there is never replaced. Profile shapes are NxCxHxW strings; unset,
    they are `trt_build.DEFAULT_PROFILE` with the model's input channels. `int8`: a folder of
    images of the model's input domain to calibrate an int8 ONNX graph on (`export/int8.py`),
    written only within `int8_min_psnr` dB (default 30) of the FP32 graph. `norm_stats="batch"`:
    a batch-norm generator normalises each image by its own statistics (`models/norm_stats.py`),
    recorded in the metadata."""
    import time

    from cyclegan_tool import checkpoints
    from cyclegan_tool.export.onnx_export import export_onnx

    if not output and not engine:
        raise ConfigError("give -o MODEL.onnx, --engine MODEL.plan, or both")
    if int8 and engine:
        raise ConfigError("--int8 makes an ONNX model for the CPU runtimes; engines are built FP16 or FP32")
    if int8 and calib_count < 8:
        raise ConfigError(f"--calib-count {calib_count}: calibration needs at least 8 images")
    t0 = time.perf_counter()
    source = resolve_model(checkpoint, direction).path  # a shipped model's name -> its ONNX file
    spec = None
    if netG or ngf or norm:
        obj = checkpoints.read(source)
        if checkpoints.is_tool_checkpoint(obj):
            raise ConfigError("--netG/--ngf/--norm are for plain .pth files; a training checkpoint says its own")
        base = checkpoints.generator_spec_of(source, obj)
        spec = replace(base, **{k: v for k, v in (("name", netG), ("ngf", ngf), ("norm", norm)) if v})
    if source.suffix.lower() == ".onnx":  # one of our FP32 exports: its weights, e.g. for an int8 form
        from cyclegan_tool.weights import load_onnx_generator

        if spec or direction:
            raise ConfigError(f"{source.name}: an exported ONNX model says its own architecture and direction")
        loaded = load_onnx_generator(source)
    else:
        loaded = checkpoints.load_generator(source, direction=direction, spec=spec, norm_stats=norm_stats)
    if int8:
        from cyclegan_tool.models import min_side, pad_multiple

        least = max(min_side(loaded.spec), 4 * pad_multiple(loaded.spec), 16)
        if calib_size < least:
            raise ConfigError(f"--calib-size {calib_size}: calibration images of this generator need a side of at "
                              f"least {least}")
    cfg = None
    if engine:  # check the profile before any work
        from cyclegan_tool.export.trt_build import DEFAULT_PROFILE, EngineConfig, parse_shape
        from cyclegan_tool.models import pad_multiple

        nc = loaded.spec.input_nc

        def shape(text: str | None, key: str):
            if text:
                return parse_shape(text)
            n, _, h, w = DEFAULT_PROFILE[key]
            return (n, nc, h, w)

        cfg = EngineConfig(min_shape=shape(min_shape, "min"), opt_shape=shape(opt_shape, "opt"),
                           max_shape=shape(max_shape, "max"), workspace_mib=workspace_mib, library=trt,
                           compute_capabilities=tuple(compute_capabilities))
        cfg.validate(pad_multiple(loaded.spec), nc)
    onnx_path = Path(output) if output else Path(engine).with_suffix(".onnx")
    if onnx_path.exists() and onnx_path.resolve() == source.resolve():
        raise ConfigError(f"{onnx_path} is the model being exported; write the new file elsewhere")
    if not output and onnx_path.exists():
        raise ConfigError(f"{onnx_path} exists and the engine's ONNX would replace it; give -o to say where "
                          "the ONNX goes (-o that same path to replace it)")
    result = export_onnx(loaded, onnx_path, fp16=fp16, opset=opset, check=check, int8_calibration=int8,
                         calib_count=calib_count, calib_size=calib_size, int8_min_psnr=int8_min_psnr)
    info = None
    if engine:
        from cyclegan_tool.export.trt_build import build_engine

        info = build_engine(onnx_path, Path(engine), result.metadata, cfg)
    return ExportReport(onnx=onnx_path, precision=result.precision, parity=result.parity,
                        engine=Path(engine) if engine else None, engine_info=info,
                        seconds=time.perf_counter() - t0)


def train(dataroot: PathLike, *, resume: bool = False, reporter=None, changed: frozenset[str] | None = None,
          preset: str | None = None, patchgan: bool | None = None, identity: bool | None = None,
          **options) -> Path:
    """Train (or `resume`) a CycleGAN, CUT or FastCUT (`model=`) on DATAROOT/trainA and trainB;
    returns the run folder.

    `options` are `TrainConfig` fields (model, netG, n_epochs, amp, eval_every, ...); `changed`
    names those the user set on purpose (default: all given), which on `resume` may override the
    run's runtime settings or extend its schedule. The model family's defaults
    (`train.families`: CUT's from the CUT code) and a `preset` (`train.presets.PRESETS`, e.g.
    "keras-colorize") fill in every option not in `changed`; `patchgan` and `identity` are the
    preset's switches. `reporter` receives progress (train.trainer.Reporter).
    """
    from cyclegan_tool.train.config import TrainConfig
    from cyclegan_tool.train.families import family_options
    from cyclegan_tool.train.trainer import train as run_training

    if not Path(dataroot).is_dir():  # a dataset pulled by name
        from cyclegan_tool.zoo.datasets import find

        dataroot = find(str(dataroot)) or dataroot
    changed = frozenset(options) if changed is None else changed
    model = options.get("model", "cyclegan")
    if preset and model != "cyclegan":
        raise ConfigError(f"--preset {preset} is a CycleGAN recipe; it does not go with --model {model}")
    if not resume:
        options = family_options(model, options, changed)
    if preset and not resume:
        from cyclegan_tool.train.presets import preset_options

        recipe = preset_options(preset, patchgan=patchgan, identity=identity)
        options = {**options, **{k: v for k, v in recipe.items() if k not in changed}}
        changed = changed | frozenset(recipe)
    elif patchgan is not None or identity is not None:
        raise ConfigError("--patchgan and --identity are switches of a --preset (a resumed run keeps its own)")
    cfg = TrainConfig(dataroot=str(dataroot), **options)
    return run_training(cfg, resume=resume, reporter=reporter, changed=changed)


def evaluate(*, fake: PathLike | None = None, real: PathLike | None = None, model: PathLike | None = None,
             source: PathLike | None = None, dataroot: PathLike | None = None, direction: str | None = None,
             limit: int | None = None, fake_pattern: str | None = None, cache_dir: PathLike | None | bool = True,
             device: str = "auto", size: int | None = None, extractor=None, progress=None, spread: bool = False):
    """FID and KID of translated images against real ones; returns a `metrics.report.EvalReport`.

    Either `fake` and `real` folders; or a `model` with a `source` folder (translated first)
    and the `real` target folder; or a `model` and a `dataroot` with testA/ and testB/ (both
    directions when the model holds both). `limit` takes the first N source/fake images (with
    `spread`, N evenly spaced over the sorted files: every class of a folder sorted by class).
    `cache_dir=True` caches the real folders' features in the user cache, a path there,
    None or False nowhere. `size` runs the model at that shorter side (outputs resized back
    to the input size), as `convert --size N --keep-size`; shipped models default to their
    training scale. `progress(stage, done, total)` is called as work proceeds.
    """
    from cyclegan_tool.metrics.report import run_evaluation

    if fake is not None and model is not None:
        raise ConfigError("give either --fake (a folder of translated images) or --model, not both")
    if fake is not None:
        if real is None:
            raise ConfigError("--fake needs --real (the folder of real target-domain images)")
        pairs = [("folders", None, fake, real)]
    elif model is not None:
        pairs = _model_pairs(model, source, real, dataroot, direction)
    else:
        raise ConfigError("give --fake and --real, or --model with --source and --real (or --dataroot)")
    def translate(inputs, out, model_direction):
        sized = {"size": size, "keep_size": True} if size else {}
        return convert_events(inputs, out, model=model, direction=model_direction, device=device, format="png",
                              **sized)

    return run_evaluation(pairs, translate=translate, limit=limit, spread=spread, fake_pattern=fake_pattern,
                          cache_dir=cache_dir,
                          device=device, extractor=extractor, progress=progress)


def _model_pairs(model, source, real, dataroot, direction) -> list[tuple[str, PathLike, PathLike, PathLike]]:
    """(label, model direction, source folder, real folder) for each direction to evaluate."""
    if dataroot is not None:
        if source is not None or real is not None:
            raise ConfigError("--dataroot replaces --source and --real; give one or the other")
        root = Path(dataroot)
        test_a, test_b = root / "testA", root / "testB"
        for folder in (test_a, test_b):
            if not folder.is_dir():
                raise ConfigError(f"{folder}: not found (--dataroot needs testA/ and testB/)")
        both, own = _directions_of(model)
        if direction and not both and direction != own:
            raise ConfigError(f"{model} translates {own} only; --direction {direction} does not apply")
        directions = [direction] if direction else (["a2b", "b2a"] if both else [own])
        return [(d, d if both else None, test_a if d == "a2b" else test_b, test_b if d == "a2b" else test_a)
                for d in directions]
    if source is None or real is None:
        raise ConfigError("--model needs --source (images to translate) and --real (real target-domain images)")
    return [(direction or "a2b", direction, source, real)]


def _directions_of(model: PathLike) -> tuple[bool, str]:
    """(holds both generators, its direction otherwise) for any model `convert` runs."""
    from cyclegan_tool.describe import describe_artifact

    resolved = resolve_model(model)
    info = describe_artifact(str(resolved.path))
    if info.get("kind") == "cyclegan-tool training checkpoint":
        return "b2a" in info.get("directions", "a2b/b2a"), "a2b"  # a CUT checkpoint has one
    if Path(model).is_dir() and resolve_model(model, "b2a").path != resolved.path:
        return True, "a2b"  # a reference run's folder with both generators: each direction its own file
    if resolved.path.name.endswith("net_G_B.pth"):
        return False, "b2a"
    return False, info.get("direction") or "a2b"
