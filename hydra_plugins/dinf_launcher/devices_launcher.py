"""``hydra/launcher=devices``: each multirun job in a fresh process pinned to one GPU (or CPU worker).

Why one process per job instead of a long-lived pool: the device is put into the child's environment
before the interpreter starts, a job that segfaults or is OOM-killed takes only itself down, and
GPU memory, W&B runs and Lightning state never leak from one job into the next. The cost, one
interpreter start (~2-5 s) per job, is small next to a training run.
"""
from __future__ import annotations

import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.dinf_launcher._slots import cpu_cores, visible_devices, worker_envs

log = logging.getLogger(__name__)
POLL_S = 0.1


class DevicesLauncher(Launcher):
    def __init__(self, devices: Optional[Sequence[Any]] = None, jobs_per_device: int = 1, cpu_jobs: int = 1,
                 threads_per_job: Optional[int] = None) -> None:
        if OmegaConf.is_config(devices):
            devices = OmegaConf.to_container(devices)
        self.devices = None if devices is None else [str(d) for d in devices]
        self.jobs_per_device = jobs_per_device
        self.cpu_jobs = cpu_jobs
        self.threads_per_job = threads_per_job
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        devices = visible_devices() if self.devices is None else self.devices
        envs = worker_envs(devices, self.jobs_per_device, self.cpu_jobs, self.threads_per_job, cpu_cores())
        if not envs:  # no GPU and one CPU job: exactly what `-m` did before this launcher
            from hydra._internal.core_plugins.basic_launcher import BasicLauncher

            basic = BasicLauncher()
            basic.setup(hydra_context=self.hydra_context, task_function=self.task_function, config=self.config)
            return basic.launch(job_overrides, initial_job_idx)

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        # Resolving the sweep dir here caches ${now:...}, so every worker writes into the same one.
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        where = f"devices {list(dict.fromkeys(devices))}" if devices else "CPU"
        log.info(f"Launching {len(job_overrides)} jobs on {where}, {len(envs)} at a time; sweep output dir: {sweep_dir}")
        tmp = tempfile.mkdtemp(prefix="dinf_launcher_")
        try:
            common = os.path.join(tmp, "common.pkl")
            self._write_common(common)
            jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
            return _run_all(jobs, envs, common, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _write_common(self, path: str) -> None:
        # cloudpickle: Hydra hands us the undecorated `main` of a script, whose module name
        # (`__main__.main`) points at the decorated wrapper, so it must travel by value.
        import cloudpickle

        blob = cloudpickle.dumps((self.hydra_context, self.config, self.task_function, Singleton.get_state()))
        with open(path, "wb") as f:
            pickle.dump({"sys_path": list(sys.path), "blob": blob}, f)


Job = Tuple[int, List[str]]


def _run_all(jobs: List[Job], envs: List[Dict[str, str]], common: str, tmp: str) -> List[JobReturn]:
    """Run ``jobs`` at most ``len(envs)`` at a time; a job takes a free worker slot and gives it back."""
    from hydra_plugins.dinf_launcher._worker import BOOT

    pending: Deque[Job] = deque(jobs)
    free: Deque[int] = deque(range(len(envs)))
    running: Dict[subprocess.Popen, Tuple[Job, int, str]] = {}
    results: Dict[int, JobReturn] = {}
    try:
        while pending or running:
            while pending and free:
                (idx, overrides), slot = pending.popleft(), free.popleft()
                env = envs[slot]
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))} -> device {env['DINF_DEVICE']}")
                job_path, result_path = os.path.join(tmp, f"job{idx}.pkl"), os.path.join(tmp, f"result{idx}.pkl")
                with open(job_path, "wb") as f:
                    pickle.dump({"idx": idx, "overrides": overrides}, f)
                proc = subprocess.Popen([sys.executable, "-c", BOOT, common, job_path, result_path],
                                        env={**os.environ, **env}, stdin=subprocess.DEVNULL)
                running[proc] = ((idx, overrides), slot, result_path)
            time.sleep(POLL_S)
            for proc in [p for p in running if p.poll() is not None]:
                (idx, overrides), slot, result_path = running.pop(proc)
                free.append(slot)
                results[idx] = _collect(idx, overrides, envs[slot]["DINF_DEVICE"], proc.returncode, result_path)
    finally:
        for proc in running:  # Ctrl-C or an error here: leave no orphans holding a GPU
            proc.kill()
            proc.wait()
    return [results[idx] for idx, _ in jobs]


def _collect(idx: int, overrides: List[str], device: str, returncode: int, result_path: str) -> JobReturn:
    """The job's JobReturn, or a FAILED one that says why the worker gave none."""
    from hydra_plugins.dinf_launcher._worker import RemoteTraceback, failed, remote_error

    if not os.path.exists(result_path):
        if returncode < 0:
            how = f"was killed by {signal.Signals(-returncode).name}"
            if -returncode == signal.SIGKILL:
                how += " (out of memory?)"
        else:
            how = f"exited with code {returncode}"
        msg = f"worker process of job #{idx} (device {device}) {how} before returning a result"
        log.error(msg)
        return failed(overrides, remote_error(msg, "WorkerDied"))
    try:
        with open(result_path, "rb") as f:
            result = pickle.load(f)
    except Exception as e:
        msg = f"result of job #{idx} (device {device}) cannot be read: {type(e).__name__}: {e}"
        log.error(msg)
        return failed(overrides, remote_error(msg, type(e).__name__))
    ret: JobReturn = result["ret"]
    if result["traceback"] and isinstance(ret._return_value, BaseException):
        ret._return_value.__cause__ = RemoteTraceback(result["traceback"])
        log.error(f"job #{idx} (device {device}) failed: {type(ret._return_value).__name__}: {ret._return_value}")
    return ret
