"""Typed schema of the ``devices`` launcher; registered as ``hydra/launcher=dinf_devices``."""
# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in
# sys.modules, and dataclasses then cannot resolve string annotations.
from dataclasses import dataclass
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class DevicesLauncherConf:
    _target_: str = "hydra_plugins.dinf_launcher.devices_launcher.DevicesLauncher"
    # GPU ids; null: all the parent sees (CUDA_VISIBLE_DEVICES, else every GPU); []: CPU only.
    devices: Optional[List[Any]] = None
    # Jobs sharing one GPU at a time.
    jobs_per_device: int = 1
    # Without GPUs: 1 runs the jobs one after another in this process; N runs N worker processes.
    cpu_jobs: int = 1
    # torch/OpenMP/MKL/numba threads per worker process; null: cores // concurrent workers.
    threads_per_job: Optional[int] = None


# Discovery imports this module in every Hydra app, so the schema is usable without a search path.
ConfigStore.instance().store(group="hydra/launcher", name="dinf_devices", node=DevicesLauncherConf, provider="dinf_launcher")
