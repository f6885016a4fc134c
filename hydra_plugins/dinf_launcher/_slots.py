"""Which worker runs on which device: small pure functions, unit-tested."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def device_slots(devices: Sequence[Any], jobs_per_device: int = 1) -> List[str]:
    """One entry per concurrent worker: every device ``jobs_per_device`` times.

    Round-robin order, so the first ``len(devices)`` workers sit on distinct devices.
    """
    if jobs_per_device < 1:
        raise ValueError(f"jobs_per_device must be >= 1, got {jobs_per_device}")
    return [str(d) for _ in range(jobs_per_device) for d in devices]


def parse_visible(value: str) -> List[str]:
    """Device ids in a ``CUDA_VISIBLE_DEVICES`` value; CUDA ignores everything from a negative id on."""
    ids: List[str] = []
    for item in (s.strip() for s in value.split(",")):
        if not item or item.startswith("-"):
            break
        ids.append(item)
    return ids


def visible_devices(environ: Mapping[str, str] = os.environ) -> List[str]:
    """The GPUs this process may use, without creating a CUDA context here."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        return parse_visible(environ["CUDA_VISIBLE_DEVICES"])
    try:
        import torch
    except ImportError:
        return []
    # device_count() asks the driver (or NVML); it leaves torch.cuda uninitialised.
    return [str(i) for i in range(torch.cuda.device_count())]


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_envs(devices: Sequence[Any], jobs_per_device: int = 1, cpu_jobs: int = 1,
                threads_per_job: Optional[int] = None, cores: int = 1) -> List[Dict[str, str]]:
    """Environment of each concurrent worker process; ``[]`` means run in-process (no GPU, one CPU job)."""
    if cpu_jobs < 1:
        raise ValueError(f"cpu_jobs must be >= 1, got {cpu_jobs}")
    slots = device_slots(devices, jobs_per_device)
    if not slots:
        if cpu_jobs == 1:
            return []
        slots = ["" for _ in range(cpu_jobs)]  # "" hides every GPU
    threads = str(threads_per_job or max(1, cores // len(slots)))
    return [{"CUDA_VISIBLE_DEVICES": d, "DINF_DEVICE": d or "cpu", **{v: threads for v in THREAD_VARS}} for d in slots]
