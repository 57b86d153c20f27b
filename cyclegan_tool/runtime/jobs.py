"""Which files to translate and where each result goes; refuses plans that could lose data."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from cyclegan_tool.errors import ConfigError, DataError
from cyclegan_tool.imageio import is_image_name, list_images
from cyclegan_tool.runtime.options import ConvertOptions

WRITABLE = {".jpg": ".jpg", ".jpeg": ".jpeg", ".png": ".png", ".webp": ".webp", ".bmp": ".bmp",
            ".tif": ".tif", ".tiff": ".tiff"}


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


def output_name(src: Path, opts: ConvertOptions) -> str:
    ext = WRITABLE.get(src.suffix.lower(), ".png") if opts.format == "keep" else f".{opts.format}"
    return f"{src.stem}{opts.suffix}{ext}"


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def plan_jobs(inp: str | os.PathLike, out: str | os.PathLike, opts: ConvertOptions) -> list[Job]:
    """Map IN (a file or a folder, recursively) to OUT, mirroring the tree.

    Refuses: an IN that does not exist; an output path equal to an input path; two inputs
    that would write the same output. Outputs inside IN are not read back as inputs.
    """
    inp, out = Path(inp), Path(out)
    if not inp.exists():
        raise DataError(f"{inp}: no such file or folder")
    in_abs, out_abs = inp.resolve(), out.resolve()
    if inp.is_file():
        if out.suffix and is_image_name(out) and not out.is_dir():
            jobs = [Job(inp, out)]
        else:
            jobs = [Job(inp, out / output_name(inp, opts))]
        sources = [inp]
    else:
        sources = [p for p in list_images(inp) if not (out_abs != in_abs and _inside(p.resolve(), out_abs))]
        jobs = [Job(p, out / p.relative_to(inp).parent / output_name(p, opts)) for p in sources]
    # A previous run's outputs in the same tree (OUT == IN with --suffix) are not inputs.
    produced = {job.dst.resolve() for job in jobs}
    jobs = [job for job in jobs if job.src.resolve() not in produced or job.src.resolve() == job.dst.resolve()]
    _refuse_collisions(jobs)
    k, n = opts.shard
    return jobs[k::n]


def _refuse_collisions(jobs: list[Job]) -> None:
    src_set = {job.src.resolve() for job in jobs}
    seen: dict[Path, Path] = {}
    for job in jobs:
        dst = job.dst.resolve()
        if dst in src_set:
            raise ConfigError(f"{job.dst} would overwrite its input; choose another OUT or add --suffix")
        if dst in seen and seen[dst] != job.src.resolve():
            raise ConfigError(f"{seen[dst]} and {job.src} would both write {job.dst}; use --format keep or "
                              "--suffix, or convert them separately")
        seen[dst] = job.src.resolve()


def plan_many(inputs: list[str | os.PathLike], out: str | os.PathLike, opts: ConvertOptions) -> list[Job]:
    """`plan_jobs` over several inputs into one OUT: a file goes to OUT/name, a folder to OUT/its
    name/... when there are several inputs (OUT/... for one), and no two may write one output."""
    if not inputs:
        raise ConfigError("no input files or folders given")
    out = Path(out)
    if len(inputs) == 1:
        return plan_jobs(inputs[0], out, opts)
    whole = replace(opts, shard=(0, 1))
    jobs: list[Job] = []
    for inp in inputs:
        inp = Path(inp)
        jobs += plan_jobs(inp, out / inp.name if inp.is_dir() else out, whole)
    unique = list({(job.src.resolve(), job.dst.resolve()): job for job in jobs}.values())
    _refuse_collisions(unique)
    k, n = opts.shard
    return unique[k::n]
