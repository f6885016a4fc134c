"""Lightning's W&B logger without the noise: no deprecated ``anonymous`` setting (W&B warns about
it on every run) and W&B's own console output kept to warnings, unless the config asks for more."""
from __future__ import annotations

from typing import Any

from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger


class WandbLogger(_LightningWandbLogger):
    """``pytorch_lightning.loggers.WandbLogger`` that does not pass ``anonymous`` to ``wandb.init``
    and, with ``quiet=True`` (the default), keeps W&B from printing its banner and run summary."""

    def __init__(self, *args: Any, quiet: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
        if quiet:
            settings = dict(self._wandb_init.get("settings") or {})
            settings.setdefault("quiet", True)
            self._wandb_init["settings"] = settings
