"""Build a run from a composed config, train it, and write its results.

``train(cfg, output_dir)`` is what ``train.py`` calls and what tests call directly.
"""
from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import sys
import time
import traceback
from typing import Any, Dict, Iterable, List, Optional, Tuple

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from dinf import cli
from dinf.checkpoint import CheckpointAtValidation, attach, begin, finish
from dinf.errors import ConfigError
from dinf.fields.mapped import MappedField
from dinf.fields.warped import WarpedField, focus_axes
from dinf.lsq import check_linear
from dinf.pdes.base import Problem
from dinf.progress import ValidationLines, quiet_third_parties, want_progress_bar
from dinf.solver import Solver
from dinf.tracking import build_loggers, finish_wandb, log_config, log_results, run_info

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> Tuple[Problem, torch.nn.Module]:
    """The problem and the field of a config; bad values raise ``ConfigError`` naming the key."""
    problem = _instantiate(cfg, "pde")
    field = _instantiate(cfg, "model")
    for key in ("in_dim", "out_dim"):
        if getattr(field, key) != getattr(problem, key):
            raise ConfigError(f"model.{key}", f"{getattr(field, key)} does not match pde.{key}={getattr(problem, key)}")
    if getattr(field, "classical", False):  # a classical solver works in the problem's own coordinates
        field.check(field, problem)
        return problem, field
    bounds = getattr(problem, "bounds", None)
    if bounds is not None and any(tuple(b) != (-1.0, 1.0) for b in bounds):
        field = MappedField(field, bounds)  # fields live on [-1, 1]^d; the problem's box maps onto it
    focus = cfg.get("focus")
    if focus:
        if "spacing" not in inspect.signature(problem.sample).parameters:
            raise ConfigError("grid.focus", f"needs a problem stated in a config file; {type(problem).__name__} "
                              "draws its own points")
        field = WarpedField(field, focus_axes(OmegaConf.to_container(focus, resolve=True), problem.coords,
                                              problem.bounds))
    return problem, field


def _instantiate(cfg: DictConfig, path: str, **kwargs: Any) -> Any:
    """Build the object at ``path`` of ``cfg``. A bad value raises ``ConfigError`` under the key
    the user sets (``kernel.eps``, not the interpolated ``model.eps``); an option the class does
    not take names its nearest valid option."""
    node = OmegaConf.select(cfg, path)
    mistake = _check_types(node, path, skip=set(kwargs))
    if mistake is not None:
        raise _user_key(cfg, mistake)
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except ConfigError as e:
        raise _user_key(cfg, e.prefixed(path)) from None
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ConfigError):
            raise _user_key(cfg, cause.prefixed(path)) from None
        if isinstance(cause, TypeError):  # an option the class does not take
            raise _unknown_option(node, path, cause) or ConfigError(path, str(cause)) from None
        if path == "trainer" and isinstance(cause, (ValueError, MisconfigurationException)):
            raise ConfigError(path, str(cause).splitlines()[0]) from None  # a value Lightning refuses
        raise


def _optimizer(cfg: DictConfig, field: torch.nn.Module) -> Any:
    """The optimizer's partial, tried once on the field so a bad value (``lr=-1``) stops the run
    here with its key rather than inside Lightning's fit."""
    if not cfg.optimizer.get("optim"):
        return None
    make = _instantiate(cfg, "optimizer.optim")
    try:
        make(field.parameters())
    except (ValueError, TypeError) as e:
        key = "optimizer.optim.lr" if "learning rate" in str(e) else "optimizer.optim"
        raise _user_key(cfg, ConfigError(key, str(e))) from None
    return make


def _user_key(cfg: DictConfig, error: ConfigError) -> ConfigError:
    key = cli.source_key(cfg, error.key)
    return error if key == error.key else ConfigError(key, error.detail)


def _unknown_option(node: DictConfig, path: str, error: TypeError) -> Optional[ConfigError]:
    """``model.kernal: no such key; did you mean model.kernel?`` for an option the class lacks."""
    m = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    if m is None:
        return None
    try:
        params = inspect.signature(get_class(node._target_)).parameters
    except Exception:  # noqa: BLE001 - the plain message is still right
        return None
    key = f"{path}.{m.group(1)}"
    message = cli.unknown_key(key, [p for p in params if p not in ("self", "args", "kwargs")], path, can_add=False)
    return ConfigError(key, message.split(": ", 1)[1])


def _check_types(node: DictConfig, path: str, skip: Iterable[str] = ()) -> Optional[ConfigError]:
    """A value whose type contradicts the target class's signature (``lr=abc``), before the
    class fails on it somewhere inside; nested targets are checked under their own paths."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return None
    try:
        target = get_class(node._target_) if "." in str(node._target_) else None
    except Exception:  # noqa: BLE001 - a missing target is reported by instantiate
        return None
    values = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items()
              if not str(k).startswith("_") and k not in skip}
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            values.pop(key, None)
            found = _check_types(child, f"{path}.{key}")
            if found is not None:
                return found
    return cli.check_types(target, values, path) if target is not None else None


def train(cfg: DictConfig, output_dir: Optional[str] = None) -> Dict[str, Any]:
    """Seed → build → fit → evaluate → write ``metrics.json`` and pictures. Returns the metrics.

    A run interrupted earlier with the same config continues from its checkpoint, in its own
    folder (see ``dinf.checkpoint``). A run that raises leaves ``metrics.json`` with
    ``status: failed`` and the error, then re-raises.
    """
    output_dir = output_dir or _hydra_output_dir() or os.getcwd()
    os.makedirs(output_dir, exist_ok=True)
    info = run_info()
    rank = rank_zero_only.rank  # the other ranks of a DDP run are started by rank 0's fit
    state = begin(cfg, output_dir) if rank == 0 else attach(output_dir)
    output_dir = state.output_dir
    resume_from = state.checkpoint if state.attempts > 1 else None
    solver: Optional[Solver] = None
    loggers: List[Any] = []
    status = "interrupted"
    try:
        cli.check_run_config(cfg)
        quiet_third_parties()
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        problem, field = build(cfg)
        opt_cfg = cfg.optimizer
        # A classical model is its own solver: a preset's optimizer (Gauss–Newton for Burgers) is
        # then not built, so that its settings (a learning rate of 0) cannot stop the run.
        classical = getattr(field, "classical", False)
        lsq = _instantiate(cfg, "optimizer.lsq") if opt_cfg.get("lsq") and not classical else None
        gauss_newton = _instantiate(cfg, "optimizer.gauss_newton") \
            if opt_cfg.get("gauss_newton") and not classical else None
        if opt_cfg.get("newton") and not classical:  # Newton on an energy: the same kind of stepping solver
            gauss_newton = _instantiate(cfg, "optimizer.newton")
        if lsq is not None and opt_cfg.get("auto", False):
            try:  # optimizer=auto: one least-squares solve where it applies, else the optimizer
                check_linear(field, problem)
                log.info("least squares applies: one solve")
            except ConfigError as e:
                log.info("least squares does not apply (%s); training with %s", e.detail.split(" (use ")[0],
                         str(opt_cfg.optim._target_).rsplit(".", 1)[-1])
                lsq = None
        if classical:  # model=fem: the model is its own one-step solver
            lsq = field
        if gauss_newton is not None:
            gauss_newton.check(field, problem)
        solver = Solver(
            field,
            problem,
            optimizer=_optimizer(cfg, field) if lsq is None and gauss_newton is None else None,
            scheduler=_instantiate(cfg, "optimizer.scheduler") if opt_cfg.get("scheduler") else None,
            seed=cfg.seed,
            lsq=lsq if gauss_newton is None else gauss_newton,
        )
        if lsq is not None and lsq is not field:
            check_linear(field, problem)
        loggers = build_loggers(cfg, output_dir, state, info)
        log_config(loggers, cfg, problem.metric_modes, info)
        # A least-squares run is one solve: one step, validated after it.
        # A Gauss–Newton run's steps are its solves (trainer.max_steps bounds them).
        steps = {"max_steps": getattr(lsq, "refinements", 1), "val_check_interval": 1} \
            if lsq is not None and gauss_newton is None else _validation_cadence(cfg.trainer)
        callbacks = [CheckpointAtValidation(state.checkpoint)] if _checkpoints_on(cfg) else []
        bar = want_progress_bar(cfg.trainer.get("enable_progress_bar"))
        if not bar:
            callbacks.append(ValidationLines())
        trainer: pl.Trainer = _instantiate(cfg, "trainer", logger=loggers or False, default_root_dir=output_dir,
                                           callbacks=callbacks, enable_progress_bar=bar, **steps)
        wall = time.perf_counter()
        trainer.fit(solver, ckpt_path=resume_from)
        if not trainer.is_global_zero:
            status = "completed"
            return {}
        results = summarize(cfg, solver, problem, field, wall_time=time.perf_counter() - wall)
        results.update(status="completed", attempts=state.attempts, **_hydra_fields(info))
        write_outputs(results, problem, field, output_dir, loggers)
        status = "completed"
    except Exception as e:
        status = "failed"
        if rank == 0:
            write_failure(output_dir, cfg, e, solver, info)
        raise
    finally:
        if rank == 0:
            finish(state, status)
        finish_wandb(loggers, exit_code=0 if status == "completed" else 1)
    return results


def _checkpoints_on(cfg: DictConfig) -> bool:
    node = cfg.get("checkpoint")
    return bool(node and node.get("enabled", True))


def _hydra_fields(info: Dict[str, Any]) -> Dict[str, Any]:
    return {k: info[k] for k in ("choices", "overrides", "swept", "sweep", "device") if k in info}


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
    best = best_entry(solver.history, problem.metric_modes)
    return {
        **final,
        "final": final,
        "best": best,
        "train_time_s": train_time,
        "wall_time_s": wall_time,
        "warmup_s": solver.warmup_s,
        "steps": solver.steps,
        "train_loss": {"first": solver.first_loss, "last": solver.last_loss},
        # A classical solver's unknowns are its degrees of freedom.
        "params": field.num_params if getattr(field, "classical", False) else sum(p.numel() for p in field.parameters()),
        "iterations_per_s": solver.steps / train_time if train_time > 0 else math.nan,
        "peak_memory_gb": peak_memory_gb(),
        "metric_modes": dict(problem.metric_modes),
        "time_to_target": solver.time_to_target,
        "pde": type(problem).__name__,
        "published": dict(getattr(problem, "published", None) or {}),
        "model": type(field).__name__,
        "classical": bool(getattr(field, "classical", False)),
        "history": solver.history,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def peak_memory_gb() -> float:
    """The process's peak resident memory so far, in GB (10⁹ bytes; NaN where the platform has
    no ``resource`` module). Linux reports ru_maxrss in KiB, macOS in bytes."""
    try:
        import resource
    except ImportError:  # Windows
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024) / 1e9


def best_entry(history: List[Dict[str, float]], modes: Dict[str, str]) -> Dict[str, float]:
    """All metrics at the validation where the primary metric (the first) was best, with its
    ``step``: the parts of a total (the cloth's energies) stay the parts of that total."""
    primary = next(iter(modes), None)
    valid = [h for h in history if primary is not None and not math.isnan(h.get(primary, math.nan))]
    if not valid:
        return {name: math.nan for name in modes}
    pick = (max if modes[primary] == "max" else min)(valid, key=lambda h: h[primary])
    return {**{name: pick.get(name, math.nan) for name in modes}, "step": pick["step"]}


def write_outputs(results: Dict[str, Any], problem: Problem, field: torch.nn.Module,
                  output_dir: str, loggers: List[Any]) -> None:
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(jsonable(results), f, indent=2)
    with torch.enable_grad():
        figures = problem.pictures(field)
        for path in problem.save(field, output_dir):
            log.info("wrote %s", path)
    pictures = []
    for name, fig in figures.items():
        pictures.append(os.path.join(output_dir, f"{name}.png"))
        fig.savefig(pictures[-1], dpi=100, bbox_inches="tight")
    log_results(loggers, results, pictures)
    scores = " · ".join(f"{k} {results[k]:.4g}" if isinstance(results[k], float) else f"{k} {results[k]}"
                        for k in results["final"])
    log.info("%s · %d steps, %.1f s of training → %s", scores, results["steps"], results["train_time_s"],
             os.path.join(os.path.relpath(output_dir), "metrics.json"))


def write_failure(output_dir: str, cfg: DictConfig, error: BaseException, solver: Optional[Solver],
                  info: Dict[str, Any]) -> None:
    """``metrics.json`` of a run that raised: the error, and what it had done until then."""
    record = {
        "status": "failed",
        "error": f"{type(error).__name__}: {error}",
        "traceback": traceback.format_exc(),
        "steps": solver.steps if solver is not None else 0,
        "history": solver.history if solver is not None else [],
        "metric_modes": dict(solver.problem.metric_modes) if solver is not None else {},
        "config": _container(cfg),
        **_hydra_fields(info),
    }
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(jsonable(record), f, indent=2)


def _container(cfg: DictConfig) -> Dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # the failure may be the config itself
        return OmegaConf.to_container(cfg, resolve=False)


def _hydra_output_dir() -> Optional[str]:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None


def jsonable(obj: Any) -> Any:
    """Strict JSON: NaN -> null, ±inf -> "inf" / "-inf", tensors -> lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj
