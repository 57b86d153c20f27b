"""Train CUT / FastCUT for a few steps with the CUT code's own model and with ours, from the
same weights on the same images, patch locations and mirroring, and print both sides' losses.

    git clone https://github.com/taesungp/contrastive-unpaired-translation /tmp/cut
    python tools/check_against_cut_code.py --cut-code /tmp/cut --mode CUT
    python tools/check_against_cut_code.py --cut-code /tmp/cut --mode FastCUT --flip

The CUT code needs torchvision, visdom and dominate only for its data and display modules,
which this check does not use: stand-ins are put in their place. Nothing from the CUT code is
copied here; it is imported from the path given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from unittest import mock

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cut-code", required=True, help="a checkout of taesungp/contrastive-unpaired-translation")
    ap.add_argument("--mode", choices=("CUT", "FastCUT"), default="CUT")
    ap.add_argument("--flip", action="store_true", help="FastCUT: mirror every step (default: never)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--separate-calls", action="store_true",
                    help="call each network once per batch, as the CUT code does (ours stacks calls and reuses the "
                         "forward pass's features as keys: the same arithmetic, rounded differently)")
    args = ap.parse_args()

    for name in ("torchvision", "torchvision.transforms", "torchvision.utils", "visdom", "dominate", "dominate.tags"):
        sys.modules.setdefault(name, mock.MagicMock())
    sys.path.insert(0, args.cut_code)
    cut_args = (f"--dataroot unused --gpu_ids -1 --CUT_mode {args.mode} --netG resnet_6blocks --ngf 8 --ndf 8 "
                f"--num_patches 16 --crop_size 32 --checkpoints_dir {tempfile.mkdtemp()} --name check")
    sys.argv = ["train.py", *cut_args.split()]  # its model options are parsed from sys.argv
    from models import create_model, cut_model  # the CUT code's
    from models import networks as cut_networks
    from options.train_options import TrainOptions

    from cyclegan_tool.train.config import TrainConfig
    from cyclegan_tool.train.cut import CUT
    from cyclegan_tool.train.families import family_options

    # The same patch locations on both sides: the CUT code draws them with NumPy's permutation.
    shared = torch.Generator()
    cut_networks.np.random.permutation = lambda n: torch.randperm(n, generator=shared).numpy()
    flip = 0.0 if args.flip else 0.9  # the CUT code mirrors when random() < 0.5
    cut_model.np = mock.MagicMock()
    cut_model.np.random.random.return_value = flip

    opt = TrainOptions(cmd_line=cut_args).parse()
    torch.manual_seed(0)
    theirs = create_model(opt)
    real_a, real_b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    data = {"A": real_a, "B": real_b, "A_paths": ["a"], "B_paths": ["b"]}
    theirs.data_dependent_initialize(data)
    theirs.setup(opt)

    model = args.mode.lower()
    given = dict(model=model, netG="resnet_6blocks", ngf=8, ndf=8, num_patches=16, crop_size=32, load_size=32,
                 amp="none", device="cpu", dataroot="unused")
    cfg = TrainConfig(**family_options(model, given, frozenset(given))).validate()
    ours = CUT(cfg, torch.device("cpu"))
    ours.stack_calls = not args.separate_calls
    for name, net in (("gen_a2b", theirs.netG), ("disc_b", theirs.netD), ("head", theirs.netF)):
        ours.nets[name].load_state_dict(net.state_dict())

    class Torch:  # our mirroring decision, as theirs
        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def rand(*a, **k):
            return torch.tensor([flip])

    sys.modules["cyclegan_tool.train.cut"].torch = Torch()
    terms = [("G_GAN", "gan_a2b"), ("NCE", "nce"), ("D", "disc_b")] + ([("NCE_Y", "nce_idt")] if model == "cut" else [])
    for step in range(1, args.steps + 1):
        shared.manual_seed(step)
        theirs.set_input(data)
        theirs.optimize_parameters()
        ours.rng = shared  # the same stream for our patch locations
        shared.manual_seed(step)
        losses = ours.train_step(real_a, real_b)
        print(f"step {step}: " + ", ".join(f"{a} {float(getattr(theirs, 'loss_' + a)):.6f} / {float(losses[b]):.6f}"
                                          for a, b in terms) + "  (CUT code / ours)")


if __name__ == "__main__":
    main()
