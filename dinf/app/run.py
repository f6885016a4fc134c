"""Build a run from a composed config, train it, and write its results.

``train(cfg, output_dir)`` is what ``train.py`` calls and what tests call directly.
"""
from __future__ import annotations

import copy
import inspect
import json
import logging
import math
import os
import re
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from dinf.app import cli
from dinf.app.checkpoint import CheckpointAtValidation, RunState, attach, begin, finish
from dinf.app.adaptation import adaptation
from dinf.app.indicator import RunIndicator
from dinf.app.vtk import export_run, writable
from dinf.app.module import FieldModule
from dinf.app.progress import ValidationLines, quiet_third_parties, want_progress_bar
from dinf.app.tracking import build_loggers, finish_wandb, log_config, log_results, run_info
from dinf.app.uncertainty import uncertainty
from dinf.errors import ConfigError
from dinf.fields.base import innermost
from dinf.fields.interpolant import Interpolant
from dinf.fields.mapped import MappedField
from dinf.fields.split import SplitField
from dinf.fields.warped import WarpedField, focus_axes
from dinf.pdes.base import Problem
from dinf.solvers.auto import Auto
from dinf.solvers.base import GradientSolver, Solver
from dinf.solvers.classical.base import ClassicalSolver
from dinf.solvers.cycled import CycledGrid
from dinf.solvers.moving_grid import MovingGrid, identity_maps

log = logging.getLogger(__name__)


# Keys of a model file that are not its class's options: Adam's learning rate for this model
# (solver.optim.lr reads it), whether a problem's exact conditions apply to it, its grading.
MODEL_RUN_KEYS = ("lr", "exact_conditions", "focus", "periodic")
# Keys of a solver file that are not its class's options: marching in time windows wraps the solver.
SOLVER_RUN_KEYS = ("windows", "overlap")


def build(cfg: DictConfig) -> Tuple[Problem, torch.nn.Module, Solver]:
    """The problem, the field and the solver of a config, the solver checked against both; bad
    values raise ``ConfigError`` naming the key."""
    solver = _instantiate(cfg, "solver", skip=SOLVER_RUN_KEYS)
    if isinstance(solver, ClassicalSolver):  # it imposes the conditions as stated: no field's exact ansatz
        with open_dict(cfg):
            cfg.model.exact_conditions = False
    problem = _instantiate(cfg, "pde", skip=("best",))  # best: read by the other groups, not the problem
    if isinstance(solver, ClassicalSolver):  # its own field, in the problem's coordinates
        field = solver.result_field()
        _check(cfg, solver, "solver", field, problem)
        log.info("solver: %s (its solution is the field; the model group is not used)", solver.name)
        return problem, field, solver
    _focus_or_adapt(cfg)
    field = _field(cfg, problem)
    moving = _moving_axes(cfg, problem, field)
    if moving:
        field = WarpedField(field, identity_maps(problem.bounds, moving))
        check_order(field, problem.jet_order, "grid.adapt")
    path, why = "solver", ""
    if isinstance(solver, Auto):
        solver, name, why = solver.choose(field, problem,
                                          lambda name: _instantiate(cfg, f"solver.{name}", skip=SOLVER_RUN_KEYS))
        path, why = f"solver.{name}", f", since {why} (solver=auto; solver=adam forces the paper's training)"
    wkey, okey = _march_key(cfg, path, "windows"), _march_key(cfg, path, "overlap")
    windows, overlap = OmegaConf.select(cfg, wkey, default=None), OmegaConf.select(cfg, okey, default=0)
    if windows is None and overlap:
        raise _user_key(cfg, ConfigError(okey, "is for time windows: set solver.windows too, "
                                         "or remove the overlap")) from None
    if windows is not None:
        try:
            field, solver = _march(cfg, problem, solver, windows, wkey, overlap or 0.0, okey)
        except ConfigError as e:
            raise _user_key(cfg, e) from None
    if moving and not CycledGrid.wraps(solver) and cli.from_best(cfg, "grid.adapt"):  # the problem's default, not asked for
        log.info("grid.adapt: %s (this problem's default) moves cells between solves; %s trains the grid as it "
                 "is (solver=gauss_newton or least_squares moves it)", cfg.grid.adapt, solver.name)
        field, moving = field.inner, []
    if moving:
        if windows is not None:
            raise ConfigError("grid.adapt", "moves one grid's cells; time windows (solver.windows) have a grid "
                                            "each: remove one of the two")
        solver = _moving_grid(cfg, problem, field, solver, moving)
        if cfg.grid.adapt == "rh":  # the moved grid's cells split next
            field, solver = _refining_grid(cfg, problem, field, solver, False)
    elif (cfg.get("grid") or {}).get("adapt") == "h":
        if not CycledGrid.wraps(solver) and cli.from_best(cfg, "grid.adapt"):  # the problem's default, not asked for
            log.info("grid.adapt: h (this problem's default) splits cells between solves; %s trains the grid as it "
                     "is (solver=gauss_newton or least_squares splits them)", solver.name)
        else:
            field, solver = _refining_grid(cfg, problem, field, solver, windows is not None)
    _check(cfg, solver, path, field, problem)  # auto's pick again: its optimizer is tried on the field too
    log.info("solver: %s%s", solver.name, why)
    return problem, field, solver


def _focus_or_adapt(cfg: DictConfig) -> None:
    """A hand-set grading (``grid.focus``) and a moving grid (``grid.adapt``) exclude each other:
    the one the user wrote wins over the problem's default (its ``best:`` block), a problem whose
    default holds both keeps its measured focus (``grid.focus=null`` moves the cells instead), and
    both written is refused. A refined grid (``h``) splits graded cells as it splits even ones:
    the focus stays."""
    grid = cfg.get("grid")
    if grid is None or grid.get("adapt") in (None, "h") or not cfg.model.get("focus"):
        return
    adapt_default, focus_default = cli.from_best(cfg, "grid.adapt"), cli.from_best(cfg, "grid.focus")
    if not adapt_default and not focus_default:
        raise ConfigError("grid.adapt", "moves the cells to the error itself, and grid.focus grades them by hand: "
                                        "remove one of the two (grid.focus=null)")
    with open_dict(cfg):
        if adapt_default:
            cfg.grid.adapt = None
            log.info("grid.focus grades the cells by hand; grid.focus=null moves them to the error instead "
                     "(grid.adapt: r)")
        else:
            cfg.grid.focus = None
            cfg.model.focus = None
            log.info("grid.adapt: r moves the cells to the error, in place of the problem's grid.focus")


def _moving_axes(cfg: DictConfig, problem: Problem, field: torch.nn.Module) -> List[int]:
    """The axes a moving grid remaps (``grid.adapt: r``; none without it), after the one-line
    refusals of what it cannot move."""
    grid = cfg.get("grid") or {}
    mode = grid.get("adapt")
    if mode is None:
        return []
    if mode not in ("r", "h", "rh"):
        raise ConfigError("grid.adapt", f"unknown {mode!r}; write r (cells that move to the error), h (cells split "
                                        "where it is), rh (moved, then split) or null")
    inner = innermost(field)
    if not getattr(inner, "has_basis", False) or getattr(inner, "resolution_per_axis", None) is None:
        if cli.from_best(cfg, "grid.adapt"):  # the problem's default, not asked for
            log.info("grid.adapt: %s (this problem's default) is for the grid models; %s keeps its own points "
                     "(solver.resample=rar_d adapts them)", mode, type(inner).__name__)
            with open_dict(cfg):
                cfg.grid.adapt = None
            return []
        if mode != "r":
            raise ConfigError("grid.adapt", f"{mode} adds finer levels to a ∂∞-Grid (model=dinf), not to "
                                            f"{type(inner).__name__}: remove grid.adapt (solver.resample=rar_d adapts "
                                            "a model's points instead)")
        raise ConfigError("grid.adapt", f"moves a grid's cells, and {type(inner).__name__} has none: remove "
                                        "grid.adapt (solver.resample=rar_d adapts its points instead)")
    if getattr(problem, "own_axes", None) or not hasattr(problem, "equations"):
        raise ConfigError("grid.adapt", f"needs one field over a problem stated in a config file, whose residuals "
                                        f"the error indicator reads; {getattr(problem, 'name', None) or type(problem).__name__} "
                                        "is not: remove grid.adapt")
    if mode == "h":
        return []  # no cell moves: _refining_grid splits them
    coords, periodic = list(problem.coords), set(_periodic_axes(cfg.model.get("periodic"), problem))
    names = (grid.get("moving") or {}).get("axes")
    if names is None:
        names = [c for i, c in enumerate(coords) if c != getattr(problem, "time", None) and i not in periodic]
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in coords:
            raise ConfigError("grid.moving.axes", f"{name!r} is not a coordinate of this problem; its coordinates "
                                                  f"are {coords}")
        if coords.index(name) in periodic:
            raise ConfigError("grid.moving.axes", f"{name} is periodic (grid.periodic), and moved cells would not "
                                                  "wrap: leave it out")
    if not names:
        raise ConfigError("grid.moving.axes", "no coordinate to move; name one (as [x])")
    return [coords.index(n) for n in names]


def _moving_grid(cfg: DictConfig, problem: Problem, field: WarpedField, solver: Solver, axes: List[int]) -> Solver:
    """``solver`` wrapped in ``MovingGrid`` with ``grid.moving``'s options; its coarse estimate
    (``coarsen`` > 1) on the model with every axis' cells divided by ``coarsen`` where they divide
    (the moved axes' must)."""
    options = OmegaConf.to_container(cfg.grid.moving, resolve=True) if cfg.grid.get("moving") else {}
    options.pop("axes", None)
    coarsen = int(options.pop("coarsen", 1))
    if coarsen < 1:
        raise ConfigError("grid.moving.coarsen", f"must be >= 1 (1: no coarse estimate), got {coarsen}")
    coarse: Optional[Callable[[], WarpedField]] = None
    if coarsen > 1:
        cells = list(innermost(field).resolution_per_axis)
        coords = problem.coords
        for a in axes:
            if cells[a] % coarsen or cells[a] // coarsen < 2:
                raise ConfigError("grid.moving.coarsen", f"{coarsen} does not divide the {cells[a]} cells along "
                                                         f"{coords[a]} into at least 2; take a divisor, or 1")
        # Every axis coarsened where it divides (the estimate only finds where the features are).
        resolution = [n // coarsen if n % coarsen == 0 and n // coarsen >= 2 else n for n in cells]
        small = copy.deepcopy(cfg)
        with open_dict(small):
            small.model.resolution = resolution

        def coarse_field() -> WarpedField:
            inner = _field(small, problem, focus={}, announce=False)
            return WarpedField(inner, identity_maps(problem.bounds, axes))

        coarse = coarse_field
    return MovingGrid(solver, field, problem, axes, coarse, coarsen=coarsen, **options)


def _refining_grid(cfg: DictConfig, problem: Problem, field: torch.nn.Module, solver: Solver,
                   windows: bool) -> Tuple[torch.nn.Module, Solver]:
    """The grid inside a ``RefinedField`` and ``solver`` wrapped in ``RefiningGrid`` with
    ``grid.refine``'s options, after the one-line refusals of what a refined grid cannot take."""
    from dinf.fields.dinf_grid import DInfGrid
    from dinf.fields.refined import RefinedField
    from dinf.solvers.refining_grid import RefiningGrid

    inner = innermost(field)
    if not isinstance(inner, DInfGrid):
        raise ConfigError("grid.adapt", f"h adds finer levels to a ∂∞-Grid (model=dinf), not to "
                                        f"{type(inner).__name__}; grid.adapt=r moves a grid's cells instead")
    if windows:
        raise ConfigError("grid.adapt", "refines one grid; time windows (solver.windows) have a grid each: remove "
                                        "one of the two")
    if inner.edge != "pad":
        raise ConfigError("grid.adapt", f"h takes model.edge=pad (the ghost nodes a finer level reads), not "
                                        f"{inner.edge}")
    options = OmegaConf.to_container(cfg.grid.refine, resolve=True) if cfg.grid.get("refine") else {}
    # The finer levels go next to the grid, inside its coordinate maps (a box, a grading): their
    # cells split the grid's own.
    holder = field
    while isinstance(holder, (WarpedField, MappedField)) and holder.inner is not inner:
        holder = holder.inner
    if holder is inner:
        field = RefinedField(field)
    else:
        holder.inner = RefinedField(inner)
    return field, RefiningGrid(solver, field, problem, **options)


def _march_key(cfg: DictConfig, path: str, name: str) -> str:
    """Where a marching option is read: solver=auto's own (``solver.windows``), where set, marches
    whichever solver it chose; else the chosen solver's file (``path``, its ``pde.best`` default)."""
    own = f"solver.{name}"
    return own if path != "solver" and OmegaConf.select(cfg, own, default=None) not in (None, 0) else f"{path}.{name}"


def _march(cfg: DictConfig, problem: Problem, solver: Solver, spec: Any, key: str, overlap: float = 0.0,
           okey: str = "solver.overlap") -> Tuple[torch.nn.Module, Solver]:
    """One field per time window of ``spec`` (a count or the edges; set at ``key``), shown as one
    ``WindowedField``, and ``solver`` applied window after window (``Marching``), each window
    solved ``overlap`` of its length further (set at ``okey``)."""
    from dinf.fields.windowed import WindowedField
    from dinf.pdes.windows import time_axis, window_edges, window_ends, window_problems
    from dinf.solvers.marching import Marching

    if not hasattr(problem, "options"):
        raise ConfigError(key, f"windows need a problem stated in a config file, not {type(problem).__name__}")
    axis, lo, hi = time_axis(problem, key)
    edges = window_edges(spec, lo, hi, key)
    ends = window_ends(edges, overlap, okey)
    problems, handovers = window_problems(problem, problem.options, edges, key, ends)
    focus = cfg.model.get("focus")
    focus = OmegaConf.to_container(focus, resolve=True) if focus else {}
    fields = []
    for p, a, b in zip(problems, edges[:-1], ends):
        # A grading in time grades the window that holds its focus (the others stay uniform in time).
        own = {c: f for c, f in focus.items()
               if c != problem.time or not isinstance(f, dict) or a <= float(f.get("at", (lo + hi) / 2)) <= b}
        fields.append(_field(cfg, p, own, announce=False))
    log.info("time windows: %d, edges %s%s; a %s on each, %s parameters in all", len(fields),
             ", ".join(f"{e:g}" for e in edges), f" (each solved {overlap:g} of its length further)" if overlap else "",
             type(innermost(fields[0])).__name__,
             f"{sum(f.num_params for f in fields):,}")
    # Each window's exact conditions act inside the windowed field, so the run's problem sees the
    # solution itself and must not apply its own (whole-interval) ones again.
    exact = [p.hard for p in problems]
    problem.hard = None
    return WindowedField(fields, edges, axis, exact), Marching(solver, problems, handovers)


def _field(cfg: DictConfig, problem: Problem, focus: Optional[Dict[str, Any]] = None,
           announce: bool = True) -> torch.nn.Module:
    """The model of ``cfg`` on the problem's box (and graded where ``model.focus``, or ``focus``
    when given, says); ``announce``: log its kind and size."""
    periodic = _periodic_axes(cfg.model.get("periodic"), problem)
    if getattr(problem, "own_axes", None):
        return _split_field(cfg, problem, periodic, announce)
    field = _instantiate(cfg, "model", skip=MODEL_RUN_KEYS, **({"periodic": periodic} if periodic else {}))
    for key in ("in_dim", "out_dim"):
        if getattr(field, key) != getattr(problem, key):
            raise ConfigError(f"model.{key}", f"{getattr(field, key)} does not match pde.{key}={getattr(problem, key)}")
    if field.smooth_order is not None and problem.jet_order > field.smooth_order:
        log.warning("%s has zero derivatives of order %d almost everywhere (inside its cells), and this problem's "
                    "loss needs order %d: it cannot represent the residual and will score near 100 %%; model=dinf is "
                    "the smooth grid", type(field).__name__, field.smooth_order + 1, problem.jet_order)
    if announce:
        log.info("model: %s, %s parameters", type(field).__name__, f"{sum(p.numel() for p in field.parameters()):,}")
    if problem.bounds is not None and any(tuple(b) != (-1.0, 1.0) for b in problem.bounds):
        field = MappedField(field, problem.bounds)  # fields live on [-1, 1]^d; the problem's box maps onto it
    focus = cfg.model.get("focus") if focus is None else focus
    if focus:
        if "spacing" not in inspect.signature(problem.sample).parameters:
            raise ConfigError("grid.focus", f"needs a problem stated in a config file; {type(problem).__name__} "
                              "draws its own points")
        focus = OmegaConf.to_container(focus, resolve=True) if isinstance(focus, DictConfig) else focus
        wrapped = [c for c in focus if c in (cfg.model.get("periodic") or [])]
        if wrapped:
            raise ConfigError("grid.focus", f"grades {wrapped[0]}, which grid.periodic wraps: a graded axis is not "
                                            "periodic; remove one of the two")
        field = WarpedField(field, focus_axes(focus, problem.coords,
                                              problem.bounds))
    check_order(field, problem.jet_order)
    return field


def _split_field(cfg: DictConfig, problem: Problem, periodic: List[int], announce: bool) -> torch.nn.Module:
    """The model of ``cfg`` for the unknowns over every coordinate, and one over its own axes for
    each of ``pde.coefficients`` (with its ``model`` overrides), as one ``SplitField``."""
    if cfg.model.get("focus"):
        raise ConfigError("grid.focus", "grades one field; pde.coefficients splits the unknowns into fields on "
                                        "their own axes: remove grid.focus")
    coefficients = problem.own_axes
    d = problem.in_dim
    groups = [(list(range(d)), [c for u in problem.unknowns.names if u not in coefficients
                                for c in problem.unknowns.channels[u]], {})]
    groups += [(spec["axes"], list(problem.unknowns.channels[u]), spec["model"]) for u, spec in coefficients.items()]
    resolution = cfg.model.get("resolution")
    resolution = OmegaConf.to_container(resolution, resolve=True) if OmegaConf.is_config(resolution) else resolution
    parts, axes, channels = [], [], []
    for ax, ch, overrides in groups:
        if not ch:
            continue  # every unknown has its own axes
        options: Dict[str, Any] = {"in_dim": len(ax), "out_dim": len(ch)}
        if isinstance(resolution, list) and len(resolution) == d:
            options["resolution"] = [int(resolution[a]) for a in ax]
        own = [ax.index(a) for a in periodic if a in ax]
        if own:
            options["periodic"] = own
        options.update(overrides)
        part = _instantiate(cfg, "model", skip=MODEL_RUN_KEYS, **options)
        bounds = [problem.bounds[a] for a in ax] if problem.bounds is not None else None
        if bounds is not None and any(tuple(b) != (-1.0, 1.0) for b in bounds):
            part = MappedField(part, bounds)
        parts.append(part)
        axes.append(ax)
        channels.append(ch)
    offset = [0.0] * problem.out_dim
    for u, spec in coefficients.items():
        offset[problem.unknowns.channels[u][0]] = spec["init"]
    field = SplitField(parts, axes, channels, d, offset)
    if announce:
        coords = problem.coords
        log.info("model: %s", "; ".join(
            f"{type(innermost(p)).__name__} over {', '.join(coords[a] for a in ax)} for "
            f"{', '.join(problem.unknowns.channel_names()[c] for c in ch)}, {p.num_params:,} parameters"
            for p, ax, ch in zip(parts, axes, channels)))
    check_order(field, problem.jet_order)
    return field


def _periodic_axes(names: Any, problem: Problem) -> List[int]:
    """The axis indices of the coordinates ``names`` (``grid.periodic``) that the grid wraps."""
    if not names:
        return []
    names = [names] if isinstance(names, str) else list(names)
    coords = list(getattr(problem, "coords", None) or [])
    for name in names:
        if name not in coords:
            raise ConfigError("grid.periodic", f"{name!r} is not a coordinate of this problem; its coordinates are "
                                               f"{coords or 'unnamed'}")
    return [coords.index(name) for name in names]


def check_order(field: torch.nn.Module, order: int, graded: str = "grid.focus") -> None:
    """Refuse, in one line, a problem whose equations need derivatives the field cannot give
    (``graded``: the key that graded the field, where the grading limits them)."""
    limit = field.max_order
    if limit is None or order <= limit:
        return
    inner = innermost(field)
    if isinstance(field, WarpedField) and (inner.max_order is None or inner.max_order >= order):
        raise ConfigError(graded, f"the equations need derivatives of order {order}, and a graded grid gives "
                                  f"up to order {limit}: remove {graded}")
    fix = ("kernel=gaussian (any order) with decoder=linear" if getattr(inner, "has_basis", False)
           else "model=dinf, siren or mlp (any order)")
    raise ConfigError("model", f"the equations need derivatives of order {order}; {type(inner).__name__} with these "
                               f"settings gives up to order {limit}: use {fix}")


def _check(cfg: DictConfig, solver: Solver, path: str, field: torch.nn.Module, problem: Problem) -> None:
    """``solver.check``; an error about one of the solver's own options (``optim.lr``) is
    reported under ``path`` and then under the key the user set (``model.lr``)."""
    try:
        solver.check(field, problem)
    except ConfigError as e:
        raise _user_key(cfg, e.prefixed(path) if e.key.startswith("optim") else e) from None
    reg = getattr(problem, "regularization", None)
    if reg is not None and reg.auto and not getattr(solver, "reweighs", False):
        # Not refused: a comparison across models (-m model=dinf,siren) should run every model.
        log.warning("pde.regularization.weight: %s is chosen between Gauss-Newton solves; %s keeps the "
                    "first weight, %g (pde.regularization.init; give a number to set it)", reg.mode, solver.name,
                    reg.weight)


def _instantiate(cfg: DictConfig, path: str, skip: Iterable[str] = (), **kwargs: Any) -> Any:
    """Build the object at ``path`` of ``cfg`` (without its keys ``skip``). A bad value raises
    ``ConfigError`` under the key the user sets (``kernel.eps``, not the interpolated
    ``model.eps``); an option the class does not take names its nearest valid option."""
    node = OmegaConf.select(cfg, path)
    mistake = _check_types(node, path, skip=set(kwargs) | set(skip))
    if mistake is not None:
        raise _user_key(cfg, mistake)
    spec = node
    if skip:
        spec = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in skip}
    try:
        return instantiate(spec, _convert_="all", **kwargs)
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
    folder (see ``dinf.app.checkpoint``). A run that raises leaves ``metrics.json`` with
    ``status: failed`` and the error, then re-raises.
    """
    output_dir = output_dir or _hydra_output_dir() or os.getcwd()
    os.makedirs(output_dir, exist_ok=True)
    info = run_info()
    rank = rank_zero_only.rank  # the other ranks of a DDP run are started by rank 0's fit
    state = begin(cfg, output_dir) if rank == 0 else attach(output_dir)
    module: Optional[FieldModule] = None
    loggers: List[Any] = []
    status = "interrupted"
    try:
        cli.check_run_config(cfg)
        quiet_third_parties()
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        if rank == 0 and not os.path.isfile(os.path.join(state.output_dir, ".hydra", "config.yaml")):
            # What python -m dinf.export rebuilds the run from (Hydra writes it for train.py's runs).
            OmegaConf.save(cfg, os.path.join(state.output_dir, "config.yaml"))
        problem, field, solver = build(cfg)
        indicator = RunIndicator(bool(cfg.get("indicator", True)), problem, field)
        module = FieldModule(field, problem, solver, seed=cfg.seed)
        loggers = build_loggers(cfg, state.output_dir, state, info)
        log_config(loggers, cfg, problem.metric_modes, info)
        trainer = _trainer(cfg, solver, state, loggers)
        wall = time.perf_counter()
        trainer.fit(module, ckpt_path=state.checkpoint if state.attempts > 1 else None)
        if isinstance(solver, ClassicalSolver) and not field.filled:
            # Resumed after its solves (killed, or failed in its outputs): no checkpoint holds a
            # classical solution, and its solve is deterministic: solve again to the finest size.
            for _ in range(getattr(solver, "refinements", 1)):
                solver.solve(field, problem)
        if not trainer.is_global_zero:
            status = "completed"
            return {}
        results = summarize(cfg, module, wall_time=time.perf_counter() - wall)
        results.update(status="completed", attempts=state.attempts, **_hydra_fields(info))
        spread, figure = uncertainty(module.solver, problem, field)  # an inverse problem's Laplace map
        results.update(spread)
        results["final"].update(spread)
        more = {"uncertainty": figure} if figure is not None else {}
        found, figures = indicator.final(field, state.output_dir)  # η per cell: indicator.npz, .png
        results.update(found)
        results["final"].update({k: v for k, v in found.items() if k == "indicator"})
        more.update(figures)
        rows, figures = adaptation(module.solver, results["history"], field, problem)  # a moving or refined grid's cycles
        results.update(rows)
        more.update(figures)
        write_outputs(results, problem, field, state.output_dir, loggers, more)
        if cfg.get("vtk", True):
            _write_vtk(problem, field, state.output_dir, module.solver)
        status = "completed"
        return results
    except Exception as e:
        status = "failed"
        if rank == 0:
            write_failure(state.output_dir, cfg, e, module, info)
        raise
    finally:
        if rank == 0:
            finish(state, status)
        finish_wandb(loggers, exit_code=0 if status == "completed" else 1)


def _trainer(cfg: DictConfig, solver: Solver, state: RunState, loggers: List[Any]) -> pl.Trainer:
    """Lightning's trainer: the solver's step count, a checkpoint at every validation (unless
    off), and a progress bar on a terminal or one line per validation in a log."""
    if isinstance(solver, GradientSolver):  # the budget that bounds it, sized to the machine by the configs
        cap = cfg.trainer.get("max_time")
        log.info("budget: %d steps%s", cfg.trainer.max_steps, f" or {cap} of training, whichever comes first "
                 "(trainer.max_steps, trainer.max_time)" if cap else " (trainer.max_steps)")
    callbacks: List[Any] = [CheckpointAtValidation(state.checkpoint)] if _checkpoints_on(cfg) else []
    bar = want_progress_bar(cfg.trainer.get("enable_progress_bar"))
    if not bar:
        callbacks.append(ValidationLines())
    return _instantiate(cfg, "trainer", logger=loggers or False, default_root_dir=state.output_dir,
                        callbacks=callbacks, enable_progress_bar=bar, **solver.trainer_steps(cfg.trainer))


def _checkpoints_on(cfg: DictConfig) -> bool:
    node = cfg.get("checkpoint")
    return bool(node and node.get("enabled", True))


def _hydra_fields(info: Dict[str, Any]) -> Dict[str, Any]:
    return {k: info[k] for k in ("choices", "overrides", "swept", "sweep", "device") if k in info}


def summarize(cfg: DictConfig, module: FieldModule, wall_time: float) -> Dict[str, Any]:
    solver, problem, field = module, module.problem, module.field
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
        "params": field.unknowns if isinstance(field, Interpolant) else sum(p.numel() for p in field.parameters()),
        "iterations_per_s": solver.steps / train_time if train_time > 0 else math.nan,
        "peak_memory_gb": peak_memory_gb(),
        "metric_modes": dict(problem.metric_modes),
        "time_to_target": solver.time_to_target,
        "pde": type(problem).__name__,
        "published": dict(problem.published or {}),
        "model": type(module.solver if isinstance(field, Interpolant) else field).__name__,
        "solver": module.solver.name,
        "classical": isinstance(module.solver, ClassicalSolver),
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


def _write_vtk(problem: Problem, field: torch.nn.Module, output_dir: str, solver: Any) -> None:
    """The solution for ParaView (``dinf.app.vtk``; a classical solver's on its mesh too), or one
    line saying why not."""
    why = writable(problem)
    if why is not None:
        log.info("vtk: not written: %s", why)
        return
    start = time.perf_counter()
    paths, mesh = export_run(problem, field, solver, output_dir)
    on_mesh = [p for p in paths if p.endswith((".vtu", "_mesh.pvd"))]  # a mesh file's domain: on its mesh too
    images = [p for p in paths if p not in on_mesh]
    log.info("vtk: %s%s%s (ParaView; %d file(s), %.1f s; python -m dinf.export <run> --resolution N samples it again)",
             os.path.relpath(images[-1]), f", on the domain's mesh {os.path.relpath(on_mesh[-1])}" if on_mesh else "",
             f", on its mesh {os.path.relpath(mesh)}" if mesh else "",
             len(paths) + bool(mesh), time.perf_counter() - start)


def write_outputs(results: Dict[str, Any], problem: Problem, field: torch.nn.Module,
                  output_dir: str, loggers: List[Any], more: Optional[Dict[str, Any]] = None) -> None:
    """``metrics.json``, the problem's pictures (and ``more`` figures by name), the loggers."""
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(jsonable(results), f, indent=2)
    with torch.enable_grad():
        figures = {**problem.pictures(field), **(more or {})}
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


def write_failure(output_dir: str, cfg: DictConfig, error: BaseException, solver: Optional[FieldModule],
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
