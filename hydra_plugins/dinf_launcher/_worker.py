"""The child side of the ``devices`` launcher: one job in a fresh interpreter.

Started as ``python -c BOOT common.pkl job.pkl result.pkl`` with CUDA_VISIBLE_DEVICES already in
its environment, so the device is fixed before anything (torch included) is imported.
"""
from __future__ import annotations

import logging
import os
import pickle
import sys
import traceback
from typing import Any, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)

# Only stdlib runs before sys.path is made the parent's; then the payload (and torch with it) loads.
BOOT = (
    "import pickle, sys\n"
    "with open(sys.argv[1], 'rb') as f: common = pickle.load(f)\n"
    "sys.path[:] = common['sys_path']\n"
    "from hydra_plugins.dinf_launcher._worker import main\n"
    "main(common, sys.argv[2], sys.argv[3])\n"
)


class RemoteJobError(RuntimeError):
    """Stands in for a job's exception that cannot cross a process boundary; ``type_name`` keeps its type."""

    type_name: str = ""


class RemoteTraceback(Exception):
    """Carries the worker's traceback text; set as ``__cause__`` so Hydra prints it under the error."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def remote_error(message: str, type_name: str = "") -> RemoteJobError:
    err = RemoteJobError(message)
    err.type_name = type_name
    return err


def failed(overrides: List[str], error: BaseException) -> Any:
    """A FAILED JobReturn for a job whose run_job never returned."""
    from hydra.core.utils import JobReturn, JobStatus

    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error)


def main(common: Dict[str, Any], job_path: str, result_path: str) -> None:
    with open(job_path, "rb") as f:
        job = pickle.load(f)
    ret, tb = run(common["blob"], job["idx"], job["overrides"])
    write_result(result_path, ret, tb)


def run(blob: bytes, idx: int, overrides: List[str]) -> Tuple[Any, Optional[str]]:
    """Run one job the way Hydra's own launchers do; returns its JobReturn and, if it failed, the traceback."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals
    from omegaconf import open_dict

    hydra_context, config, task_function, singleton_state = pickle.loads(blob)
    setup_globals()
    Singleton.set_state(singleton_state)
    try:
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx  # as BasicLauncher, so both modes name jobs alike
            sweep_config.hydra.job.num = idx
        HydraConfig.instance().set_config(sweep_config)
        ret = run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except SystemExit as e:  # run_job only catches Exception; sys.exit() in a job must not lose the result
        if e.code in (None, 0):
            from hydra.core.utils import JobReturn

            return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED), None
        ret = failed(overrides, remote_error(f"SystemExit: {e.code}", "SystemExit"))
        return ret, "".join(traceback.format_exception(e))
    except Exception as e:
        return failed(overrides, e), "".join(traceback.format_exception(e))
    if ret.status == JobStatus.FAILED:
        tb = "".join(traceback.format_exception(ret._return_value))
        log.error("job #%d failed on device %s:\n%s", idx, os.environ.get("DINF_DEVICE"), tb)
        return ret, tb
    return ret, None


def write_result(path: str, ret: Any, tb: Optional[str]) -> None:
    """Pickle the result; an exception or value that does not survive the round trip is replaced."""
    import cloudpickle
    from hydra.core.utils import JobStatus

    try:
        data = cloudpickle.dumps({"ret": ret, "traceback": tb})
        pickle.loads(data)  # e.g. an exception whose __init__ takes other arguments than its args
    except Exception as e:
        value = ret._return_value
        if ret.status == JobStatus.FAILED:
            name = f"{type(value).__module__}.{type(value).__qualname__}"
            ret._return_value = remote_error(f"{name}: {value}", name)
        else:
            ret.status = JobStatus.FAILED
            ret._return_value = remote_error(f"the job's return value cannot be sent back ({type(e).__name__}: {e})")
        data = cloudpickle.dumps({"ret": ret, "traceback": tb})
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # the parent reads a whole file or none


if __name__ == "__main__":
    sys.exit("run by the devices launcher, not by hand")
