"""Several GPUs: one child `convert` per device, each on a disjoint share of the files."""

from __future__ import annotations

import os
import subprocess
import sys

from cyclegan_tool.errors import ConfigError


def shard_from_env() -> tuple[tuple[int, int], int] | None:
    """((rank, world), local_rank) when launched by torchrun with several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return (int(os.environ["RANK"]), world), int(os.environ.get("LOCAL_RANK", "0"))


def run_on_devices(devices: str, argv: list[str]) -> int:
    """Re-run this `convert` command once per GPU in `devices` ('0,1,3'), each with
    `--shard k/n`, `CUDA_VISIBLE_DEVICES` set to its GPU; returns the worst exit status."""
    ids = [d.strip() for d in devices.split(",") if d.strip()]
    if not ids or not all(d.isdigit() for d in ids):
        raise ConfigError(f"--devices '{devices}': give GPU indices such as 0,1")
    from cyclegan_tool.devices import cuda_count

    have = cuda_count()
    missing = [d for d in ids if int(d) >= have]
    if missing:
        raise ConfigError(f"--devices {devices}: this machine has {have} CUDA GPU(s), so no GPU "
                          f"{', '.join(missing)}; leave --devices out to convert on {'the CPU' if not have else 'one GPU'}")
    procs = []
    for k, gpu in enumerate(ids):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu}
        cmd = [sys.executable, "-m", "cyclegan_tool", *argv, "--shard", f"{k}/{len(ids)}", "--device", "cuda:0"]
        procs.append(subprocess.Popen(cmd, env=env))
    return max(p.wait() for p in procs)
