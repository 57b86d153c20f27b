"""tools/average_checkpoints.py: how the shipped horse2zebra was made (an average of epochs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from cyclegan_tool import checkpoints
from cyclegan_tool.train.trainer import train

TOOL = Path(__file__).resolve().parents[1] / "tools" / "average_checkpoints.py"


def run_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def epochs(tmp_path_factory) -> list[Path]:
    from conftest import write_domain

    root = tmp_path_factory.mktemp("avg")
    write_domain(root / "data" / "trainA", 3, (36, 36), (1.0, 0.2, 0.2), seed=1)
    write_domain(root / "data" / "trainB", 3, (36, 36), (0.2, 0.2, 1.0), seed=2)
    train(tiny_config(root / "data", root / "out", n_epochs=2, n_epochs_decay=0, save_epoch_freq=1))
    return [root / "out" / "run" / f"epoch_000{k}.pt" for k in (1, 2)]


def test_average_is_the_mean_of_the_generators_and_loads(epochs, tmp_path):
    out = tmp_path / "soup.pt"
    res = run_tool("-o", out, *epochs)
    assert res.returncode == 0, res.stderr
    objs = [checkpoints.read(p) for p in epochs]
    soup = checkpoints.read(out)
    for net in ("gen_a2b", "gen_b2a"):
        for key, value in soup["networks"][net].items():
            if value.is_floating_point():
                want = (objs[0]["networks"][net][key] + objs[1]["networks"][net][key]) / 2
                torch.testing.assert_close(value, want)
    assert objs[0]["networks"]["gen_a2b"]["model.1.weight"].ne(objs[1]["networks"]["gen_a2b"]["model.1.weight"]).any()
    assert [s["file"] for s in soup["averaged_from"]] == ["epoch_0001.pt", "epoch_0002.pt"]
    assert "epoch_0001.pt (epoch 1), epoch_0002.pt (epoch 2)" in checkpoints.describe(out)["averaged_from"]
    loaded = checkpoints.load_generator(out, direction="b2a")
    torch.testing.assert_close(loaded.net.state_dict()["model.1.weight"], soup["networks"]["gen_b2a"]["model.1.weight"])


def test_refuses_other_architectures_and_writing_onto_an_input(epochs, tmp_path):
    other = checkpoints.read(epochs[0])
    other["arch"] = dict(other["arch"], generator=dict(other["arch"]["generator"], ngf=8))
    checkpoints.save(tmp_path / "other.pt", other)
    mixed = run_tool("-o", tmp_path / "x.pt", epochs[0], tmp_path / "other.pt")
    assert mixed.returncode != 0 and "other.pt: a different architecture" in mixed.stderr
    assert not (tmp_path / "x.pt").exists()
    before = epochs[1].read_bytes()
    onto = run_tool("-o", epochs[1], *epochs)
    assert onto.returncode != 0 and "is one of the inputs" in onto.stderr
    assert epochs[1].read_bytes() == before
    single = run_tool("-o", tmp_path / "y.pt", epochs[0])
    assert single.returncode != 0 and "at least two" in single.stderr
