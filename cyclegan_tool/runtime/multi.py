"""Several devices: one worker process per device, each converting a disjoint share of the
files (`ConvertOptions.shard`), their events merged into one stream.

`convert_on_devices` is what `cyclegan_tool.convert(..., devices=...)` and `convert --devices`
run, given the converter each worker calls (the API's `convert_events`); torchrun launches are
recognised by `shard_from_env`. A worker that dies (killed, out of memory) does not take its
files with it in silence: every file of its share that it did not report is failed by name.
"""

from __future__ import annotations

import os
import queue as queue_mod
from collections.abc import Iterator
from dataclasses import replace

from cyclegan_tool.errors import ConfigError, CycleGANError


def shard_from_env() -> tuple[tuple[int, int], int] | None:
    """((rank, world), local_rank) when launched by torchrun with several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return (int(os.environ["RANK"]), world), int(os.environ.get("LOCAL_RANK", "0"))


def parse_devices(devices: str | list[str]) -> list[str]:
    """'0,1' (GPU indices) or 'cpu,cpu' (CPU processes) -> ['cuda:0', 'cuda:1'] / ['cpu', 'cpu'],
    refusing GPUs this machine does not have."""
    items = [d.strip() for d in (devices.split(",") if isinstance(devices, str) else devices) if str(d).strip()]
    if not items or not all(d.isdigit() or d == "cpu" for d in items):
        raise ConfigError(f"--devices '{devices}': give GPU indices such as 0,1 (or cpu,cpu for CPU processes)")
    gpus = [int(d) for d in items if d.isdigit()]
    if gpus:
        from cyclegan_tool.devices import cuda_count

        have = cuda_count()
        missing = [str(d) for d in gpus if d >= have]
        if missing:
            raise ConfigError(f"--devices {devices}: this machine has {have} CUDA GPU(s), so no GPU "
                              f"{', '.join(missing)}; leave --devices out to convert on "
                              f"{'the CPU' if not have else 'one GPU'}")
    return [f"cuda:{d}" if d.isdigit() else "cpu" for d in items]


def _worker(rank: int, world: int, device: str, converter, kwargs: dict, events) -> None:
    """One share on one device; every event (or the error that ended the share) goes to `events`."""
    if device.startswith("cuda:"):  # this process sees its GPU only, as cuda:0
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
        device = "cuda:0"
    elif device == "cpu":  # each runtime reads these when it starts its threads
        threads = str(max(1, (os.cpu_count() or 1) // world))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = threads
    try:
        opts = replace(kwargs.pop("options"), shard=(rank, world))
        for event in converter(**kwargs, options=opts, device=device):
            events.put((rank, event))
    except Exception as e:  # the parent reports it; the other shares go on
        events.put((rank, CycleGANError(f"device {device}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")))
    events.put((rank, None))


def convert_on_devices(devices: list[str], converter, kwargs: dict, planned: list) -> Iterator:
    """Progress events of all shares (renumbered as one run of the `planned` jobs), then one merged
    Summary. `converter(**kwargs, options=..., device=...)` runs one share (in its own process)."""
    import multiprocessing

    from cyclegan_tool.runtime.pipeline import Progress, Summary
    from cyclegan_tool.runtime.video import FrameProgress

    ctx = multiprocessing.get_context("spawn")  # CUDA and threads do not survive fork
    events = ctx.Queue()
    world = len(devices)
    total = len(planned)
    procs = [ctx.Process(target=_worker, args=(k, world, dev, converter, dict(kwargs), events), daemon=True)
             for k, dev in enumerate(devices)]
    for p in procs:
        p.start()
    summaries: dict[int, Summary] = {}
    errors: list[str] = []
    reported: set = set()  # sources whose outcome a worker sent
    tally: dict[int, dict[str, list]] = {k: {"converted": [], "skipped": [], "failed": []} for k in range(world)}
    running, done = set(range(world)), 0
    try:
        while running:
            try:
                rank, event = events.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [k for k in running if not procs[k].is_alive() and procs[k].exitcode not in (0, None)]
                for k in dead:
                    errors.append(f"device {devices[k]}: its process ended with status {procs[k].exitcode}")
                    running.discard(k)
                continue
            if event is None:
                running.discard(rank)
            elif isinstance(event, Exception):
                errors.append(str(event))
            elif isinstance(event, Summary):
                summaries[rank] = event
            elif isinstance(event, FrameProgress):
                yield event
            elif isinstance(event, Progress):
                done += 1
                reported.add(event.job.src)
                tally[rank][event.status].append((event.job.src, event.message))
                yield replace(event, done=done, total=total)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    if errors and not summaries and not reported:
        raise CycleGANError("; ".join(errors))
    from cyclegan_tool.runtime.pipeline import complete

    lost, found, written_late = [], 0, []  # the files of shares whose process ended without reporting them
    for k in range(world):
        if k in summaries:
            continue
        found += len(tally[k]["converted"])  # what it reported before it ended
        lost += tally[k]["failed"]
        why = next((e for e in errors if e.startswith(f"device {devices[k]}")), f"device {devices[k]}: its process "
                   "ended early")
        for job in planned[k::world]:
            if job.src in reported:
                continue
            done += 1
            if not job.skip and job.dst.exists() and complete(job.dst):  # written (atomically) before it died
                found += 1
                written_late.append(job.src)
                yield Progress(done, total, job, "converted")
                continue
            lost.append((job.src, f"{job.src}: not converted: the worker process for {why.removeprefix('device ')}"))
            yield Progress(done, total, job, "failed", lost[-1][1])
    late = [f"{len(written_late)} output(s) of a share whose process ended were found complete on disk and counted "
            "as converted"] if written_late else []
    parts = list(summaries.values())
    yield Summary(total=total, converted=sum(s.converted for s in parts) + found,
                  skipped=sum(s.skipped for s in parts) + sum(len(tally[k]["skipped"]) for k in range(world)
                                                              if k not in summaries), failed=[f for s in parts for f in s.failed] + lost,
                  seconds=max((s.seconds for s in parts), default=0.0), cancelled=any(s.cancelled for s in parts),
                  backend=f"{len(devices)} processes: " + ", ".join(dict.fromkeys(s.backend for s in parts)),
                  notes=list(dict.fromkeys(n for s in parts for n in s.notes)) + late, errors=errors)
