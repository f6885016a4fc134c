"""One run on several devices (Lightning DDP), here two CPU processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # two DDP processes, ~18 s; .ci/run runs it with -m slow
def test_ddp_run_takes_every_step_and_writes_one_result(tmp_path):
    run = tmp_path / "run"
    overrides = [o for o in TINY if not o.startswith(("trainer.max_steps", "trainer.val_check"))]
    cmd = [sys.executable, str(ROOT / "train.py"), "trainer=ddp", "trainer.devices=2", *overrides,
           "pde=helmholtz_manufactured", "solver=adam", "trainer.max_steps=6", "trainer.val_check_interval=3", f"hydra.run.dir={run}"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((run / "metrics.json").read_text())
    # Not split across ranks by a distributed sampler: each rank runs all steps.
    assert saved["status"] == "completed" and saved["steps"] == 6
    assert [h["step"] for h in saved["history"]] == [0, 3, 6]
    assert saved["rel_l2"] < saved["history"][0]["rel_l2"]
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert json.loads((run / "run_state.json").read_text())["status"] == "completed"
