"""Which files to translate and where each result goes; refuses plans that could lose data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cyclegan_tool.errors import ConfigError, DataError
from cyclegan_tool.imageio import IMAGE_EXTENSIONS, is_image_name, list_images
from cyclegan_tool.videoio import VIDEO_EXTENSIONS, is_video_name, output_suffix

MEDIA = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS  # what convert translates: images, and clips
from cyclegan_tool.runtime.options import ConvertOptions

WRITABLE = {".jpg": ".jpg", ".jpeg": ".jpeg", ".png": ".png", ".webp": ".webp", ".bmp": ".bmp",
            ".tif": ".tif", ".tiff": ".tiff"}


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path
    skip: str = ""  # why the file is not converted (reported as skipped), e.g. it lies inside OUT


def output_name(src: Path, opts: ConvertOptions) -> str:
    """A clip keeps its container where the codec fits it; an animation (GIF, WebP) its format
    unless `--frames first`; a still image takes --format."""
    if is_video_name(src):
        ext = output_suffix(src, opts.codec)
    elif src.suffix.lower() in (".gif", ".webp") and opts.frames == "all" and opts.format == "keep":
        ext = src.suffix.lower()
    else:
        ext = WRITABLE.get(src.suffix.lower(), ".png") if opts.format == "keep" else f".{opts.format}"
    return f"{src.stem}{opts.suffix}{ext}"


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def _listing(inp: Path) -> list[Path]:
    return [inp] if inp.is_file() else list_images(inp, suffixes=MEDIA)


def _map(inp: Path, out: Path, opts: ConvertOptions) -> list[Job]:
    """IN -> OUT mirroring the tree; files under OUT (when OUT is inside IN) are not inputs."""
    if not inp.exists():
        raise DataError(f"{inp}: no such file or folder")
    if inp.is_file():
        if out.suffix and (is_image_name(out) or is_video_name(out)) and not out.is_dir():
            return [Job(inp, out)]
        return [Job(inp, out / output_name(inp, opts))]
    if not inp.is_dir():
        raise DataError(f"{inp}: neither a regular file nor a folder (a pipe or a device cannot be read as images)")
    in_abs, out_abs = inp.resolve(), out.resolve()
    jobs = []
    for p in list_images(inp, suffixes=MEDIA):
        dst = out / p.relative_to(inp).parent / output_name(p, opts)
        inside = out_abs != in_abs and _inside(p.resolve(), out_abs)
        jobs.append(Job(p, dst, f"{p}: inside OUT ({out}), so taken for an earlier output" if inside else ""))
    return jobs


def _refuse_collisions(jobs: list[Job], existing_inputs: set[Path], opts: ConvertOptions) -> None:
    """No output may be an input file (any file of the input trees, also one under OUT), and no
    two inputs may write one output. With --skip-existing an existing output is left alone, so
    only writing a file onto its own source is refused."""
    seen: dict[Path, Path] = {}
    for job in jobs:
        dst, src = job.dst.resolve(), job.src.resolve()
        if dst == src:
            raise ConfigError(f"{job.dst} would overwrite its input; choose another OUT or add --suffix")
        if dst in existing_inputs and not opts.skip_existing:
            raise ConfigError(f"{job.dst} is an input image and would be overwritten by the translation of "
                              f"{job.src}; choose another OUT or --suffix (or --skip-existing to leave it)")
        if dst in seen and seen[dst] != src:
            raise ConfigError(f"{seen[dst]} and {job.src} would both write {job.dst}; use --format keep or "
                              "--suffix, or convert them separately")
        seen[dst] = src


def plan_jobs(inp: str | os.PathLike, out: str | os.PathLike, opts: ConvertOptions) -> list[Job]:
    """Map IN (a file or a folder, recursively) to OUT, mirroring the tree (see `plan_many`)."""
    return plan_many([inp], out, opts)


def plan_many(inputs: list[str | os.PathLike], out: str | os.PathLike, opts: ConvertOptions,
              nest_folders: bool | None = None) -> list[Job]:
    """The one planner: which files to translate and where each result goes.

    One input maps to OUT as `plan_jobs` says; with several, a file goes to OUT/name and a
    folder to OUT/<its name>/... (`nest_folders` True or False decides that for one input too).
    Refuses: a missing input; an output that is an input file
    (anywhere in the input trees, also under OUT); two inputs writing one output. A file given
    twice (directly and in a folder) is translated once. Returns this shard's share.
    """
    if not inputs:
        raise ConfigError("no input files or folders given")
    out = Path(out)
    paths = [Path(p) for p in inputs]
    jobs: list[Job] = []
    for inp in paths:
        nest = len(paths) > 1 if nest_folders is None else nest_folders
        target = out / inp.name if nest and inp.is_dir() else out
        jobs += _map(inp, target, opts)
    if not jobs:
        where = ", ".join(str(p) for p in paths)
        raise DataError(f"{where}: no images or clips found (looked for {', '.join(MEDIA)})")
    existing = {p.resolve() for inp in paths for p in _listing(inp)}
    unique = list({(job.src.resolve(), job.dst.resolve()): job for job in jobs}.values())
    if opts.skip_existing:  # a rerun into the same tree: earlier outputs are left alone, not inputs
        produced = {job.dst.resolve() for job in unique}
        unique = [job for job in unique if job.src.resolve() not in produced]
    _refuse_collisions([job for job in unique if not job.skip], existing, opts)
    k, n = opts.shard
    return unique[k::n]
