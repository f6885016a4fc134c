"""Build a run from a composed config, train it, and write its results.

``train(cfg, output_dir)`` is what ``train.py`` calls and what tests call directly.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dinf.errors import ConfigError
from dinf.lsq import check_linear
from dinf.pdes.base import Problem
from dinf.solver import Solver

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> Tuple[Problem, torch.nn.Module]:
    """The problem and the field of a config; bad values raise ``ConfigError`` naming the key."""
    problem = _instantiate(cfg.pde, "pde")
    field = _instantiate(cfg.model, "model")
    for key in ("in_dim", "out_dim"):
        if getattr(field, key) != getattr(problem, key):
            raise ConfigError(f"model.{key}", f"{getattr(field, key)} does not match pde.{key}={getattr(problem, key)}")
    return problem, field


def _instantiate(node: DictConfig, group: str) -> Any:
    try:
        return instantiate(node, _convert_="all")
    except ConfigError as e:
        raise e.prefixed(group) from None
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ConfigError):
            raise cause.prefixed(group) from None
        if isinstance(cause, TypeError):  # an option the class does not take
            raise ConfigError(group, str(cause)) from None
        raise


def build_loggers(cfg: DictConfig, output_dir: str) -> List[Any]:
    node = cfg.get("logger")
    if not node:
        return []
    return [instantiate(node, save_dir=output_dir)]


def train(cfg: DictConfig, output_dir: Optional[str] = None) -> Dict[str, Any]:
    """Seed → build → fit → evaluate → write ``metrics.json`` and pictures. Returns the metrics."""
    output_dir = output_dir or _hydra_output_dir() or os.getcwd()
    os.makedirs(output_dir, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    problem, field = build(cfg)
    opt_cfg = cfg.optimizer
    lsq = _instantiate(opt_cfg.lsq, "optimizer") if opt_cfg.get("lsq") else None
    solver = Solver(
        field,
        problem,
        optimizer=instantiate(opt_cfg.optim) if opt_cfg.get("optim") else None,
        scheduler=instantiate(opt_cfg.scheduler) if opt_cfg.get("scheduler") else None,
        seed=cfg.seed,
        lsq=lsq,
    )
    if lsq is not None:
        check_linear(field, problem)
    loggers = build_loggers(cfg, output_dir)
    _log_config(loggers, cfg, problem)
    # A least-squares run is one solve: one step, validated after it.
    steps = {"max_steps": 1, "val_check_interval": 1} if lsq is not None else _validation_cadence(cfg.trainer)
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers or False, default_root_dir=output_dir, **steps)
    wall = time.perf_counter()
    try:
        trainer.fit(solver)
        results = summarize(cfg, solver, problem, field, wall_time=time.perf_counter() - wall)
        write_outputs(results, solver, problem, field, output_dir, loggers)
    finally:
        _finish_wandb(loggers)
    return results


def _validation_cadence(trainer_cfg: DictConfig) -> Dict[str, Any]:
    """A run shorter than the validation interval still validates, at its last step."""
    steps, every = trainer_cfg.get("max_steps", -1), trainer_cfg.get("val_check_interval")
    if isinstance(every, int) and 0 < steps < every:
        return {"val_check_interval": steps}
    return {}


def summarize(cfg: DictConfig, solver: Solver, problem: Problem, field: torch.nn.Module, wall_time: float) -> Dict[str, Any]:
    final = solver.evaluate()
    train_time = solver.training_time()
    if not solver.history or solver.history[-1]["step"] != solver.steps:
        solver.record(final, train_time)
    best = {}
    for name, mode in problem.metric_modes.items():
        values = [h[name] for h in solver.history if not math.isnan(h.get(name, math.nan))]
        best[name] = (max if mode == "max" else min)(values) if values else math.nan
    return {
        **final,
        "final": final,
        "best": best,
        "train_time_s": train_time,
        "wall_time_s": wall_time,
        "warmup_s": solver.warmup_s,
        "steps": solver.steps,
        "train_loss": {"first": solver.first_loss, "last": solver.last_loss},
        "params": sum(p.numel() for p in field.parameters()),
        "time_to_target": solver.time_to_target,
        "pde": type(problem).__name__,
        "model": type(field).__name__,
        "history": solver.history,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def write_outputs(results: Dict[str, Any], solver: Solver, problem: Problem, field: torch.nn.Module,
                  output_dir: str, loggers: List[Any]) -> None:
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(_jsonable(results), f, indent=2)
    with torch.enable_grad():
        figures = problem.pictures(field)
        for path in problem.save(field, output_dir):
            log.info("wrote %s", path)
    for name, fig in figures.items():
        fig.savefig(os.path.join(output_dir, f"{name}.png"), dpi=100, bbox_inches="tight")
    for lg in loggers:
        if hasattr(lg, "log_image") and figures:
            lg.log_image("pictures", [os.path.join(output_dir, f"{n}.png") for n in figures], caption=list(figures))
        exp = getattr(lg, "experiment", None)
        if hasattr(exp, "summary"):
            for k in ("train_time_s", "steps", "params", *results["final"]):
                exp.summary[k] = results[k]
            for k, v in results["best"].items():
                exp.summary[f"best/{k}"] = v
            for k, v in results["time_to_target"].items():
                exp.summary[f"time_to_target/{k}"] = None if v is None else v["seconds"]
    log.info("metrics: %s", {k: results[k] for k in results["final"]})
    log.info("wrote %s", os.path.join(output_dir, "metrics.json"))


def _log_config(loggers: List[Any], cfg: DictConfig, problem: Problem) -> None:
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        exp = getattr(lg, "experiment", None)
        if hasattr(exp, "define_metric"):  # W&B: show the best value on the dashboard
            for name, mode in problem.metric_modes.items():
                exp.define_metric(f"val/{name}", summary=mode)


def _finish_wandb(loggers: List[Any]) -> None:
    # A run left open is reused by the next job of a multirun.
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        wandb.finish()


def _hydra_output_dir() -> Optional[str]:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj
