"""FID/KID on horse2zebra, written to docs/QUALITY.md: the published model's real outputs,
the unchanged inputs, the shipped models, and any extra candidates.

    python bench/quality_fid.py [--candidate NAME=MODEL ...] [--data ../shared/data]

Every row is one `cyclegan_tool.evaluate` call; the table gives the equivalent
`cyclegan-tool evaluate` command. Real-folder features come from the user cache after the
first run. Protocol: docs/QUALITY.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, write_results  # noqa: E402

import cyclegan_tool as ct  # noqa: E402


def cases(data: Path, candidates: list[tuple[str, str]]) -> list[tuple[str, dict, str]]:
    h2z, ref = data / "horse2zebra", data / "reference_outputs" / "horse2zebra_pretrained_AtoB"
    test_a, test_b = h2z / "testA", h2z / "testB"
    rows = [
        ("published CycleGAN model's outputs (50 testA)", dict(fake=ref, fake_pattern="*_fake.png", real=test_b),
         f"--fake {ref} --fake-glob '*_fake.png' --real {test_b}"),
        ("unchanged inputs (the same 50 testA)", dict(fake=test_a, limit=50, real=test_b),
         f"--fake {test_a} --limit 50 --real {test_b}"),
        ("shipped `horse2zebra` (the same 50 testA)", dict(model="horse2zebra", source=test_a, limit=50, real=test_b),
         f"--model horse2zebra --source {test_a} --limit 50 --real {test_b}"),
    ]
    for name, model in candidates:  # NAME=MODEL or NAME=MODEL@SIZE (run at that shorter side)
        model, _, size = model.partition("@")
        extra, flag = ({"size": int(size)}, f" --size {size}") if size else ({}, "")
        rows.append((f"{name} (the same 50 testA)", dict(model=model, source=test_a, limit=50, real=test_b, **extra),
                     f"--model {model} --source {test_a} --limit 50 --real {test_b}{flag}"))
    rows += [
        ("unchanged inputs (all 120 testA)", dict(fake=test_a, real=test_b), f"--fake {test_a} --real {test_b}"),
        ("shipped `horse2zebra` (all 120 testA)", dict(model="horse2zebra", source=test_a, real=test_b),
         f"--model horse2zebra --source {test_a} --real {test_b}"),
        ("zebras -> horses: unchanged inputs (140 testB vs testA)", dict(fake=test_b, real=test_a),
         f"--fake {test_b} --real {test_a}"),
        ("zebras -> horses: shipped `zebra2horse` (140 testB vs testA)",
         dict(model="zebra2horse", source=test_b, real=test_a), f"--model zebra2horse --source {test_b} --real {test_a}"),
    ]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--candidate", action="append", default=[],
                    help="NAME=MODEL or NAME=MODEL@SIZE: another model to score (at that shorter side)")
    ap.add_argument("--only-candidates", action="store_true", help="score the candidates only")
    ap.add_argument("--dry-run", action="store_true", help="print the table, do not write docs/QUALITY.md")
    args = ap.parse_args()
    candidates = [tuple(c.split("=", 1)) for c in args.candidate]
    rows, payload = [], []
    todo = cases(args.data, candidates)
    if args.only_candidates:
        todo = [c for c in todo if any(c[0].startswith(f"{name} (") for name, _ in candidates)]
    for label, kwargs, cli in todo:
        t0 = time.perf_counter()
        r = ct.evaluate(**kwargs).results[0]
        print(f"{label}: FID {r.fid:.1f} KID {r.kid:.4f} +- {r.kid_std:.4f} ({time.perf_counter() - t0:.0f}s)",
              flush=True)
        payload.append({"case": label, "command": f"cyclegan-tool evaluate {cli}", **{
            k: getattr(r, k) for k in ("fid", "kid", "kid_std", "n_fake", "n_real")}})
        rows.append(f"| {label} | {r.fid:.1f} | {r.kid:.4f} +- {r.kid_std:.4f} | {r.n_fake} / {r.n_real} | "
                    f"`cyclegan-tool evaluate {cli}` |")
    md = "\n".join([
        "## Measured: horse2zebra", "",
        f"Machine: {machine()}  ",
        f"Command: `{command_line()}` (paths as on the measuring machine)  ",
        "Deterministic: the features and KID subsets are fixed, so a rerun gives the same figures.", "",
        "| images scored against real zebras (testB) or horses (testA) | FID | KID (unscaled) | fake / real | "
        "command |", "|---|---:|---:|---:|---|", *rows])
    if args.dry_run:
        print(md)
    else:
        write_results("quality_fid", {"machine": machine(), "rows": payload}, md, doc_name="QUALITY.md")


if __name__ == "__main__":
    main()
