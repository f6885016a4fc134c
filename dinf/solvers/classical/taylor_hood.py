"""Taylor–Hood P2/P1 elements with SBDF2 in time for unsteady incompressible Navier–Stokes on a
rectangle stated in a config file (``solver=taylor_hood``): the method of the reference script
``experiments/references/ns2d_lt.py``, with its discretisation and stepping
(``navier_stokes.py``; see there for the scheme).

The form (read off the parsed residuals and conditions; anything else is refused in one line):
u_t + u u_x + v u_y + p_x − ν Δu = f_x, v_t + u v_x + v v_y + p_y − ν Δv = f_y, u_x + v_y = 0
in x, y, t on a box, for any names of the unknowns and coordinates, ν > 0 and forces f of the
coordinates (``pde=ns2d_lt``: f_y = −sin πx sin πy sin πt). Each face either has the velocity
given (Dirichlet conditions on both components, any expressions of x, y, t) or the do-nothing
condition of the Laplacian form as residual conditions, ν ∂u/∂n − p n = 0 (at x = x_max:
ν u_x − p = 0 and ν v_x = 0), and at least one face is of the second kind (it fixes the
pressure). The initial velocity is given; the pressure has no initial condition: at t0 the
probe gives the pressure consistent with the initial velocity and the data's acceleration
(``navier_stokes.consistent_pressure``; NS2d-LT's p(0+), up to 37.8 at the inlet, is in the
reference file).

Time: τ = (t1 − t0)/N, N = ⌈(t1 − t0)·steps⌉ rounded up to a multiple of the snapshot stride.
The dofs (u, v, p) are stored ``snapshots`` times per unit time and the probe interpolates them
in time by the cubic Lagrange polynomial through the four nearest snapshots (``snapshots.py``)
and in space by the elements (scikit-fem's probes). At a snapshot's time (the reference file's
times are) the probe gives the solve's own values. Between them, snapshots every 0.01 (the
default 100 per unit time, every 4th step at τ = 1/400) differ from the solve's own values at
the steps in between by 1.2e-5 (NS2d-LT, n = 16, u, v, p pooled over t = 0.025, 0.035, …, 4.995;
7.6e-7 with 200 per unit time), far below the solver's error; 4.4e-4 with the first two
intervals (t = 0.005, 0.015) included, where the flow starts from rest and the pressure moves by
1.7 % within the first step. ``solver.n`` may be a list (solved coarse to fine, each timed
alone) and ``solver.steps`` one number or one per mesh. The snapshots take 8·dofs bytes each:
19 MB at n = 16, 76 MB at n = 32 over t ∈ [0, 5] (``train/taylor_hood_snapshot_mb``).

Defaults (measured against the reference file on 2 shared cores, 2026-12-07): n = 16 squares
per unit length, 400 steps per unit time: L2RE 1.3e-3 in about 3 s (the reference script at the
same n and τ with the analytic p(0+): 1.33e-3; the probe's discrete p(0+) is 2.7e-4 off it).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import sympy
import torch
from torch import Tensor

from dinf.errors import ConfigError, check, require
from dinf.pdes.conditions import Dirichlet, Initial, ResidualCondition
from dinf.solvers.classical.base import ClassicalSolver
from dinf.solvers.classical.navier_stokes import FACES, Discretisation, Flow, Stepper, consistent_pressure
from dinf.solvers.classical.problem_forms import (face_of, require_box, residual_terms, same, show, targets,
                                                  terms)
from dinf.solvers.classical.snapshots import Snapshots

WHO = "solver=taylor_hood"
HINT = "it takes Navier–Stokes in x, y, t on a box (pde=ns2d_lt); try solver=mol"
BACKENDS = ("auto", "pardiso", "superlu")

Cells = Union[int, Sequence[int]]
Steps = Union[float, Sequence[float]]


def _refuse(why: str) -> ConfigError:
    return ConfigError("solver", f"{WHO}: {why}; {HINT}")


class _Function:
    """An expression of the coordinates as a numpy function of (x, y, t); a product of a space
    part and a time part keeps the space part per set of points (the steps reuse the same
    points)."""

    def __init__(self, expr: sympy.Expr, names: Sequence[str]):
        syms = {s.name: s for s in expr.free_symbols}
        self.args = [syms.get(c, sympy.Symbol(c, real=True)) for c in names]
        space, rate = self.args[:2], self.args[2]
        self.const = None if expr.free_symbols else float(expr)
        self.split: Optional[Tuple[Callable, Callable]] = None
        if self.const is None:
            xy, tt = expr.as_independent(rate, as_Add=False)
            if not (tt.free_symbols & set(space)) and xy.free_symbols - set(space) == set():
                self.split = (sympy.lambdify(self.args, xy, "numpy"), sympy.lambdify([rate], tt, "numpy"))
            self.fn = sympy.lambdify(self.args, expr, "numpy")
        self._at: Any = None
        self._space: Any = None

    def __call__(self, x: np.ndarray, y: np.ndarray, t: float) -> np.ndarray:
        if self.const is not None:
            return np.full(np.shape(x), self.const)
        if self.split is None:
            return np.broadcast_to(self.fn(x, y, t), np.shape(x)).astype(float)
        if self._at is not x:  # the space part, once per set of points
            self._at, self._space = x, np.broadcast_to(self.split[0](x, y, 0.0), np.shape(x)).astype(float)
        return self._space * float(self.split[1](t))


class NavierStokesForm:
    """The problem as ``solver=taylor_hood`` reads it: ``a``, ``b``, ``p`` (the velocity
    components along the first and second space axes and the pressure), ν, the forces, the
    walls' velocity per face, the do-nothing faces, the initial velocity, the box and the time
    interval."""

    def __init__(self, problem: Any):
        self.t0, self.t1 = require_box(problem, WHO, HINT)
        self.name, self.coords, self.time = problem.name, list(problem.coords), problem.time
        self.space = [c for c in self.coords if c != self.time]
        if (len(self.space), problem.out_dim, len(problem.residuals)) != (2, 3, 3):
            raise _refuse(f"{problem.name} has {problem.out_dim} unknowns and {len(problem.residuals)} equations "
                          f"in {len(self.space)} space axes")
        self._equations(problem)
        bounds = problem.domain.bounds.numpy()
        axes = [self.coords.index(c) for c in self.space]
        self.lo = np.array([bounds[i, 0] for i in axes])
        self.hi = np.array([bounds[i, 1] for i in axes])
        self._conditions(problem)
        self.channels = [problem.unknowns.channels[u][0] for u in (self.a, self.b, self.p)]

    def _equations(self, problem: Any) -> None:
        form = "u_t + (u·∇)u + ∇p − νΔu = f, ∇·u = 0"
        momentum: Dict[str, Tuple[str, Dict]] = {}
        continuity = None
        for rname in problem.residuals:
            d = terms(problem, rname)
            if d is None:
                raise _refuse(f"residuals.{rname} is not a polynomial in the unknowns and their derivatives")
            rates = [k[0][:-2] for k in d if len(k) == 1 and k[0].endswith("_t")]
            if len(rates) > 1 or (rates and rates[0] in momentum):
                raise _refuse(f"residuals.{rname} is not one velocity component's equation ({form})")
            if rates:
                momentum[rates[0]] = (rname, d)
            elif continuity is None:
                continuity = (rname, d)
            else:
                raise _refuse(f"{problem.name} has two equations without a time derivative ({form})")
        if len(momentum) != 2 or continuity is None:
            raise _refuse(f"{problem.name} is not two momentum equations and a continuity one ({form})")
        (p,) = [u for u in problem.unknowns.names if u not in momentum]
        along = {u: [k[0] for k in d if len(k) == 1 and k[0] in (f"{p}_x", f"{p}_y")] for u, (_, d) in momentum.items()}
        a = next((u for u, g in along.items() if g == [f"{p}_x"]), None)
        b = next((u for u, g in along.items() if g == [f"{p}_y"]), None)
        if a is None or b is None:
            raise _refuse(f"the momentum equations do not read p_x and p_y one each ({form})")
        self.a, self.b, self.p = a, b, p
        rname, d = momentum[a]
        nu = -d.get((f"{a}_xx",), sympy.Integer(0)) / d[(f"{a}_t",)]
        if nu.free_symbols or not float(nu) > 0:
            raise _refuse(f"residuals.{rname} has no −ν(u_xx + u_yy) with a constant ν > 0")
        self.nu = nu = float(nu)
        self.force: List[sympy.Expr] = []
        for w, axis in ((a, "x"), (b, "y")):
            rname, d = momentum[w]
            ct = d[(f"{w}_t",)]
            d = {k: v / ct for k, v in d.items()}
            want = {(f"{w}_t",): 1.0, tuple(sorted((a, f"{w}_x"))): 1.0, tuple(sorted((b, f"{w}_y"))): 1.0,
                    (f"{p}_{axis}",): 1.0, (f"{w}_xx",): -nu, (f"{w}_yy",): -nu}
            self.force.append(sympy.simplify(-d.pop((), sympy.Integer(0))))  # r = … − f
            self._match(rname, d, want, "u_t + (u·∇)u + ∇p − νΔu = f")
        rname, d = continuity
        c = d.get((f"{a}_x",), 0)
        if c == 0:
            raise _refuse(f"residuals.{rname} is not u_x + v_y ({form})")
        self._match(rname, {k: v / c for k, v in d.items()}, {(f"{a}_x",): 1.0, (f"{b}_y",): 1.0}, "u_x + v_y = 0")

    def _match(self, where: str, got: Dict, want: Dict, form: str) -> None:
        for k in sorted(set(got) | set(want)):
            g = got.get(k, 0)
            if getattr(g, "free_symbols", None) or not same(float(g), float(want.get(k, 0.0))):
                raise _refuse(f"{'residuals.' if '.' not in where else ''}{where} is not {form} (its {show(k)} term)")

    def _conditions(self, problem: Any) -> None:
        self.initial: Dict[str, sympy.Expr] = {}
        velocity: Dict[str, Dict[str, Tuple[int, sympy.Expr]]] = {f: {} for f in FACES}  # face → unknown → (order, g)
        natural: Dict[str, set] = {f: set() for f in FACES}  # face → do-nothing equations met ("n", "t")
        order = 0
        for c in problem.conditions:
            if isinstance(c, Initial):
                self.initial.update(targets(c))
            elif isinstance(c, Dirichlet):
                values = targets(c)
                if self.p in values:
                    raise _refuse(f"conditions.{c.name} gives the pressure on a face (it takes velocities or the "
                                  "do-nothing outlet)")
                for face in self._faces(problem, c):
                    for u, g in values.items():
                        velocity[face].setdefault(u, (order, g))
                order += 1
            elif isinstance(c, ResidualCondition):
                for face in self._faces(problem, c):
                    for r in c.residuals:
                        natural[face].add(self._do_nothing(problem, c.name, face, r))
            else:
                raise _refuse(f"conditions.{c.name} is {c.type} (it takes initial, Dirichlet and do-nothing ones)")
        missing = [u for u in (self.a, self.b) if u not in self.initial]
        if missing:
            raise _refuse(f"{self.name} has no initial value for {missing[0]}")
        self.walls: Dict[str, Tuple[int, Dict[str, sympy.Expr]]] = {}
        self.outlets: List[str] = []
        for face in FACES:
            name = self._name(face)
            given = velocity[face]
            if given and natural[face]:
                raise _refuse(f"{name} has both velocity values and a residual condition")
            if given:
                if set(given) != {self.a, self.b}:
                    raise _refuse(f"{name} gives {', '.join(sorted(given))} only: give both velocity components")
                self.walls[face] = (min(o for o, _ in given.values()), {u: g for u, (_, g) in given.items()})
            elif natural[face] == {"n", "t"}:
                self.outlets.append(face)
            else:
                raise _refuse(f"{name} needs the velocity or the do-nothing outlet ν∂u/∂n − p n = 0")
        if not self.outlets:
            raise _refuse("no face is a do-nothing outlet, so the pressure is fixed only up to a constant")

    def _name(self, face: str) -> str:
        axis, side = FACES.index(face) // 2, face.rsplit("_", 1)[1]
        return f"{self.space[axis]}_{side}"

    def _faces(self, problem: Any, c: Any) -> List[str]:
        """The condition's faces as ``x_min`` … ``y_max`` of the first and second space axes."""
        out = []
        for face in problem.domain.resolve(c.piece, f"pde.conditions.{c.name}.piece"):
            axis, side = face_of(problem, face)
            out.append(f"{'xy'[axis]}_{side}")
        return out

    def _do_nothing(self, problem: Any, name: str, face: str, r: Any) -> str:
        """Which equation of ν ∂u/∂n − p n = 0 the residual ``r`` of ``conditions.name`` is on
        ``face``: ``n`` (the normal component, ν ∂u_n/∂n − p), ``t`` (the tangential one)."""
        axis = FACES.index(face) // 2
        normal, tangent = (self.a, self.b) if axis == 0 else (self.b, self.a)
        letter = "xy"[axis]
        d = residual_terms(problem, r)
        where = f"conditions.{name}"
        if d is not None and (f"{normal}_{letter}",) in d and (self.p,) in d:
            c = d[(f"{normal}_{letter}",)]
            self._match(where, {k: v / c for k, v in d.items()}, {(f"{normal}_{letter}",): 1.0, (self.p,): -1 / self.nu},
                        "ν ∂u/∂n − p n = 0")
            return "n"
        if d is not None and (f"{tangent}_{letter}",) in d:
            c = d[(f"{tangent}_{letter}",)]
            self._match(where, {k: v / c for k, v in d.items()}, {(f"{tangent}_{letter}",): 1.0}, "ν ∂u/∂n − p n = 0")
            return "t"
        raise _refuse(f"{where} on {self._name(face)} is not the do-nothing outlet ν∂u/∂n − p n = 0")

    def flow(self) -> "ProblemFlow":
        return ProblemFlow(self)


class ProblemFlow(Flow):
    """The form's data as ``navier_stokes.Flow``: the walls' velocity (each boundary node takes
    its first condition's values), the forces, the initial velocity, and the walls' velocity's
    time derivative for the consistent initial pressure."""

    def __init__(self, form: NavierStokesForm):
        names = form.space + [form.time]
        self.nu = form.nu
        self.origin = (float(form.lo[0]), float(form.lo[1]))
        self.length, self.height = (float(v) for v in form.hi - form.lo)
        self.walls = tuple(form.walls)
        self.lo, self.hi = form.lo, form.hi
        ordered = sorted(form.walls.items(), key=lambda kv: kv[1][0])
        self._walls = [(face, [_Function(g[u], names) for u in (form.a, form.b)]) for face, (_, g) in ordered]
        t = sympy.Symbol(form.time, real=True)
        self._rates = [(face, [_Function(sympy.diff(_time_as(g[u], form.time), t), names) for u in (form.a, form.b)])
                       for face, (_, g) in ordered]
        self._force = [None if f == 0 else _Function(f, names) for f in form.force]
        self._initial = [_Function(form.initial[u], names) for u in (form.a, form.b)]
        self.t0 = form.t0
        self._owner: Any = None
        self._points: Any = None

    def _owners(self, x: np.ndarray) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per wall (in condition order), the boundary nodes of ``x`` it gives values to and
        their coordinates (the same arrays for the same ``x``: the functions keep their space
        parts per array)."""
        if self._owner is None or self._owner[0] is not x:
            free = np.ones(x.shape[1], bool)
            owners = []
            for face, _ in self._walls:
                a, side = FACES.index(face) // 2, face.rsplit("_", 1)[1]
                on = np.isclose(x[a], self.lo[a] if side == "min" else self.hi[a]) & free
                idx = np.flatnonzero(on)
                owners.append((idx, x[0, idx], x[1, idx]))
                free &= ~on
            self._owner = (x, owners)
        return self._owner[1]

    def _values(self, parts, x: np.ndarray, t: float) -> Tuple[np.ndarray, np.ndarray]:
        u, v = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        for (_, (fu, fv)), (idx, xs, ys) in zip(parts, self._owners(x)):
            u[idx], v[idx] = fu(xs, ys, t), fv(xs, ys, t)
        return u, v

    def dirichlet(self, x, t):
        return self._values(self._walls, x, t)

    def rate(self, x, t):
        return self._values(self._rates, x, t)

    def force(self, x, t):
        if self._points is None or self._points[0] is not x:  # the quadrature points: the same each step
            self._points = (x, x[0], x[1])
        _, xs, ys = self._points
        return tuple(None if f is None else f(xs, ys, t) for f in self._force)

    def initial(self, x):
        return tuple(f(x[0], x[1], self.t0) for f in self._initial)


def _time_as(expr: sympy.Expr, time: str) -> sympy.Expr:
    """``expr`` with its time symbol the plain real one ``sympy.diff`` is taken in."""
    return expr.subs({s: sympy.Symbol(time, real=True) for s in expr.free_symbols if s.name == time})


class TaylorHood(ClassicalSolver):
    """Taylor–Hood P2/P1 elements and SBDF2 for incompressible Navier–Stokes (see the module
    docstring). ``n``: squares per unit length (h = 1/n), or a list of meshes solved coarse to
    fine, each afresh and timed alone; ``steps``: time steps per unit time, one for every mesh or
    one per mesh; ``snapshots``: stored states per unit time for the probe's interpolation in
    time (at most one per step); ``backend``: the LU's, ``auto`` (PARDISO if installed, else
    SuperLU), ``pardiso`` or ``superlu``."""

    name = "Taylor–Hood elements"
    prefix = "taylor_hood"

    def __init__(self, in_dim: int = 3, out_dim: int = 3, n: Cells = 16, steps: Steps = 400.0,
                 snapshots: float = 100.0, backend: str = "auto"):
        check((int(in_dim), int(out_dim)) == (3, 3), "in_dim",
              f"{WHO} solves 3 unknowns (u, v, p) in x, y, t, got {out_dim} in {in_dim} coordinates; "
              "try solver=mol or solver=fem")
        super().__init__(in_dim, out_dim, "Taylor–Hood elements", in_dims=(3,), out_dims=(3,))
        entries = list(n) if isinstance(n, (list, tuple)) else [n]
        check(len(entries) > 0 and all(isinstance(e, int) and not isinstance(e, bool) and e >= 1 for e in entries),
              "n", f"squares per unit length are positive integers (or a list of them), got {n!r}")
        counts = list(steps) if isinstance(steps, (list, tuple)) else [steps]
        check(all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in counts) and counts,
              "steps", f"time steps per unit time are positive numbers, got {steps!r}")
        check(len(counts) in (1, len(entries)), "steps",
              f"give one number, or one per mesh in solver.n ({len(entries)}), got {len(counts)}")
        check(isinstance(snapshots, (int, float)) and not isinstance(snapshots, bool) and snapshots > 0,
              "snapshots", f"must be a positive number, got {snapshots!r}")
        check(backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
        pairs = sorted(zip(entries, counts * len(entries) if len(counts) == 1 else counts))
        self.meshes = [m for m, _ in pairs]
        self.steps = [float(s) for _, s in pairs]
        self.snapshots, self.backend = float(snapshots), backend
        self._solved = 0
        self._snaps: Optional[Snapshots] = None
        self._disc: Optional[Discretisation] = None
        self._form: Optional[NavierStokesForm] = None

    @property
    def refinements(self) -> int:
        """How many solves the run makes (one per mesh in ``n``)."""
        return len(self.meshes)

    def warm_up(self) -> None:
        """scikit-fem, the LU backend and the expression functions on a tiny flow, so the first
        solve's timing holds only its own work."""
        require("skfem", "solver", WHO, "pip install scikit-fem")
        flow = Flow()
        d = Discretisation(flow, 2)
        stepper = Stepper(flow, d, 0.05, 0.0, self.backend)
        try:
            stepper.step()
        finally:
            stepper.free()
        consistent_pressure(flow, d, 0.0, stepper.U, flow.dirichlet, self.backend)
        d.V.probes(np.array([[0.5], [0.5]]))
        _Function(sympy.sin(sympy.Symbol("x", real=True)) * sympy.Symbol("t", real=True), ["x", "y", "t"])(
            np.zeros(2), np.zeros(2), 0.0)

    def check(self, field: Any, problem: Any) -> None:
        require("skfem", "solver", WHO, "pip install scikit-fem")
        NavierStokesForm(problem)

    def _solve(self, problem: Any) -> Dict[str, Any]:
        """Mesh, factorise and march on the next mesh; returns the counts and this solve's own time
        (``time_s``: meshing, assembly, the two LUs, the initial pressure and the steps). ``loss``:
        the time step."""
        k = min(self._solved, len(self.meshes) - 1)
        n, steps = self.meshes[k], self.steps[k]
        start = time.perf_counter()
        form = NavierStokesForm(problem)
        span = form.t1 - form.t0
        count = max(1, math.ceil(span * steps - 1e-9))
        stride = max(1, int(steps / self.snapshots + 1e-9))
        count = stride * math.ceil(count / stride)
        tau, m = span / count, count // stride
        flow = form.flow()
        d = Discretisation(flow, n)
        self._snaps = None  # the last solve's states go before this one's are stored
        stepper = Stepper(flow, d, tau, form.t0, self.backend)
        try:
            p0 = consistent_pressure(flow, d, form.t0, stepper.U, flow.rate, self.backend)
            states = np.empty((m + 1, d.N))
            states[0] = np.concatenate([stepper.U, p0])
            speed = float(np.abs(stepper.U).max())
            setup = time.perf_counter()
            for j in range(1, m + 1):
                for _ in range(stride):
                    x = stepper.step()
                    speed = max(speed, float(np.abs(stepper.U).max()))
                if not np.isfinite(x).all():
                    raise RuntimeError(f"{WHO}: the solution blew up by {form.time} = {stepper.t:.4g} on n = {n} "
                                       f"(τ = {tau:.3g}); try more solver.steps or a finer solver.n")
                states[j] = x
        finally:
            stepper.free()
        done = time.perf_counter()
        self._form, self._disc = form, d
        self._snaps = Snapshots(form.t0, stride * tau, states)
        self._u = states[-1]
        self._solved += 1
        self.info = {"loss": tau, "loss_zero": 1.0, "dofs": int(d.N), "cells": int(d.mesh.t.shape[1]),
                     "steps": count, "tau": tau, "snapshots": m + 1, "snapshot_mb": self._snaps.nbytes / 2**20,
                     "max_speed": speed, "cfl": speed * tau * 2 * n, "setup_s": setup - start,
                     "integrate_s": done - setup, "time_s": done - start,
                     "converged": self._solved >= len(self.meshes)}
        return self.info

    def probe(self, x: Tensor) -> Tensor:
        """The solution at ``x`` ``[N, 3]`` (zero before the solve): each point's snapshots
        interpolated in time (cubic Lagrange), each snapshot by the elements at the point."""
        if self._snaps is None:
            return torch.zeros(x.shape[0], self.out_dim, dtype=torch.float64)
        form, d, snaps = self._form, self._disc, self._snaps
        pts = x.detach().double().cpu().numpy()
        times = pts[:, form.coords.index(form.time)]
        xy = np.stack([np.clip(pts[:, form.coords.index(c)], form.lo[a], form.hi[a])
                       for a, c in enumerate(form.space)], 1)
        rows, where = np.unique(xy, axis=0, return_inverse=True)
        where = np.asarray(where).reshape(-1)
        Pv, Pp = d.V.probes(rows.T), d.P.probes(rows.T)
        nv = d.nv

        def at(state: np.ndarray, idx: np.ndarray) -> np.ndarray:
            values = np.stack([Pv @ state[:nv], Pv @ state[nv:2 * nv], Pp @ state[2 * nv:]], 1)
            return values[where[idx]]

        values = snaps.combine(times, at, 3)
        out = np.zeros((pts.shape[0], self.out_dim))
        out[:, form.channels] = values
        return torch.as_tensor(out)
