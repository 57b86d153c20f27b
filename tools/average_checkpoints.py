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
from cyclegan_tool.errors import CycleGANError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("give at least two checkpoints to average")
    if args.out.resolve() in {p.resolve() for p in args.checkpoints}:
        raise SystemExit(f"{args.out}: is one of the inputs; write the average elsewhere")
    try:
        soup = checkpoints.average_generators(args.checkpoints)
    except CycleGANError as e:
        raise SystemExit(str(e)) from None
    checkpoints.save(args.out, soup)
    print(f"wrote {args.out}: generators averaged over {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    main()
