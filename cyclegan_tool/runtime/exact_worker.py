"""A checkpoint's exact way (PyTorch FP32 on the CPU) on one sample, in a process of its own.

The fidelity check of a checkpoint's first run (runner.py) compares the first candidate's output
with the exact way's. Importing torch, building the network and running it take ~2.5 s here,
and they are Python-heavy: in a thread they hold the interpreter lock the making of the
candidate's form needs, and each slows the other. In a process of its own (one torch thread,
leaving the other cores to the form), the exact way is done before the form is compiled.

    out = exact_output(checkpoint, sample, direction=None, spec=None, norm_stats="auto")

The sample goes in and the output comes back as `.npy` bytes through pipes. A failure is raised
again here as the error type and one-line message the worker met.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from cyclegan_tool import errors


def worthwhile() -> bool:
    """Whether to check in a process of its own: where this process has not imported torch (it
    read the checkpoint for its forms, or it is the GUI's: then a thread costs no import) and
    this interpreter can start another (a frozen application cannot run `-m`)."""
    return "torch" not in sys.modules and bool(sys.executable) and not getattr(sys, "frozen", False)


def exact_output(path: Path, sample: np.ndarray, *, direction: str | None = None, spec=None,
                 norm_stats: str = "auto") -> np.ndarray:
    settings = {"direction": direction, "spec": spec.to_dict() if spec is not None else None, "norm_stats": norm_stats}
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(sample, np.float32))
    # Run from the folder this package was imported from, so that `-m` finds this same package
    # (not one in the caller's working directory); the path is made absolute for that.
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", __name__, str(Path(path).resolve()), json.dumps(settings)],
                          input=buf.getvalue(), capture_output=True, cwd=root)
    if proc.returncode:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {proc.returncode}"]
        kind, _, message = lines[-1].partition(": ")
        error = getattr(errors, kind, None)
        if isinstance(error, type) and issubclass(error, errors.CycleGANError) and message:
            raise error(message)
        raise errors.BackendError(f"{path}: PyTorch could not run it ({lines[-1]})")
    return np.load(io.BytesIO(proc.stdout), allow_pickle=False)


def _main(argv: list[str]) -> int:
    import torch

    from cyclegan_tool.runtime.torch_backend import TorchBackend
    from cyclegan_tool.specs import GeneratorSpec

    torch.set_num_threads(1)
    path, settings = Path(argv[0]), json.loads(argv[1])
    spec = GeneratorSpec.from_dict(settings["spec"]) if settings["spec"] else None
    sample = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
    try:
        with TorchBackend(path, device="cpu", precision="fp32", direction=settings["direction"], spec=spec,
                          norm_stats=settings["norm_stats"]) as backend:
            out = backend.infer(sample)
    except errors.CycleGANError as e:
        print(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
        return 1
    buf = io.BytesIO()
    np.save(buf, out)
    sys.stdout.buffer.write(buf.getvalue())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    code = _main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Nothing is left to do: the caller waits for this process's end, and tearing torch down
    # (freeing the network, its thread pools, its modules) took ~0.8 s of that wait here.
    os._exit(code)
