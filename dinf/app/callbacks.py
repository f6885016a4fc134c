"""Hydra callbacks: at the end of a sweep, its report on disk and its comparison table in W&B."""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dinf.report import load_runs, tables, write_report
from dinf.app.tracking import is_wandb, sweep_group

log = logging.getLogger(__name__)


class SweepReport(Callback):
    """Writes ``report.md``/``report.html`` into the sweep folder when a multirun ends and, when
    the runs log to W&B, logs the comparison table as a run of the sweep's group (job type
    ``report``). A report that cannot be made is logged, never raised: the sweep's runs stand."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        sweep_dir = str(config.hydra.sweep.dir)
        try:
            runs = load_runs(sweep_dir)
            path = write_report(sweep_dir, runs=runs)
            failed = sum(r.status != "completed" for r in runs)
            log.info("sweep report: %s (%d runs, %d not completed)", path, len(runs), failed)
            self._log_wandb(config, sweep_dir, runs)
        except Exception as e:  # noqa: BLE001 — the report is a convenience, not the result
            log.warning("sweep report failed: %s: %s", type(e).__name__, e)

    def _log_wandb(self, config: DictConfig, sweep_dir: str, runs: list) -> None:
        node: Optional[DictConfig] = config.get("logger")
        if not is_wandb(node):
            return
        if os.environ.get("WANDB_MODE") == "disabled":
            return
        import wandb

        mode = "offline" if node.get("offline", True) else "online"
        run = wandb.init(project=node.get("project"), group=node.get("group") or sweep_group(sweep_dir),
                         job_type="report", name="report", dir=sweep_dir, mode=mode)
        try:
            for problem, (columns, rows) in tables(runs).items():
                cells = [[_cell(v) for v in row] for row in rows]
                run.log({f"comparison/{problem}": wandb.Table(columns=list(columns), data=cells)})
            for png in sorted(f for f in os.listdir(sweep_dir) if f.endswith("_speed_accuracy.png")):
                run.log({f"speed_accuracy/{png[:-len('_speed_accuracy.png')]}": wandb.Image(os.path.join(sweep_dir, png))})
        finally:
            run.finish()


def _cell(v: Any) -> Any:
    """W&B tables take numbers and strings; anything else (lists, None) as text."""
    if v is None:
        return None
    return v if isinstance(v, (int, float, str)) else str(v)
