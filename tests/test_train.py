"""The trainer end to end on generated folders: learning, resume equality, DDP, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_config, write_domain

from cyclegan_tool import checkpoints
from cyclegan_tool.cli import cli
from cyclegan_tool.errors import CycleGANError
from cyclegan_tool.train.trainer import Reporter, train


def _losses(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def _weights(path: Path) -> dict:
    return checkpoints.read(path)["networks"]


def _assert_identical(a: dict, b: dict) -> None:
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"


def test_cycle_loss_goes_down(dataroot, tmp_path):
    cfg = tiny_config(dataroot, tmp_path, ngf=8, ndf=8, n_epochs=6, n_epochs_decay=0, lr=0.002,
                      pool_size=5, sample_freq=10, save_epoch_freq=3)
    run_dir = train(cfg)
    log = _losses(run_dir)
    first = sum(r["cycle_a"] + r["cycle_b"] for r in log[:5]) / 5
    last = sum(r["cycle_a"] + r["cycle_b"] for r in log[-5:]) / 5
    assert last < 0.85 * first, (first, last)
    for name in ("latest.pt", "epoch_0003.pt", "epoch_0006.pt", "latest_net_G_A.pth", "6_net_G_B.pth",
                 "config.json"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "samples").glob("step_*.png"))
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config"]["ngf"] == 8 and saved["images_a"] == 4
    # the per-network reference-layout generator loads as a plain generator
    assert checkpoints.load_generator(run_dir / "latest_net_G_B.pth").direction == "b2a"


def test_resume_at_epoch_boundary_is_bit_exact(dataroot, tmp_path):
    full = train(tiny_config(dataroot, tmp_path / "full"))
    train(tiny_config(dataroot, tmp_path / "split", until_epoch=1))
    split = train(tiny_config(dataroot, tmp_path / "split"), resume=True)
    a, b = checkpoints.read(full / "latest.pt"), checkpoints.read(split / "latest.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"]
    _assert_identical(a["networks"], b["networks"])
    assert torch.equal(a["pools"]["a"]["images"], b["pools"]["a"]["images"])
    assert a["optimizers"]["gen"]["param_groups"][0]["lr"] == b["optimizers"]["gen"]["param_groups"][0]["lr"]


class _StopAt(Reporter):
    def __init__(self, step: int):
        self.at = step

    def step(self, *, step, epoch, losses):
        if step == self.at:
            raise KeyboardInterrupt


def test_interrupt_mid_epoch_then_resume_is_bit_exact(dataroot, tmp_path):
    full = train(tiny_config(dataroot, tmp_path / "full", batch_size=2))
    with pytest.raises(CycleGANError, match="interrupted at epoch 2"):
        train(tiny_config(dataroot, tmp_path / "cut", batch_size=2), reporter=_StopAt(4))
    assert checkpoints.read(tmp_path / "cut" / "run" / "latest.pt")["batches_done"] == 1
    cut = train(tiny_config(dataroot, tmp_path / "cut", batch_size=2), resume=True)
    _assert_identical(_weights(full / "latest.pt"), _weights(cut / "latest.pt"))


class _TermAt(Reporter):
    def __init__(self, step: int):
        self.at = step

    def step(self, *, step, epoch, losses):
        if step == self.at:
            # as `kill PID` or a scheduler's time limit; raised in this thread, as a process-directed
            # signal may land in any thread a library of an earlier test left behind
            signal.raise_signal(signal.SIGTERM)


class _Killed(Exception):
    pass


def _sigterm_case(dataroot: Path, tmp_path: Path) -> None:
    def killed(*_):  # stands in for SIGTERM's default action (the process dies, nothing saved)
        raise _Killed

    previous = signal.signal(signal.SIGTERM, killed)
    try:
        full = train(tiny_config(dataroot, tmp_path / "full", batch_size=2))
        with pytest.raises(CycleGANError, match="interrupted by SIGTERM at epoch 2"):
            train(tiny_config(dataroot, tmp_path / "cut", batch_size=2, save_latest_freq=0), reporter=_TermAt(4))
        assert signal.getsignal(signal.SIGTERM) is killed  # the run's handler is removed again
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert checkpoints.read(tmp_path / "cut" / "run" / "latest.pt")["batches_done"] == 1
    cut = train(tiny_config(dataroot, tmp_path / "cut", batch_size=2), resume=True)
    _assert_identical(_weights(full / "latest.pt"), _weights(cut / "latest.pt"))


def test_sigterm_stops_between_steps_and_saves_then_resume_is_bit_exact(dataroot, tmp_path):
    # In a fresh interpreter, as a training process is: in the whole suite's process, where earlier
    # tests have loaded OpenVINO, Qt, PyAV and TensorRT for RTX, the signal crashed the process.
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from pathlib import Path; "
            f"import test_train; test_train._sigterm_case(Path({str(dataroot)!r}), Path({str(tmp_path)!r}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def test_existing_run_needs_resume(dataroot, tmp_path):
    train(tiny_config(dataroot, tmp_path, n_epochs=1, n_epochs_decay=0))
    with pytest.raises(CycleGANError, match="already holds a run"):
        train(tiny_config(dataroot, tmp_path, n_epochs=1, n_epochs_decay=0))


@pytest.mark.parametrize("opts", [dict(amp="bf16", channels_last=True), dict(gan_mode="wgangp", norm="batch"),
                                  dict(gan_mode="vanilla", netG="unet_128", crop_size=128, load_size=128,
                                       netD="pixel", lambda_identity=0.0, pool_size=0, lr_policy="cosine")])
def test_other_settings_train(dataroot, tmp_path, opts):
    run_dir = train(tiny_config(dataroot, tmp_path, n_epochs=1, n_epochs_decay=0, **opts))
    for rec in _losses(run_dir):
        assert all(v == v for v in rec.values() if isinstance(v, float))  # no NaN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_gloo_processes(dataroot, tmp_path):
    """torchrun with 2 CPU processes: disjoint data shards, rank-0 artifacts, equal weights."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
           str(_free_port()), "-m", "cyclegan_tool", "train", str(dataroot), "--name", "ddp",
           "--checkpoints-dir", str(tmp_path), "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
           "--load-size", "36", "--crop-size", "32", "--n-epochs", "1", "--n-epochs-decay", "1",
           "--workers", "0", "--device", "cpu", "--print-freq", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "weights identical on all 2 ranks" in proc.stderr
    ckpt = checkpoints.read(tmp_path / "ddp" / "latest.pt")
    assert ckpt["step"] == 2 * 3  # 5 items / 2 ranks -> 3 steps per epoch, 2 epochs
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2
    assert len(_losses(tmp_path / "ddp")) == 6  # rank 0 alone writes the log


def _run_cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_missing_folder_is_one_line_error(tmp_path):
    (tmp_path / "trainA").mkdir()
    write_domain(tmp_path / "trainA", 2, (20, 20), (1, 0, 0), seed=0)
    res = _run_cli("train", str(tmp_path), "--checkpoints-dir", str(tmp_path / "c"))
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "trainB: folder not found" in lines[0]


def test_cli_empty_domain(tmp_path):
    write_domain(tmp_path / "trainA", 2, (20, 20), (1, 0, 0), seed=0)
    (tmp_path / "trainB").mkdir()
    res = _run_cli("train", str(tmp_path), "--checkpoints-dir", str(tmp_path / "c"))
    assert res.exit_code == 1 and "trainB: no images found" in res.output


def test_cli_bad_choice_exit_2(tmp_path):
    res = CliRunner().invoke(cli, ["train", str(tmp_path), "--netG", "resnet_12blocks"])
    assert res.exit_code == 2 and "resnet_12blocks" in res.output


def test_cli_resume_without_run(tmp_path, dataroot):
    res = _run_cli("train", str(dataroot), "--checkpoints-dir", str(tmp_path), "--resume")
    assert res.exit_code == 1 and "nothing to resume" in res.output


def test_cli_trains_skipping_a_bad_image_and_info(tmp_path, dataroot, caplog):
    (dataroot / "trainB" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    args = ["train", str(dataroot), "--checkpoints-dir", str(tmp_path), "--name", "cli", "--netG", "resnet_6blocks",
            "--ngf", "4", "--ndf", "4", "--load-size", "36", "--crop-size", "32", "--n-epochs", "1",
            "--n-epochs-decay", "0", "--workers", "0", "--device", "cpu", "--serial-batches"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "skipped unreadable image" in caplog.text and "broken.jpg" in caplog.text
    assert "1 unreadable image(s) were skipped" in caplog.text
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "cli" / "latest.pt")])
    assert info.exit_code == 0 and "resnet_6blocks" in info.output and "epoch: 1" in info.output


def test_resume_can_extend_the_schedule_but_not_change_the_model(dataroot, tmp_path):
    from dataclasses import replace

    cfg = tiny_config(dataroot, tmp_path, n_epochs=1, n_epochs_decay=0)
    train(cfg)
    longer = replace(cfg, n_epochs_decay=2)
    run = train(longer, resume=True, changed=frozenset({"n_epochs_decay"}))
    ckpt = checkpoints.read(run / "latest.pt")
    assert ckpt["epoch"] == 3 and ckpt["config"]["n_epochs_decay"] == 2
    lr_by_epoch = {r["epoch"]: r["lr"] for r in _losses(run)}
    # the old schedule ended at 0; the extended one decays 1 -> 2/3 -> 1/3 (reference rule)
    assert lr_by_epoch[1] == 2e-4
    assert lr_by_epoch[2] == pytest.approx(2e-4 * 2 / 3) and lr_by_epoch[3] == pytest.approx(2e-4 / 3)
    with pytest.raises(CycleGANError, match="cannot change: ngf"):
        train(replace(cfg, ngf=16), resume=True, changed=frozenset({"ngf"}))
    # options not given on the command line do not count as changes
    assert train(replace(cfg, ngf=16), resume=True).name == "run"


def test_resume_keeps_runtime_options_unless_given(dataroot, tmp_path):
    from dataclasses import replace

    cfg = tiny_config(dataroot, tmp_path, n_epochs=1, n_epochs_decay=1, amp="bf16", print_freq=2, until_epoch=1)
    train(cfg)
    plain = replace(cfg, amp="none", print_freq=100, until_epoch=0)  # what CLI defaults would give
    run = train(plain, resume=True, changed=frozenset({"print_freq"}))
    saved = checkpoints.read(run / "latest.pt")["config"]
    assert saved["amp"] == "bf16" and saved["print_freq"] == 100 and saved["until_epoch"] == 0


def test_losses_going_non_finite_stop_the_run_and_keep_the_last_good_checkpoint(dataroot, tmp_path, monkeypatch):
    from dataclasses import replace

    from cyclegan_tool.train.cyclegan import CycleGAN

    cfg = tiny_config(dataroot, tmp_path, n_epochs=1, n_epochs_decay=1, until_epoch=1)
    run = train(cfg)
    good = (run / "latest.pt").read_bytes()
    real_step = CycleGAN.train_step

    def step(self, real_a, real_b):
        losses = real_step(self, real_a, real_b)
        return {**losses, "cycle_a": losses["cycle_a"] * float("nan")}

    monkeypatch.setattr(CycleGAN, "train_step", step)
    with pytest.raises(CycleGANError, match=r"training diverged: the losses became NaN or infinite at epoch 2, "
                                            r"step 6 \(.*cycle_a nan"):
        train(replace(cfg, until_epoch=0), resume=True)
    assert (run / "latest.pt").read_bytes() == good
