"""What a run prints: one compact line per validation where a progress bar would fill a log
file, and none of the third-party adverts and notices that are not the user's concern."""
from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import pytorch_lightning as pl

log = logging.getLogger("dinf.app.progress")

# Lightning's info lines that say nothing about this run (real warnings pass untouched).
_NOISE = ("💡 Tip", "TPU available", "HPU available", "GPU available: False", "`Trainer.fit` stopped",
          "`Trainer(val_check_interval=1)` was configured")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_NOISE)


def quiet_third_parties() -> None:
    """Silence adverts and deprecation notices from Lightning's internals (idempotent)."""
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
    # Lightning's pytree helper uses a torch class torch has deprecated: not the user's concern.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # A least-squares run has no optimizer and one step on purpose.
    warnings.filterwarnings("ignore", message=r".*configure_optimizers.* returned `None`.*")
    warnings.filterwarnings("ignore", message=r".*number of training batches \(1\) is smaller than the logging.*")


def want_progress_bar(setting: Any) -> bool:
    """``trainer.enable_progress_bar``: ``auto`` draws a bar only on a terminal."""
    if setting == "auto" or setting is None:
        return sys.stderr.isatty()
    return bool(setting)


class ValidationLines(pl.Callback):
    """One line per validation: step, training time, loss and metrics. Used instead of the
    progress bar when output goes to a file, where a bar writes a line every step."""

    def on_validation_end(self, trainer: pl.Trainer, module: Any) -> None:
        history = getattr(module, "history", None)
        if not history or trainer.sanity_checking:
            return
        entry = history[-1]
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else "?"
        parts = [f"step {entry['step']}/{total}", f"{entry['train_time_s']:.1f} s"]
        if getattr(module, "last_loss", None) is not None:
            parts.append(f"loss {module.last_loss:.3e}")
        parts += [f"{k} {_fmt(v)}" for k, v in entry.items() if k not in ("step", "train_time_s")]
        log.info(" · ".join(parts))


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
