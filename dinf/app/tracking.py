"""Experiment tracking: the run's place in a sweep, its loggers, and what W&B shows.

W&B runs of one sweep share a ``group`` (the sweep folder); the Hydra choices (model, pde, kernel,
grid, …) are config columns, so the dashboard groups and filters by them.
"""
from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from dinf.app.checkpoint import RunState


def run_info() -> Dict[str, Any]:
    """Hydra's view of this job: group choices, task overrides, sweep folder and job number."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {"choices": {}, "overrides": [], "multirun": False}
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    info: Dict[str, Any] = {
        "choices": {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra") and v is not None},
        "overrides": list(hc.overrides.task),
        "multirun": multirun,
    }
    if os.environ.get("DINF_DEVICE"):  # set by the devices launcher
        info["device"] = os.environ["DINF_DEVICE"]
    if multirun:
        info["sweep"] = {"dir": os.path.abspath(hc.sweep.dir), "job": hc.job.num}
        swept = swept_keys(hc.sweep.dir)
        info["swept"] = [o for o in info["overrides"] if override_key(o) in swept]
    return info


SWEEP_FUNCTIONS = ("range(", "choice(", "glob(", "interval(")


def swept_keys(sweep_dir: str) -> List[str]:
    """The keys a sweep varies, from the ``multirun.yaml`` Hydra writes before the jobs start:
    comma lists and sweep functions on the command line, and ``hydra.sweeper.params``."""
    path = os.path.join(sweep_dir, "multirun.yaml")
    if not os.path.exists(path):
        return []
    hydra = OmegaConf.load(path).hydra
    keys = [override_key(o) for o in hydra.overrides.task
            if "," in o.split("=", 1)[-1] or o.split("=", 1)[-1].startswith(SWEEP_FUNCTIONS)]
    params = OmegaConf.select(hydra, "sweeper.params") or {}
    return keys + [str(k) for k in params]


def override_key(override: str) -> str:
    """The config key an override sets: ``+trainer.max_time=…`` → ``trainer.max_time``."""
    return override.split("=", 1)[0].lstrip("~+")


def sweep_group(sweep_dir: str) -> str:
    """A readable W&B group for a sweep folder: its last two path parts (date/time)."""
    parts = os.path.normpath(sweep_dir).split(os.sep)
    return "/".join(parts[-2:])


def run_label(overrides: List[str]) -> Optional[str]:
    """A run name from its overrides: ``model=siren,kernel.eps=0.7``."""
    return ",".join(o for o in overrides if not o.startswith("hydra")) or None


def build_loggers(cfg: DictConfig, output_dir: str, state: Optional[RunState] = None,
                  info: Optional[Dict[str, Any]] = None) -> List[Any]:
    node = cfg.get("logger")
    if not node:
        return []
    extra: Dict[str, Any] = {}
    if is_wandb(node):
        extra = _wandb_args(node, state, info or {})
    return [instantiate(node, save_dir=output_dir, **extra)]


def is_wandb(node: Optional[DictConfig]) -> bool:
    """Whether a logger config builds Lightning's W&B logger."""
    return bool(node) and str(node.get("_target_", "")).endswith("WandbLogger")


def _wandb_args(node: DictConfig, state: Optional[RunState], info: Dict[str, Any]) -> Dict[str, Any]:
    args: Dict[str, Any] = {}
    if state is not None:
        # One W&B run per run folder: a resumed run continues its W&B run.
        state.wandb_id = state.wandb_id or secrets.token_hex(4)  # W&B ids: [a-z0-9]
        state.save()
        args.update(id=state.wandb_id, resume="allow")
    if info.get("sweep") and not node.get("group"):
        args["group"] = sweep_group(info["sweep"]["dir"])
    label = run_label(info.get("swept") or info.get("overrides") or [])
    if label and not node.get("name"):
        args["name"] = label
    if info.get("choices", {}).get("pde"):
        args["job_type"] = info["choices"]["pde"]
    return args


def log_config(loggers: List[Any], cfg: DictConfig, metric_modes: Dict[str, str], info: Dict[str, Any]) -> None:
    """The resolved config plus the Hydra choices and sweep, as columns to group by."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config["choices"] = info.get("choices", {})
    for key in ("sweep", "device"):
        if key in info:
            config[key] = info[key]
    for lg in loggers:
        lg.log_hyperparams(config)
        exp = getattr(lg, "experiment", None)
        if hasattr(exp, "define_metric"):  # W&B: show the best value on the dashboard
            for name, mode in metric_modes.items():
                exp.define_metric(f"val/{name}", summary=mode)


def log_results(loggers: List[Any], results: Dict[str, Any], pictures: List[str]) -> None:
    """Pictures and summary metrics: final and best values, time to target, speed, size."""
    for lg in loggers:
        if hasattr(lg, "log_image"):  # one key each: W&B shows a list of differently sized images badly
            for path in pictures:
                lg.log_image(f"pictures/{os.path.splitext(os.path.basename(path))[0]}", [path])
        exp = getattr(lg, "experiment", None)
        if not hasattr(exp, "summary"):
            continue
        for k in ("train_time_s", "steps", "params", "iterations_per_s", *results["final"]):
            exp.summary[k] = results[k]
        for k, v in results["best"].items():
            exp.summary[f"best/{k}"] = v
        for k, v in results["time_to_target"].items():
            exp.summary[f"time_to_target/{k}"] = None if v is None else v["seconds"]


def finish_wandb(loggers: List[Any], exit_code: int) -> None:
    """Close the W&B run, failed or not: a run left open is reused by the next job of a sweep."""
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        wandb.finish(exit_code=exit_code)
