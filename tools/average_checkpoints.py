"""Average the generator weights of several training checkpoints of one lineage.

Checkpoints taken a few epochs apart along one run (or a run and its warm-started
continuation) sit close together in weight space; their average is usually a better and
steadier generator than any single one of them (Polyak averaging, "model soups"). The
shipped horse2zebra model is such an average (docs/MODEL_CARD_horse2zebra.md).

    python tools/average_checkpoints.py -o soup.pt run/epoch_0006.pt run/epoch_0007.pt ...

The output is a complete cyclegan-tool checkpoint (`info`, `export`, `convert`,
`evaluate` take it): the generators are the averages, the discriminators and everything
else come from the first input, and `averaged_from` records the sources. It is not meant
to be resumed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cyclegan_tool import checkpoints

GENERATORS = ("gen_a2b", "gen_b2a")


def average(paths: list[Path]) -> dict:
    objs = [checkpoints.check_complete(checkpoints.read(p), p) for p in paths]
    base = objs[0]
    for p, obj in zip(paths[1:], objs[1:]):
        if obj["arch"] != base["arch"]:
            raise SystemExit(f"{p}: a different architecture from {paths[0]}; only one lineage can be averaged")
    out = {k: v for k, v in base.items() if k not in ("optimizers", "schedulers", "scalers", "pools")}
    out["networks"] = dict(base["networks"])
    for net in GENERATORS:
        avg = {}
        for key, value in base["networks"][net].items():
            if value.is_floating_point():
                avg[key] = sum(o["networks"][net][key].double() for o in objs).div(len(objs)).to(value.dtype)
            else:
                avg[key] = value
        out["networks"][net] = avg
    out["averaged_from"] = [{"file": p.name, "epoch": o.get("epoch"), "step": o.get("step")}
                            for p, o in zip(paths, objs)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("give at least two checkpoints to average")
    if args.out.resolve() in {p.resolve() for p in args.checkpoints}:
        raise SystemExit(f"{args.out}: is one of the inputs; write the average elsewhere")
    checkpoints.save(args.out, average(args.checkpoints))
    print(f"wrote {args.out}: generators averaged over {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    main()
