"""KID and FID of the fast conversion paths against the FP32 path, on horse2zebra.

The first 50 testA images (or `--source`, scored against `--real`) go through a model
(default: the shipped horse2zebra) once per path: ONNX Runtime FP32 (the reference), the defaults (`--backend auto`: the first of the
plan's ways within 35 dB, the model's int8 form included), `--precision fp32`, the weights as a
reference `.pth`, and OpenVINO FP32 and the Winograd form where OpenVINO is installed; each output
folder is scored against testB (docs/QUALITY.md protocol). The issue's bar: KID within 5% of
the FP32 path's.

    python bench/fidelity_kid.py [--model horse2zebra] [--data ../shared/data]
    python bench/fidelity_kid.py --source valA/ --real valB/ --limit 100   # a validation split
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, command_line, machine, shipped_as_pth, write_results  # noqa: E402

import cyclegan_tool as ct  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="horse2zebra")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--source", type=Path, help="the images to translate (default: DATA/horse2zebra/testA)")
    ap.add_argument("--real", type=Path, help="the real images to score against (default: DATA/horse2zebra/testB)")
    ap.add_argument("--limit", type=int, default=50, help="the first N source images")
    args = ap.parse_args()
    test_a = args.source or args.data / "horse2zebra" / "testA"
    test_b = args.real or args.data / "horse2zebra" / "testB"
    work = Path(tempfile.mkdtemp(prefix="fidelity_kid_"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # a fresh fidelity check
    src = work / "in"
    src.mkdir()
    for f in sorted(test_a.glob("*.jpg"))[: args.limit]:
        shutil.copy(f, src / f.name)
    paths = [("ONNX Runtime FP32 (reference)", dict(backend="onnxruntime")), ("defaults (--backend auto)", {}),
             ("--precision fp32 (auto among FP32 runtimes)", dict(precision="fp32"))]
    (work / "pth").mkdir()
    pth = shipped_as_pth(args.model, work / "pth" / "latest_net_G.pth")
    paths.append(("its weights as a reference .pth, defaults (--backend auto)", dict(model=pth, cache=work / "cache_pth")))
    if importlib.util.find_spec("openvino"):
        from cyclegan_tool.api import resolve_model
        from cyclegan_tool.export.forms import winograd
        from cyclegan_tool.model_files import digest

        onnx_path = Path(resolve_model(args.model).path)
        paths.append(("OpenVINO FP32", dict(backend="openvino")))
        paths.append(("its Winograd form (export/forms.py), OpenVINO FP32",
                      dict(model=winograd(digest(onnx_path), lambda: onnx_path), backend="openvino")))
    rows = []
    for i, (label, kw) in enumerate(paths):
        said: list[str] = []
        kw = {"model": args.model, **kw}
        cache = kw.pop("cache", work / "cache")
        os.environ["XDG_CACHE_HOME"] = str(cache)
        ct.convert(src, work / f"out{i}", format="png", on_start=said.append, **kw)
        r = ct.evaluate(fake=work / f"out{i}", real=test_b)
        rows.append({"path": label, "kid": r.kid, "fid": r.fid, "backend": said[0]})
        print(f"{label:32s} KID {r.kid:.5f}  FID {r.fid:.2f}", flush=True)
    count = len(list(src.iterdir()))
    shutil.rmtree(work)
    ref = rows[0]["kid"]
    lines = ["## Fidelity of the conversion paths (KID, cpu)", "", f"Machine: {machine()}  ",
             f"Command: `{command_line()}`  ",
             f"Model `{args.model}` on the first {count} images of `{test_a.name}`, each path's "
             f"PNGs scored against `{test_b.name}` (docs/QUALITY.md protocol; {test_b})."
             " This compares ways of running one model, so any image set serves; the figures are not the model's "
             "reported quality.", "",
             "| path | KID | vs. FP32 | FID | what ran |", "|---|---:|---:|---:|---|"]
    for r in rows:
        ran = r["backend"].split(": ", 1)[-1].replace("|", "/")
        lines.append(f"| {r['path']} | {r['kid']:.5f} | {100 * (r['kid'] / ref - 1):+.2f}% | {r['fid']:.2f} | {ran} |")
    write_results("fidelity_kid_cpu", {"machine": machine(), "command": command_line(), "rows": rows},
                  "\n".join(lines))


if __name__ == "__main__":
    main()
