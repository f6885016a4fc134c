"""A time-dependent problem cut into time windows, solved one after another (``solver.windows``).

Window ``k`` is the same problem on ``[t_k, t_{k+1}]``. The first keeps the problem's initial
conditions (exact ones too); each later one starts from the previous window's solution: its
``initial`` (and ``initial_rate``) values become ``Handover`` tables, which evaluate the previous
window's solution at ``t_k``, as soft conditions (an exact one would need the table's
derivatives in space). Exact conditions on the box's faces stay exact in every window. The
tables are filled in (``Handover.source``) once the previous window is solved, so the window
problems are built once, before any solve. With an overlap (``solver.overlap``, ``window_ends``)
window ``k``'s problem runs past ``t_{k+1}``, so the hand-over is read inside its solved interval.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from dinf.equations.tables import Table
from dinf.errors import ConfigError
from dinf.jet import Jet
from dinf.pdes.conditions.base import read_targets

KEY = "solver.windows"
HANDED_OVER = ("initial", "initial_rate")  # condition types whose values the previous window gives


def time_axis(problem: Any, key: str = KEY) -> Tuple[int, float, float]:
    """The problem's time axis and its interval; one line if it has none."""
    if problem.time is None:
        raise ConfigError(key, f"{problem.name} has no time axis (pde.domain.time): windows are for time-dependent "
                          "problems; remove the windows")
    axis = list(problem.coords).index(problem.time)
    return axis, float(problem.bounds[axis][0]), float(problem.bounds[axis][1])


def window_edges(spec: Any, t0: float, t1: float, key: str = KEY) -> List[float]:
    """The window edges from ``spec``: a count of equal windows, or the edges themselves
    (increasing, from ``t0`` to ``t1``)."""
    if isinstance(spec, (ListConfig, DictConfig)):
        spec = OmegaConf.to_container(spec, resolve=True)
    if isinstance(spec, bool) or not isinstance(spec, (int, list, tuple)):
        raise ConfigError(key, f"give a number of equal windows (4) or their edges ([{t0:g}, …, {t1:g}]), got {spec!r}")
    if isinstance(spec, int):
        if spec < 1:
            raise ConfigError(key, f"must be >= 1 window, got {spec}")
        return [t0 + (t1 - t0) * k / spec for k in range(spec)] + [t1]
    try:
        edges = [float(e) for e in spec]
    except (TypeError, ValueError):
        raise ConfigError(key, f"edges must be numbers, got {spec!r}") from None
    tiles = (len(edges) >= 2 and abs(edges[0] - t0) <= 1e-12 * max(1.0, abs(t0))
             and abs(edges[-1] - t1) <= 1e-12 * max(1.0, abs(t1)) and all(a < b for a, b in zip(edges, edges[1:])))
    if not tiles:
        raise ConfigError(key, f"the edges {edges} do not tile the time interval [{t0:g}, {t1:g}]: give increasing "
                          f"edges from {t0:g} to {t1:g}")
    edges[0], edges[-1] = t0, t1
    return edges


class Handover(Table):
    """The previous window's solution (or its time derivative, ``rate``) at ``t = at``, as a
    function of the space coordinates: a later window's initial value."""

    def __init__(self, space: Sequence[str], coords: Sequence[str], time: str, at: float, channel: int,
                 rate: bool = False):
        super().__init__(space)
        self.coords, self.time, self.at, self.channel, self.rate = list(coords), time, float(at), channel, rate
        self.source: Optional[Callable[[Tensor, int], Jet]] = None  # (points, order) -> the solved window's jet

    def lookup(self, coords: Sequence[Tensor]) -> Tensor:
        if self.source is None:
            raise RuntimeError("a window's initial value was read before the previous window was solved")
        by_name = dict(zip(self.axes, coords))
        like = coords[0].double()
        x = torch.stack([by_name[c].double() if c != self.time else torch.full_like(like, self.at)
                         for c in self.coords], 1)
        jet = self.source(x, 1 if self.rate else 0)
        if self.rate:
            return jet.grad[:, self.channel, self.coords.index(self.time)].detach().double()
        return jet.value[:, self.channel].detach().double()


def window_ends(edges: Sequence[float], overlap: float, key: str = KEY) -> List[float]:
    """Where each window's solve ends: its edge, or ``overlap`` of its length past it (not past
    the last edge), so the next window's initial value is read inside the solved interval rather
    than at its free end, where a space-time fit is one-sided."""
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0 <= overlap <= 1:
        raise ConfigError(key, f"give a fraction of a window's length in [0, 1] (0.5), got {overlap!r}")
    last = edges[-1]
    return [min(b + overlap * (b - a), last) for a, b in zip(edges[:-1], edges[1:])]


def window_problems(problem: Any, spec: Mapping[str, Any], edges: Sequence[float],
                    key: str = KEY, ends: Optional[Sequence[float]] = None) -> Tuple[list, List[List[Handover]]]:
    """The problem on each window, and each window's ``Handover`` tables (none for the first).
    ``spec`` holds the problem's own constructor options; ``key`` is where the windows were set;
    ``ends[k]`` where window ``k``'s problem ends (default its edge: ``window_ends``)."""
    time, coords = problem.time, list(problem.coords)
    space = [c for c in coords if c != time]
    _check_windowable(problem, spec, key)
    ends = list(edges[1:]) if ends is None else list(ends)
    problems, handovers = [], []
    for k, (a, b) in enumerate(zip(edges[:-1], ends)):
        options = copy.deepcopy(dict(spec))
        domain = dict(options["domain"])
        domain["time"] = {time: [a, b]}
        options["domain"] = domain
        tables: List[Handover] = []
        if k > 0:
            functions = dict(options.get("functions") or {})
            conditions = {}
            for name, cond in (options.get("conditions") or {}).items():
                cond = dict(cond)
                kind = cond.get("type")
                if kind in HANDED_OVER:
                    targets = read_targets(cond, problem.unknowns, f"pde.conditions.{name}", kind)
                    value = {}
                    for u in targets:
                        fname = f"start_{'rate_' if kind == 'initial_rate' else ''}{u}"
                        if fname in (spec.get("functions") or {}):
                            raise ConfigError(f"pde.functions.{fname}", f"the name {fname} is a later window's "
                                              f"initial value when marching ({key}): rename the function")
                        table = Handover(space, coords, time, a, problem.unknowns.channels[u][0], kind == "initial_rate")
                        functions[fname] = table
                        tables.append(table)
                        value[u] = fname
                    cond["value"] = value
                    cond.pop("unknown", None)
                    cond["hard"] = False  # an exact initial value needs its derivatives: the table has none
                conditions[name] = cond
            options["functions"], options["conditions"] = functions, conditions
        for drop in ("reference", "published", "targets", "evaluation"):
            options.pop(drop, None)
        options["name"] = f"{problem.name} [{a:g}, {b:g}]"
        problems.append(type(problem)(**options))
        handovers.append(tables)
    return problems, handovers


def _check_windowable(problem: Any, spec: Mapping[str, Any], key: str) -> None:
    """One line for what windows cannot carry yet."""
    time_axis(problem, key)
    if problem.unknowns.complex:
        raise ConfigError(key, "windows hand over real unknowns; this problem has complex ones")
    if len(getattr(problem, "inferred", ())):
        raise ConfigError(key, "unknown parameters are identified over the whole interval; no time windows")
    if getattr(problem, "own_axes", None):
        name = next(iter(problem.own_axes))
        raise ConfigError(key, f"pde.coefficients.{name} is one field over the whole interval; no time windows")
    conditions = spec.get("conditions") or {}
    for name, cond in conditions.items():
        kind = cond.get("type")
        if kind in ("point", "data") or (kind == "periodic" and cond.get("axis") == problem.time):
            raise ConfigError(f"pde.conditions.{name}", f"a {kind} condition in time is not carried across "
                              f"time windows yet; no {key}")
    if not any(cond.get("type") == "initial" for cond in conditions.values()):
        raise ConfigError(key, f"{problem.name} has no initial condition to hand over between windows")
