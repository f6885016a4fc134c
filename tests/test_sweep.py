"""A multirun end to end: W&B offline runs grouped by sweep, a failing job that does not stop
the others, and the report written at the end."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dinf.app.tracking import sweep_group
from tests.helpers import TINY

ROOT = Path(__file__).resolve().parents[1]


def _field(name: str, value: str) -> bytes:
    """``RunRecord.<name> = value`` as protobuf writes it: tag, length, bytes. Matching the tag
    tells the W&B group apart from the same text inside the logged config."""
    from wandb.proto import wandb_internal_pb2 as pb

    number = pb.RunRecord.DESCRIPTOR.fields_by_name[name].number
    data = value.encode()
    assert len(data) < 128  # one-byte length
    return bytes([(number << 3) | 2, len(data)]) + data


def _offline_run(job: Path) -> bytes:
    """The records of a job's offline W&B run (protobuf: its strings appear verbatim)."""
    runs = sorted(job.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 1, list(job.glob("wandb/*"))
    return runs[0].read_bytes()


@pytest.mark.slow  # a four-job W&B sweep through train.py, ~20 s; .ci/run runs it with -m slow
def test_multirun_groups_wandb_runs_reports_and_survives_a_failing_job(tmp_path):
    sweep = tmp_path / "sweep"
    overrides = [o for o in TINY if o != "~logger"] + ["logger=wandb", f"hydra.sweep.dir={sweep}"]
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "model=dinf,linear_grid", "kernel.eps=1.0,-1.0", *overrides]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    jobs = {}
    for job in sorted(p for p in sweep.iterdir() if p.name.isdigit()):
        saved = json.loads((job / "metrics.json").read_text())
        jobs[(saved["choices"]["model"], saved["config"]["kernel"]["eps"])] = (job, saved)
    assert set(jobs) == {("dinf", 1.0), ("dinf", -1.0), ("linear_grid", 1.0), ("linear_grid", -1.0)}

    failed_job, failed = jobs[("dinf", -1.0)]
    assert failed["status"] == "failed" and failed["error"].startswith("ConfigError: kernel.eps")
    group = _field("run_group", sweep_group(str(sweep)))
    for (model, eps), (job, saved) in jobs.items():
        if (model, eps) == ("dinf", -1.0):
            continue
        assert saved["status"] == "completed" and saved["sweep"]["dir"] == str(sweep)
        assert f"model={model}" in saved["overrides"] and f"kernel.eps={eps}" in saved["overrides"]
        record = _offline_run(job)
        # Grouped by sweep, named by its overrides, the problem as job type, choices as config.
        assert group in record and _field("job_type", "poisson") in record
        assert _field("display_name", f"model={model},kernel.eps={eps}") in record and b"choices" in record
    assert b"ConfigError" not in _offline_run(jobs[("dinf", 1.0)][0])

    # The sweep's report, written by the callback at the end, lists every job; the failed one says why.
    report = (sweep / "report.md").read_text()
    assert "poisson_speed_accuracy.png" in report and (sweep / "poisson_speed_accuracy.png").exists()
    assert report.count("| completed |") == 3 and "| failed |" in report and "eps: must be > 0" in report
    assert "data:image/png;base64" in (sweep / "report.html").read_text()
    # The comparison table as a W&B run of the same group.
    assert _field("job_type", "report") in _offline_run(sweep) and group in _offline_run(sweep)
