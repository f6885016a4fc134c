"""Runs survive interruption: killed after a checkpoint, the same command continues the run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dinf.app.checkpoint import CHECKPOINT, STATE, begin, run_key
from dinf.app.run import train
from tests.helpers import TINY, compose_cfg

ROOT = Path(__file__).resolve().parents[1]
# Slow enough per step (64² points, 64 cells) that a kill lands mid-run.
SETTINGS = [
    "pde.resolution=64",
    "pde.batch_size=4096",
    "grid.levels=3",
    "trainer.max_steps=100",
    "trainer.val_check_interval=10",
    "model.backend=torch",  # deterministic backward: the comparison is exact
    "solver=adam",  # steps to interrupt (solver=auto would solve this linear problem at once)
]


def _command(registry: Path):
    base = [o for o in TINY if not o.startswith(("trainer.max_steps", "trainer.val_check", "pde.resolution",
                                                  "pde.batch_size", "checkpoint."))]
    return [sys.executable, str(ROOT / "train.py"), *base, *SETTINGS, f"checkpoint.registry={registry}"]


def _checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


@pytest.mark.slow  # three train.py runs, one killed, ~24 s; .ci/run runs it with -m slow
def test_killed_run_resumes_and_ends_like_an_uninterrupted_one(tmp_path):
    reference = train(compose_cfg(SETTINGS), output_dir=str(tmp_path / "reference"))

    registry, first, second = tmp_path / "registry", tmp_path / "first", tmp_path / "second"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(_command(registry) + [f"hydra.run.dir={first}"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt = first / CHECKPOINT
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), proc.stderr.read()[-2000:]
    killed_at = _checkpoint_step(ckpt)
    assert not (first / "metrics.json").exists(), "the run finished before it could be killed"
    assert 0 < killed_at < 100

    # The same command again: Hydra gives it a new folder, the run continues in the first one.
    done = subprocess.run(_command(registry) + [f"hydra.run.dir={second}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((second / "resumed.json").read_text())["continued_in"] == str(first)
    resumed = json.loads((first / "metrics.json").read_text())
    assert resumed["attempts"] == 2 and resumed["steps"] == 100
    steps = [h["step"] for h in resumed["history"]]
    assert steps == [h["step"] for h in reference["history"]] == list(range(0, 101, 10))
    for key in ("psnr", "ssim"):
        assert resumed[key] == pytest.approx(reference[key], rel=1e-6), key
    assert resumed["train_loss"]["last"] == pytest.approx(reference["train_loss"]["last"], rel=1e-6)
    assert json.loads((first / STATE).read_text())["status"] == "completed"
    # Training time continues from the checkpoint's, not from zero.
    at_kill = next(h["train_time_s"] for h in resumed["history"] if h["step"] == killed_at)
    assert resumed["train_time_s"] > at_kill > 0


def test_a_completed_run_is_not_resumed_and_a_changed_config_starts_afresh(tmp_path):
    cfg = compose_cfg([f"checkpoint.registry={tmp_path / 'registry'}"])
    out = tmp_path / "run"
    train(cfg, output_dir=str(out))
    assert (out / CHECKPOINT).exists()
    assert begin(cfg, str(tmp_path / "again")).attempts == 1  # completed: a rerun is a new run
    other = compose_cfg(["seed=1"])
    assert run_key(other) != run_key(cfg)
    assert run_key(compose_cfg(["checkpoint.resume=false"])) == run_key(cfg)  # not part of the key


def test_resume_false_starts_afresh(tmp_path):
    out = tmp_path / "run"
    cfg = compose_cfg([])
    train(cfg, output_dir=str(out))
    state = json.loads((out / STATE).read_text())
    state["status"] = "running"  # as if killed
    (out / STATE).write_text(json.dumps(state))
    assert begin(cfg, str(out)).attempts == 2
    state["status"] = "running"
    (out / STATE).write_text(json.dumps(state))
    assert begin(compose_cfg(["checkpoint.resume=false"]), str(out)).attempts == 1
    assert not (out / CHECKPOINT).exists()  # afresh: the old checkpoint can no longer be picked up


def test_resume_names_a_folder_without_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint.resume"):
        begin(compose_cfg([f"checkpoint.resume={tmp_path}"]), str(tmp_path / "new"))


def test_a_run_that_failed_before_its_first_checkpoint_does_not_inherit_the_folders_old_one(tmp_path):
    # Run A completes and leaves its checkpoint; run B (another config) fails while being built;
    # run C (B's config, fixed) must start afresh, not continue from A's checkpoint.
    train(compose_cfg(["trainer.max_steps=4"]), output_dir=str(tmp_path))
    assert (tmp_path / CHECKPOINT).exists()
    with pytest.raises(Exception):
        train(compose_cfg(["trainer.max_steps=6", "kernel.eps=-1"]), output_dir=str(tmp_path))
    assert not (tmp_path / CHECKPOINT).exists()
    state = begin(compose_cfg(["trainer.max_steps=6", "kernel.eps=-1"]), str(tmp_path))
    assert state.attempts == 1


def test_a_run_killed_after_its_last_step_keeps_its_training_time(tmp_path):
    # Killed while writing its results (pictures): the checkpoint holds the last step, so the
    # same command resumes, trains no more, and reports the checkpoint's training time (not the
    # seconds since the machine booted).
    cfg = compose_cfg(["pde=poisson2d_c", "solver=least_squares", "grid.levels=1", "pde.resolution=[8,8]",
                       "checkpoint.registry=null"])
    first = train(cfg, output_dir=str(tmp_path))
    assert (tmp_path / CHECKPOINT).exists()
    state = json.loads((tmp_path / STATE).read_text())
    state.update(status="running", pid=2 ** 22 + 12345)  # a process that is gone
    (tmp_path / STATE).write_text(json.dumps(state))
    (tmp_path / "metrics.json").unlink()
    again = train(cfg, output_dir=str(tmp_path))
    assert again["attempts"] == 2 and again["steps"] == first["steps"] == 1
    assert again["train_time_s"] == pytest.approx(first["train_time_s"], rel=0.05)  # the time at its checkpoint
    assert again["l2re"] == pytest.approx(first["l2re"], rel=1e-9)
