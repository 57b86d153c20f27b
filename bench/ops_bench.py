"""Custom ops (csrc/) against native PyTorch: each op, and the ResNet-9 generator forward +
backward, at the shapes a 256x256 and a 1024x1024 image produce.

Times are medians (CUDA events on a GPU, wall clock on the CPU) of --repeat runs after
--warmup, native and custom interleaved in one process.

    python bench/ops_bench.py                       # CPU: fp32 and bf16
    python bench/ops_bench.py --device cuda         # GPU: fp32, fp16, bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, write_results  # noqa: E402

from cyclegan_tool import ops  # noqa: E402
from cyclegan_tool.models import GeneratorSpec, build_generator, init_weights  # noqa: E402


def timer(device: torch.device, fn, warmup: int, repeat: int) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        times = []
        for _ in range(repeat):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        return statistics.median(times)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def op_cases(side: int):
    """(label, shape, kind, extra) for the ops a ResNet-9 runs on a side x side image."""
    q = side // 4
    return [
        (f"pad 3, [1,3,{side},{side}]", (1, 3, side, side), "pad", 3),
        (f"pad 1, [1,256,{q},{q}]", (1, 256, q, q), "pad", 1),
        (f"norm+relu, [1,64,{side},{side}]", (1, 64, side, side), "norm_relu", None),
        (f"norm+residual, [1,256,{q},{q}]", (1, 256, q, q), "norm_res", None),
    ]


def op_fns(kind: str, x: torch.Tensor, extra):
    r = torch.randn_like(x) if kind == "norm_res" else None
    if kind == "pad":
        p = (extra,) * 4
        return (lambda: F.pad(x, p, mode="reflect")), (lambda: ops.reflection_pad2d(x, p))
    relu = kind == "norm_relu"
    return (lambda: ops.instance_norm_reference(x, relu=relu, residual=r),
            lambda: ops.instance_norm(x, relu=relu, residual=r))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--generator-sides", default=None, help="comma list; default 256 on CPU, 256,1024 on CUDA")
    args = ap.parse_args()
    device = torch.device(args.device)
    if not ops.has_kernel("instance_norm", device.type):
        sys.exit(f"the compiled custom ops have no {device.type} kernels here; build with "
                 "pip install --no-build-isolation -e .")
    dtypes = [torch.float32, torch.bfloat16] + ([torch.float16] if device.type == "cuda" else [])
    sides = [int(s) for s in (args.generator_sides or ("256,1024" if device.type == "cuda" else "256")).split(",")]
    rows = []
    for dtype in dtypes:
        for layout in (torch.contiguous_format, torch.channels_last):
            lname = "NCHW" if layout == torch.contiguous_format else "NHWC"
            for side in (256, 1024):
                for label, shape, kind, extra in op_cases(side):
                    x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=layout)
                    x.requires_grad_(True)
                    native, custom = op_fns(kind, x, extra)
                    for direction in ("fwd", "fwd+bwd"):
                        def run(f, d=direction):
                            if d == "fwd":
                                with torch.no_grad():
                                    return f()
                            y = f()
                            y.backward(torch.ones_like(y))
                        tn = timer(device, lambda: run(native), args.warmup, args.repeat)
                        tc = timer(device, lambda: run(custom), args.warmup, args.repeat)
                        rows.append({"what": f"{label} {direction}", "dtype": str(dtype).split(".")[1],
                                     "layout": lname, "native_ms": tn * 1e3, "custom_ms": tc * 1e3})
                        print(f"{rows[-1]['what']:40s} {rows[-1]['dtype']:9s} {lname} native {tn * 1e3:9.3f} ms"
                              f"  custom {tc * 1e3:9.3f} ms  x{tn / tc:5.2f}", flush=True)
            for side in sides:
                torch.manual_seed(0)
                spec = GeneratorSpec()
                nets = {}
                for mode in ("native", "custom"):
                    net = init_weights(build_generator(spec))
                    nets[mode] = ops.apply_ops(net, mode, device).to(device, memory_format=layout)
                x = torch.randn(1, 3, side, side, device=device).contiguous(memory_format=layout)
                times = {}
                for mode, net in nets.items():
                    def step(n=net):
                        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                            y = n(x)
                        y.float().mean().backward()
                    times[mode] = timer(device, step, 1, max(3, args.repeat // 2))
                rows.append({"what": f"ResNet-9 generator fwd+bwd, {side}x{side}", "dtype": str(dtype).split(".")[1],
                             "layout": lname, "native_ms": times["native"] * 1e3, "custom_ms": times["custom"] * 1e3})
                print(f"{rows[-1]['what']:40s} {rows[-1]['dtype']:9s} {lname} native {times['native'] * 1e3:9.1f} ms"
                      f"  custom {times['custom'] * 1e3:9.1f} ms", flush=True)
    lines = [f"## Custom ops vs. native ({device.type})", "", f"Machine: {machine()}  ",
             f"Command: `{command_line()}`  ",
             f"Median of {args.repeat} runs after {args.warmup} warm-up ({'CUDA events' if device.type == 'cuda' else 'wall clock'}); "
             "generator rows run under autocast for bf16/fp16. Speed-up > 1 means custom is faster.", "",
             "| what | dtype | layout | native ms | custom ms | speed-up |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {r['what']} | {r['dtype']} | {r['layout']} | {r['native_ms']:.3f} | {r['custom_ms']:.3f} | "
              f"{r['native_ms'] / r['custom_ms']:.2f}x |" for r in rows]
    write_results(f"ops_{device.type}", {"machine": machine(), "command": command_line(), "rows": rows},
                  "\n".join(lines))


if __name__ == "__main__":
    main()
