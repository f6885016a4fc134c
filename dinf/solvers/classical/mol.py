"""The method of lines for a time-dependent scalar problem stated in a config file (``solver=mol``).

Space: finite differences of order 2 or 4 (``dinf.solvers.classical.fd_stencils``) on a uniform grid of
the spatial box (1 or 2 axes) with Dirichlet values on every face, so the unknowns are the
interior nodes. The parsed residual is solved for its highest time derivative, ``r = a·∂ₜᵏu + b``
→ ``∂ₜᵏu = F = −b/a``: ``u_t = F`` (k = 1), or ``u_tt = F`` as the first-order system
``(u, v = u_t)`` (k = 2). ``F`` is evaluated at the interior nodes by the project's expression
evaluator from the jets the difference matrices give (``u, u_x, u_xx, u_y, u_yy, u_xy``, the
boundary values included), and its Jacobian is ``Σ_e diag(∂F/∂e)·D_e`` with ``∂F/∂e`` by
autograd (computed once when ``F`` is affine in the jets with time-independent coefficients).

Time: scipy's ``solve_ivp`` with the sparse Jacobian: BDF for first order, Radau IIA for second
order (A-stable at order 5 on the undamped oscillations, where BDF's orders 3–5 are not). Its
relative tolerance is tied to the grid (``RTOL_SCALE[method]·(1/n)^order``, ``n`` the coarsest
axis's cells) so the time error stays below the space error at each refinement (measured against
rtol = 1e-11 or 1e-12: at most 6 % of it on Heat2d-MS, 0.3 % on Wave1d-C and 1.2 % on
Burgers1d-C).

Probe: the integrator's dense output in time, then a quintic interpolating spline (error O(h⁶),
below either order's space error; a cubic one dominated Heat2d-MS's error, sin(20πx) on few
cells) through the grid's values in space, boundary nodes included. Its result is a field
(``probe``), so the problem's ``evaluate``, pictures and ``metrics.json`` treat it as any model's.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp
import sympy
import torch
from torch import Tensor

from dinf.solvers.classical.base import ClassicalSolver
from dinf.solvers.classical.fd_stencils import ORDERS, grid_matrix, min_cells
from dinf.equations.evaluate import evaluate
from dinf.errors import ConfigError, check
from dinf.equations.residual import Residual
from dinf.pdes.conditions import Dirichlet, Initial, InitialRate
from dinf.pdes.equation_problem import EquationProblem

METHODS = ("auto", "BDF", "Radau")
# auto rtol = RTOL_SCALE[method]·(1/n)^order, n the coarsest axis's cells: the smoothest mode
# sin(πx/L) has a space error of about (πh/L)²/12 (order 2) or (πh/L)⁴/360 (order 4), and BDF's
# global error measured 4–8 times its rtol on these problems, Radau's far below it: on Wave1d-C
# (n = 32 … 512, orders 2 and 4) Radau's error at 20·(1/n)^order is within 0.3 % of its error at
# rtol 1e-11, and 5–10 times faster than at 0.05·(1/n)^order.
RTOL_SCALE = {"BDF": 0.002, "Radau": 20.0}
RTOL_MIN = 1e-11  # tighter only adds steps: float64 rounding in the Newton solves sets the floor
TAKES = (Dirichlet, Initial, InitialRate)  # the conditions it reads: walls and initial values
SPLINE = 5  # the probe's spline degree in space

Cells = Union[int, Sequence[Union[int, Sequence[int]]]]


class MethodOfLines(ClassicalSolver):
    """Finite differences in space and an implicit integrator in time for a problem with a time
    axis. ``n``: one grid's cells per space axis (``64``), or a list of grids solved coarse to
    fine, each afresh and timed alone (``independent_solves``), so one run draws the method's
    error-against-time curve (``[32, 64, 128]``; a grid with its own count per axis is a list in
    the list: ``[[64, 8], [128, 16]]``). ``order``: 2 or 4 (space); ``method``: ``auto`` (BDF for
    ``u_t``, Radau for ``u_tt``), ``BDF`` or ``Radau``; ``rtol``: the integrator's, or null (tied
    to the grid, ``RTOL_SCALE``)."""

    name = "the method of lines"

    prefix = "mol"

    def __init__(self, in_dim: int = 2, out_dim: int = 1, n: Cells = 64, order: int = 2, method: str = "auto",
                 rtol: Optional[float] = None):
        super().__init__(in_dim, out_dim, "the method of lines", in_dims=(2, 3))
        check(int(order) in ORDERS, "order", f"must be one of {ORDERS}, got {order!r}")
        check(method in METHODS, "method", f"must be one of {', '.join(METHODS)}, got {method!r}")
        check(rtol is None or 0 < float(rtol) < 1, "rtol", f"must be in (0, 1) or null, got {rtol!r}")
        self.order, self.method, self.rtol = int(order), method, rtol
        self.grids = _grids(n, self.in_dim - 1, self.order)
        self._solved = 0
        self._lines: Optional[Lines] = None
        self._sol: Any = None

    @property
    def refinements(self) -> int:
        """How many solves the run makes (one per grid in ``n``)."""
        return len(self.grids)

    def warm_up(self) -> None:
        """Import and run scipy's integrators, splines and the expression evaluator once on a tiny
        system, so the first solve's timing holds only its own work."""
        from scipy.integrate import solve_ivp
        from scipy.interpolate import RectBivariateSpline, make_interp_spline

        A = sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(4, 4), format="csc")
        for method in ("BDF", "Radau"):
            solve_ivp(lambda t, y: A @ y, (0.0, 1.0), np.ones(4), method=method, jac=A, dense_output=True)
        grid = np.linspace(0.0, 1.0, SPLINE + 2)
        make_interp_spline(grid, grid, k=SPLINE)(grid)
        RectBivariateSpline(grid, grid, np.outer(grid, grid), kx=SPLINE, ky=SPLINE, s=0).ev(grid, grid)
        x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        evaluate(sympy.Symbol("u", real=True) ** 2, {"u": x}, x).sum().backward()

    def check(self, field: Any, problem: Any) -> None:
        TimeForm(problem)

    def _solve(self, problem: Any) -> Dict[str, Any]:
        """Discretise on the next grid and integrate; returns the integrator's counts and this
        solve's own time (``time_s``). ``loss``: the relative tolerance every step met."""
        from scipy.integrate import solve_ivp

        cells = self.grids[min(self._solved, len(self.grids) - 1)]
        t0 = time.perf_counter()
        form = TimeForm(problem)
        lines = Lines(form, problem, cells, self.order)
        y0 = lines.initial_state()
        method = self.method if self.method != "auto" else ("Radau" if form.time_order == 2 else "BDF")
        rtol = float(self.rtol) if self.rtol is not None else \
            max(RTOL_SCALE[method] * min(cells) ** -self.order, RTOL_MIN)
        scale = max(float(np.abs(y0).max()), float(np.abs(lines.boundary(form.t0)).max(initial=0.0)))
        atol = rtol * (scale or 1.0)  # the solution's size: a component near zero needs no more digits
        jac = lines.jacobian(form.t0, y0) if form.constant_jacobian else lines.jacobian
        t1 = time.perf_counter()
        sol = solve_ivp(lines.rhs, (form.t0, form.t1), y0, method=method, jac=jac, dense_output=True,
                        rtol=rtol, atol=atol)
        # scipy stops with "step size less than spacing" when its steps' sum lands a few ulps short
        # of t1 (Wave2d-MS on [0, 100]: 99.99999999999999): the integration is done then.
        at_end = abs(sol.t[-1] - form.t1) <= 1e-12 * max(1.0, abs(form.t1))
        if not sol.success and not at_end:
            raise RuntimeError(f"solver=mol: {method} stopped at {problem.time} = {sol.t[-1]:.4g} on {cells} cells "
                               f"({sol.message}); a grid this coarse may not resolve the equation, try a finer solver.n")
        t2 = time.perf_counter()
        self._lines, self._sol, self._u = lines, sol.sol, sol.y[:lines.size, -1]
        self._solved += 1
        self.info = {"loss": rtol, "loss_zero": 1.0, "dofs": lines.size, "cells": int(np.prod(cells)),
                     "rtol": rtol, "steps": int(sol.t.size - 1), "nfev": int(sol.nfev),
                     "njev": int(sol.njev) + int(form.constant_jacobian),  # a constant one: once, in the setup
                     "nlu": int(sol.nlu), "setup_s": t1 - t0, "integrate_s": t2 - t1,
                     "time_s": time.perf_counter() - t0, "converged": self._solved >= len(self.grids)}
        return self.info

    def grid_solution(self, times: np.ndarray) -> Optional[Tuple[List[np.ndarray], np.ndarray]]:
        """The last solve on its own grid, for ParaView (``dinf.app.vtk.export_grid``): the space
        axes' nodes and ``u`` there at ``times`` (the integrator's dense output), ``[T, *grid]``;
        None before a solve."""
        if self._sol is None:
            return None
        lines = self._lines
        t = np.clip(np.asarray(times, dtype=np.float64), lines.form.t0, lines.form.t1)
        states = self._sol(t).reshape(-1, t.size)
        return list(lines.axes), np.stack([lines.grid_values(t[k], states[:, k]) for k in range(t.size)])

    def probe(self, x: Tensor) -> Tensor:
        """The solution at ``x`` ``[N, d + 1]`` (space, then time; zero before the solve): the
        dense output at each distinct time, then a quintic spline through the grid in space."""
        if self._sol is None:
            return torch.zeros(x.shape[0], 1, dtype=torch.float64)
        lines = self._lines
        pts = x.detach().double().cpu().numpy()
        t = np.clip(pts[:, -1], lines.form.t0, lines.form.t1)
        space = np.clip(pts[:, :-1], lines.lo, lines.hi)
        times, which = np.unique(t, return_inverse=True)
        states = self._sol(times).reshape(-1, times.size)
        groups = np.split(np.argsort(which, kind="stable"), np.cumsum(np.bincount(which))[:-1])
        out = np.empty(pts.shape[0])
        for k, sel in enumerate(groups):  # one spline per distinct time
            out[sel] = lines.interpolate(lines.grid_values(times[k], states[:, k]), space[sel])
        return torch.as_tensor(out)[:, None]


class TimeForm:
    """The problem's equation solved for its highest time derivative, ``∂ₜᵏu = F`` (k = 1 or 2),
    and its conditions' values; a problem it cannot take raises a one-line ``ConfigError``.

    ``jets``: the spatial jet entries ``F`` reads (symbol name → space axes); ``rate``: the name
    of ``u_t`` in ``F`` (k = 2: the state's ``v``); ``dirichlet``: ``(faces, g)`` per condition;
    ``initial``, ``initial_rate``: ``u`` and ``u_t`` at ``t0`` (expressions of the coordinates)."""

    def __init__(self, problem: Any):
        if not isinstance(problem, EquationProblem):
            raise ConfigError("solver", f"solver=mol solves problems stated in a config file; "
                                       f"{type(problem).__name__} is not one")
        name = problem.name
        if problem.time is None:
            raise ConfigError("solver", f"solver=mol solves time-dependent problems; {name} has no time axis")
        if problem.out_dim != 1:
            raise ConfigError("solver", f"solver=mol solves one real unknown; {name} has {problem.out_dim} channels")
        domain = problem.domain
        if domain.holes or domain.additions:
            raise ConfigError("solver", f"solver=mol discretises a box; {name}'s domain has holes or additions")
        if problem.hard:
            raise ConfigError("solver", f"solver=mol reads the conditions as stated; {name} makes some exact "
                                       "(pde.conditions.<name>.hard: false)")
        if len(problem.residuals) != 1:
            raise ConfigError("solver", f"solver=mol solves one equation; {name} has {len(problem.residuals)}")
        (rname, r), = problem.residuals.items()
        if not isinstance(r, Residual):
            raise ConfigError("solver", f"solver=mol reads equations written as text; residuals.{rname} is Python")
        self.coords, self.time = list(problem.coords), problem.time
        self.t0, self.t1 = (float(v) for v in domain.bounds[-1])
        ti = self.coords.index(self.time)
        expr = r.parts[0].expr  # parameters substituted
        entries = {s: r.vocab.entries[s.name] for s in expr.free_symbols if s.name in r.vocab.entries}
        rate = accel = None
        for s, e in entries.items():
            if ti in e.axes and e.axes not in ((ti,), (ti, ti)):
                raise ConfigError("solver", f"solver=mol takes no mixed space-time derivative; residuals.{rname} has {s}")
            if e.axes == (ti,):
                rate = s
            elif e.axes == (ti, ti):
                accel = s
        top = accel if accel is not None else rate
        if top is None:
            raise ConfigError("solver", f"solver=mol needs a time derivative; residuals.{rname} has none (a steady problem)")
        a = sympy.diff(expr, top)
        if a == 0 or top in a.free_symbols:
            raise ConfigError("solver", f"solver=mol solves the equation for {top}; residuals.{rname} is not linear in it")
        self.time_order = 2 if accel is not None else 1
        self.rhs = -expr.subs(top, 0) / a  # ∂ₜᵏu = F
        self.rate = rate.name if self.time_order == 2 and rate is not None else None
        self.jets = {s.name: e.axes for s, e in entries.items() if ti not in e.axes}
        states = [s for s in entries if s != top]
        tsym = sympy.Symbol(self.time, real=True)
        self.constant_jacobian = all(not (sympy.diff(self.rhs, s).free_symbols & set(states + [tsym])) for s in states)
        self._conditions(problem)

    def _conditions(self, problem: Any) -> None:
        self.dirichlet: List[Tuple[List[str], sympy.Expr]] = []
        values: Dict[type, sympy.Expr] = {}  # Initial, InitialRate -> its value
        covered: set = set()
        for c in problem.conditions:
            if not isinstance(c, TAKES):
                raise ConfigError("solver", f"solver=mol takes Dirichlet, initial and initial_rate conditions; "
                                            f"conditions.{c.name} is {c.type}")
            if type(c) in values or (isinstance(c, InitialRate) and self.time_order == 1):
                why = "a second" if type(c) in values else "one for an equation first order in time"
                raise ConfigError("solver", f"solver=mol: conditions.{c.name} is {why} {c.type} condition")
            g = c.prescribed()
            if isinstance(c, Dirichlet):
                faces = problem.domain.resolve(c.piece, f"pde.conditions.{c.name}.piece")
                self.dirichlet.append((faces, g))
                covered |= set(faces)
            else:
                values[type(c)] = g
        missing = [f for f in problem.domain.groups["box"] if f not in covered]
        if missing:
            raise ConfigError("solver", f"solver=mol needs a Dirichlet condition on every face; {missing[0]} has none")
        needed = [Initial] + ([InitialRate] if self.time_order == 2 else [])
        for wanted in needed:
            if wanted not in values:
                raise ConfigError("solver", f"solver=mol needs an {wanted.type} condition for this equation; there is none")
        self.initial = values[Initial]
        self.initial_rate = values.get(InitialRate)


class Lines:
    """The semi-discrete system on one grid: the state (interior nodes: ``u``, then ``v`` for a
    second-order equation), ``rhs`` and ``jacobian`` for the integrator, and the grid's values
    with the boundary's for the probe."""

    def __init__(self, form: TimeForm, problem: Any, cells: Sequence[int], order: int):
        self.form = form
        bounds = problem.domain.bounds[:-1].numpy()
        self.lo, self.hi = bounds[:, 0], bounds[:, 1]
        self.axes = [np.linspace(lo, hi, n + 1) for (lo, hi), n in zip(bounds, cells)]
        self.shape = tuple(n + 1 for n in cells)
        steps = [(hi - lo) / n for (lo, hi), n in zip(bounds, cells)]
        nodes = np.stack([m.ravel() for m in np.meshgrid(*self.axes, indexing="ij")])  # [d, nodes]
        index = np.stack([m.ravel() for m in np.meshgrid(*[np.arange(s) for s in self.shape], indexing="ij")])
        on_edge = ((index == 0) | (index == np.array(cells)[:, None])).any(0)
        self.inner, self.edge = np.flatnonzero(~on_edge), np.flatnonzero(on_edge)
        self.size = int(self.inner.size)
        # Each jet entry: its rows at the interior nodes, split into interior and boundary columns.
        self.ops: Dict[str, Tuple[sp.csr_matrix, sp.csr_matrix]] = {}
        for name, axes in form.jets.items():
            D = grid_matrix(cells, steps, axes, order)[self.inner]
            self.ops[name] = (D[:, self.inner].tocsr(), D[:, self.edge].tocsr())
        space = [c for c in form.coords if c != form.time]
        self.env = {c: torch.as_tensor(nodes[a, self.inner]) for a, c in enumerate(space)}
        self._edge_env = {c: torch.as_tensor(nodes[a, self.edge]) for a, c in enumerate(space)}
        # Each boundary node takes the first condition on one of its faces (corners: the first).
        self._owner = np.full(self.edge.size, -1)
        tol = 1e-9 * float((self.hi - self.lo).max())
        for k, (faces, _) in enumerate(form.dirichlet):
            for face in faces:
                axis_name, side = face.rsplit("_", 1)
                a = space.index(axis_name)
                on = np.abs(nodes[a, self.edge] - (self.lo[a] if side == "min" else self.hi[a])) < tol
                self._owner[on & (self._owner < 0)] = k
        tsym = sympy.Symbol(form.time, real=True)
        self._steady_edge = all(tsym not in g.free_symbols for _, g in form.dirichlet)
        self._edge_cache: Optional[np.ndarray] = None

    def _at(self, expr: sympy.Expr, env: Dict[str, Tensor], t: float) -> np.ndarray:
        like = next(iter(env.values()))
        return evaluate(expr, {**env, self.form.time: torch.full_like(like, t)}, like).numpy()

    def boundary(self, t: float) -> np.ndarray:
        """The Dirichlet values at the boundary nodes at time ``t``."""
        if self._steady_edge and self._edge_cache is not None:
            return self._edge_cache
        out = np.zeros(self.edge.size)
        for k, (_, g) in enumerate(self.form.dirichlet):
            mine = self._owner == k
            if mine.any():
                env = {c: v[mine] for c, v in self._edge_env.items()}
                out[mine] = self._at(g, env, t)
        self._edge_cache = out
        return out

    def initial_state(self) -> np.ndarray:
        f = self.form
        u0 = self._at(f.initial, self.env, f.t0)
        return u0 if f.time_order == 1 else np.concatenate([u0, self._at(f.initial_rate, self.env, f.t0)])

    def _jets(self, t: float, y: np.ndarray) -> Dict[str, Tensor]:
        u, b = y[:self.size], self.boundary(t)
        jets = {name: torch.as_tensor(A @ u + C @ b) for name, (A, C) in self.ops.items()}
        if self.form.rate is not None:
            jets[self.form.rate] = torch.as_tensor(y[self.size:].copy())
        return jets

    def _F(self, t: float, jets: Dict[str, Tensor]) -> Tensor:
        like = self.env[next(iter(self.env))]
        env = {**self.env, **jets, self.form.time: torch.full_like(like, t)}
        return evaluate(self.form.rhs, env, like)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """``dy/dt``: ``F`` (first order) or ``(v, F)`` (second order)."""
        with torch.no_grad():
            F = self._F(t, self._jets(t, y)).numpy()
        return F if self.form.time_order == 1 else np.concatenate([y[self.size:], F])

    def jacobian(self, t: float, y: np.ndarray) -> sp.csc_matrix:
        """``∂(dy/dt)/∂y``: ``Σ_e diag(∂F/∂e)·D_e`` with ``∂F/∂e`` by autograd (one backward pass:
        ``F`` at a node depends only on the jets at that node)."""
        jets = {k: v.requires_grad_(True) for k, v in self._jets(t, y).items()}
        with torch.enable_grad():
            F = self._F(t, jets)
            grads = torch.autograd.grad(F.sum(), list(jets.values()), allow_unused=True) if F.requires_grad else \
                [None] * len(jets)
        slopes = {k: np.zeros(self.size) if g is None else g.numpy() for k, g in zip(jets, grads)}
        n = self.size
        J = sp.csr_matrix((n, n))
        for name, (A, _) in self.ops.items():
            J = J + sp.diags(slopes[name]) @ A
        if self.form.time_order == 1:
            return J.tocsc()
        damping = sp.diags(slopes[self.form.rate]) if self.form.rate is not None else sp.csr_matrix((n, n))
        return sp.bmat([[None, sp.identity(n)], [J, damping]], format="csc")

    def grid_values(self, t: float, state: np.ndarray) -> np.ndarray:
        """``u`` on every node at time ``t`` (``state``: the interior's), shaped as the grid."""
        full = np.empty(int(np.prod(self.shape)))
        full[self.inner] = state[:self.size]
        full[self.edge] = self.boundary(t)
        return full.reshape(self.shape)

    def interpolate(self, values: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The quintic interpolating spline through the grid's ``values`` at ``points`` ``[M, d]``."""
        from scipy.interpolate import RectBivariateSpline, make_interp_spline

        if len(self.axes) == 1:
            return make_interp_spline(self.axes[0], values, k=SPLINE)(points[:, 0])
        return RectBivariateSpline(*self.axes, values, kx=SPLINE, ky=SPLINE, s=0).ev(points[:, 0], points[:, 1])


def _grids(n: Cells, dim: int, order: int) -> List[List[int]]:
    """``n`` as a list of grids (cells per space axis), coarse to fine."""
    entries = list(n) if isinstance(n, (list, tuple)) else [n]
    check(len(entries) > 0, "n", "give a cell count, or a list of grids: [32, 64] or [[64, 8], [128, 16]]")
    grids = []
    for e in entries:
        cells = list(e) if isinstance(e, (list, tuple)) else [e] * dim
        ok = len(cells) == dim and all(isinstance(c, int) and not isinstance(c, bool) for c in cells)
        check(ok, "n", f"an entry is a cell count or {dim} of them (one per space axis), got {e!r}")
        fewest = max(min_cells(order), SPLINE)  # the one-sided stencils' and the probe's spline's
        check(min(cells) >= fewest, "n", f"needs at least {fewest} cells per axis (order {order}), got {e!r}")
        grids.append(cells)
    return sorted(grids, key=lambda c: int(np.prod(c)))
