"""The Fourier pseudo-spectral method with ETDRK4 in time for the Kuramoto–Sivashinsky and
Gray–Scott forms stated in a config file (``solver=spectral``): the method of the reference
scripts ``experiments/references/ks.py`` and ``grayscott.py``, with their operators
(``fourier.py``) and stepper (``etdrk4.py``).

Forms (read off the parsed residuals, any coefficients; a problem of neither form is refused in
one line):

- **KS**, one unknown, one space axis: u_t + α u u_x + β u_xx + γ u_xxxx = 0 (``pde=ks``).
- **Gray–Scott**, two unknowns, two space axes: u_t = ε₁Δu + b(1 − u) − c u v²,
  v_t = ε₂Δv − d v + c u v² (``pde=grayscott``; the species are told apart by the u v² term).

The grid is periodic with n points per space axis over the box; each space axis needs a periodic
condition, or Dirichlet conditions with constant values on both its faces that the initial
values already meet there (Gray–Scott's u = 1, v = 0: the pattern never reaches the edges, and
the run logs how far the solution strays from them by the end, ``train/spectral_edge_deviation``).

Time: ETDRK4 with h = (t1 − t0)/N, N = ⌈(t1 − t0)·steps⌉ (rounded up to a multiple of the
snapshot stride). The spectral state is stored every ``stride`` steps (``snapshots`` per unit
time; null: every step) and the probe interpolates it in time by cubic Hermite interpolation
with the semi-discrete system's own time derivative at the snapshots, L v + N(v)
(``snapshots.py``), and in space by the trigonometric interpolant (exact at the grid points,
spectrally accurate between them). At a snapshot's time (the reference files' times are) the
probe gives the solve's own values. Between them, against a solve with 16 times finer steps on
the same grid, pooled over the midpoints of the steps: KS n = 128, h = 1/1600: 8.8e-5 (8.8e-5
at the steps themselves); Gray–Scott n = 128, h = 1: 1.3e-4 (1.5e-4 at the steps, nearly all
from t < 5, where the spots first react): the interpolation adds nothing visible to the
stepping's own error. ``solver.n`` may be a list (solved coarse to fine, each timed alone) and
``solver.steps`` one number or one per grid. Gray–Scott's states take 2·n·(n/2 + 1) complex
numbers each: 212 MB for n = 256 and 201 snapshots (``train/spectral_snapshot_mb``).

Defaults (measured against the reference files on 2 shared cores, 2026-12-07): KS n = 128,
1600 steps per unit time (h = 1/1600): L2RE 7.3e-5 in 0.2 s; Gray–Scott n = 256, one step per
unit time (h = 1): 2.6e-5 in about 4 s.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from dinf.errors import ConfigError, check
from dinf.pdes.conditions import Dirichlet, Initial, Periodic
from dinf.solvers.classical.base import ClassicalSolver
from dinf.solvers.classical.etdrk4 import ETDRK4
from dinf.solvers.classical.fourier import Sampler, gs_operators, ks_operators, rfft_basis
from dinf.solvers.classical.problem_forms import (constant, face_of, require_box, same, show, targets, terms,
                                                  values_at)
from dinf.solvers.classical.snapshots import Snapshots, distinct, matmul

log = logging.getLogger(__name__)

WHO = "solver=spectral"
HINT = "it takes the KS and Gray–Scott forms (pde=ks, grayscott); try solver=mol"
KS, GS = "ks", "grayscott"
# The forms' defaults: Fourier points per axis, steps per unit time, snapshots per unit time
# (None: every step). See the module docstring for what they measured.
DEFAULTS = {KS: (128, 1600.0, None), GS: (256, 1.0, None)}
WORKERS = 2  # scipy.fft's threads for the 2-D transforms
EDGE_TOL = 1e-9  # initial values off a Dirichlet face's constant by more (relative): refused
EDGE_WARN = 1e-3  # the final values off it by more: the run warns (a coarse grid's ringing reaches 1e-5)

Points = Optional[Union[int, Sequence[int]]]
Steps = Optional[Union[float, Sequence[float]]]


def _refuse(why: str) -> ConfigError:
    return ConfigError("solver", f"{WHO}: {why}; {HINT}")


class SpectralForm:
    """The problem as ``solver=spectral`` reads it: ``kind`` (``ks`` or ``grayscott``), its
    coefficients ``coef``, the periodic box (``lo``, ``period`` per space axis), the time
    interval, the initial values per species and the Dirichlet faces' constants. ``species``:
    the unknowns in the form's order (u, then v), ``channels``: their output channels."""

    def __init__(self, problem: Any):
        self.t0, self.t1 = require_box(problem, WHO, HINT)
        self.name, self.coords, self.time = problem.name, list(problem.coords), problem.time
        self.space = [c for c in self.coords if c != self.time]
        dims = (len(self.space), problem.out_dim)
        if dims == (1, 1):
            self.kind = KS
            self._ks(problem)
        elif dims == (2, 2):
            self.kind = GS
            self._gs(problem)
        else:
            raise _refuse(f"{problem.name} has {dims[1]} unknown(s) in {dims[0]} space axes")
        self.channels = [problem.unknowns.channels[u][0] for u in self.species]
        bounds = problem.domain.bounds.numpy()
        axes = [self.coords.index(c) for c in self.space]
        self.lo = np.array([bounds[a, 0] for a in axes])
        self.period = np.array([bounds[a, 1] - bounds[a, 0] for a in axes])
        self._conditions(problem)

    # --- the forms ------------------------------------------------------------------------
    def _residual(self, problem: Any, rname: str, form: str) -> Dict[Tuple[str, ...], float]:
        d = constant(terms(problem, rname))
        if d is None:
            raise _refuse(f"residuals.{rname} is not a polynomial in the unknowns' derivatives with constant "
                          "coefficients")
        return d

    def _ks(self, problem: Any) -> None:
        form = "KS's u_t + α u u_x + β u_xx + γ u_xxxx = 0"
        if len(problem.residuals) != 1:
            raise _refuse(f"KS is one equation; {problem.name} has {len(problem.residuals)}")
        (rname,) = problem.residuals
        u = problem.unknowns.names[0]
        d = self._residual(problem, rname, form)
        ct = d.get((f"{u}_t",), 0.0)
        if ct == 0:
            raise _refuse(f"residuals.{rname} has no {u}_t")
        d = {k: v / ct for k, v in d.items()}
        alpha, beta, gamma = (d.get(k, 0.0) for k in ((u, f"{u}_x"), (f"{u}_xx",), (f"{u}_xxxx",)))
        want = {(f"{u}_t",): 1.0, (u, f"{u}_x"): alpha, (f"{u}_xx",): beta, (f"{u}_xxxx",): gamma}
        self._match(rname, d, want, form)
        self.species = [u]
        self.coef = {"alpha": alpha, "beta": beta, "gamma": gamma}

    def _gs(self, problem: Any) -> None:
        form = "Gray–Scott's u_t = ε₁Δu + b(1 − u) − c u v², v_t = ε₂Δv − d v + c u v²"
        if len(problem.residuals) != 2:
            raise _refuse(f"Gray–Scott is two equations; {problem.name} has {len(problem.residuals)}")
        eqs: Dict[str, Tuple[str, Dict]] = {}  # unknown → (residual, its terms over its u_t's coefficient)
        for rname in problem.residuals:
            d = self._residual(problem, rname, form)
            rates = [k[0][:-2] for k in d if len(k) == 1 and k[0].endswith("_t")]
            if len(rates) != 1 or rates[0] in eqs:
                raise _refuse(f"residuals.{rname} is not one species' equation of {form}")
            eqs[rates[0]] = (rname, {k: v / d[(f"{rates[0]}_t",)] for k, v in d.items()})
        cubic = [k for _, d in eqs.values() for k in d if len(k) == 3 and len(set(k)) == 2]
        if cubic:  # c u v²: u is the factor that appears once
            a = next(s for s in cubic[0] if cubic[0].count(s) == 1)
            b = next(s for s in cubic[0] if s != a)
        else:
            a, b = problem.unknowns.names
        uv2 = tuple(sorted((a, b, b)))
        (ru, du), (rv, dv) = eqs[a], eqs[b]
        e1, e2 = -du.get((f"{a}_xx",), 0.0), -dv.get((f"{b}_xx",), 0.0)
        feed, decay, c = du.get((a,), 0.0), dv.get((b,), 0.0), du.get(uv2, 0.0)
        self._match(ru, du, {(f"{a}_t",): 1.0, (f"{a}_xx",): -e1, (f"{a}_yy",): -e1, (): -feed, (a,): feed,
                             uv2: c}, "Gray–Scott's u_t = ε₁Δu + b(1 − u) − c u v²")
        self._match(rv, dv, {(f"{b}_t",): 1.0, (f"{b}_xx",): -e2, (f"{b}_yy",): -e2, (b,): decay, uv2: -c},
                    "Gray–Scott's v_t = ε₂Δv − d v + c u v²")
        self.species = [a, b]
        self.coef = {"eps1": e1, "eps2": e2, "b": feed, "d": decay, "c": c}

    def _match(self, rname: str, got: Dict, want: Dict, form: str) -> None:
        for k in sorted(set(got) | set(want)):
            if not same(got.get(k, 0.0), want.get(k, 0.0)):
                raise _refuse(f"residuals.{rname} is not {form} (its {show(k)} term)")

    # --- conditions -----------------------------------------------------------------------
    def _conditions(self, problem: Any) -> None:
        self.initial: Dict[str, Any] = {}
        periodic: set = set()
        self.dirichlet: List[Tuple[str, int, str, Dict[str, float]]] = []  # (condition, axis, side, values)
        for c in problem.conditions:
            if isinstance(c, Initial):
                self.initial.update(targets(c))
            elif isinstance(c, Periodic):
                if problem.coords[c.axis] == self.time:
                    raise _refuse(f"conditions.{c.name} is periodic in time")
                periodic.add(self.space.index(problem.coords[c.axis]))
            elif isinstance(c, Dirichlet):
                values = targets(c)
                if any(g.free_symbols for g in values.values()):
                    raise _refuse(f"conditions.{c.name} is not constant (a Fourier grid is periodic)")
                for face in problem.domain.resolve(c.piece, f"pde.conditions.{c.name}.piece"):
                    axis, side = face_of(problem, face)
                    self.dirichlet.append((c.name, axis, side, {u: float(g) for u, g in values.items()}))
            else:
                raise _refuse(f"conditions.{c.name} is {c.type} (it takes initial, periodic, constant Dirichlet)")
        missing = [u for u in self.species if u not in self.initial]
        if missing:
            raise _refuse(f"{self.name} has no initial value for {missing[0]}")
        for axis, coord in enumerate(self.space):
            if axis in periodic:
                continue
            for u in self.species:
                sides = {side for _, a, side, v in self.dirichlet if a == axis and u in v}
                if sides != {"min", "max"}:
                    side = "max" if "min" in sides else "min"
                    raise _refuse(f"{coord} is neither periodic nor held constant on both faces ({u} on {coord}_{side})")
        self._check_edges()

    def _check_edges(self, points: int = 65) -> None:
        """The initial values meet each Dirichlet face's constant (a periodic grid keeps them)."""
        for name, axis, side, values in self.dirichlet:
            coords = {self.time: np.float64(self.t0)}
            for a, c in enumerate(self.space):
                lo, hi = self.lo[a], self.lo[a] + self.period[a]
                coords[c] = np.float64(lo if side == "min" else hi) if a == axis else np.linspace(lo, hi, points)
            for u, g in values.items():
                got = values_at(self.initial[u], coords, (points,) if len(self.space) > 1 else (1,))
                if np.abs(got - g).max() > EDGE_TOL * max(1.0, abs(g)):
                    raise _refuse(f"the initial {u} is not {g:g} on {self.space[axis]}_{side} (conditions.{name}), "
                                  "so the grid cannot be periodic")

    # --- the discretisation ---------------------------------------------------------------
    def grid(self, n: int) -> List[np.ndarray]:
        """The periodic grid's nodes per space axis (the upper face left out: it is the lower)."""
        return [self.lo[a] + self.period[a] * np.arange(n) / n for a in range(len(self.space))]

    def operators(self, n: int):
        k = self.coef
        if self.kind == KS:
            return ks_operators(n, k["alpha"], k["beta"], k["gamma"], length=float(self.period[0]))
        return gs_operators(n, (k["eps1"], k["eps2"]), k["b"], k["d"], k["c"], period=tuple(self.period),
                            workers=WORKERS)

    def initial_state(self, n: int) -> np.ndarray:
        """The initial values' FFT: ``[n/2 + 1]`` (KS) or ``[2, n, n/2 + 1]`` (Gray–Scott)."""
        import scipy.fft as sfft

        mesh = np.meshgrid(*self.grid(n), indexing="ij")
        coords = {c: m for c, m in zip(self.space, mesh)}
        coords[self.time] = np.float64(self.t0)
        values = np.stack([values_at(self.initial[u], coords, mesh[0].shape) for u in self.species])
        if self.kind == KS:
            return np.fft.rfft(values[0])
        return sfft.rfft2(values, workers=WORKERS)

    def grid_values(self, n: int, state: np.ndarray) -> np.ndarray:
        """The grid function of a spectral state, ``[C, n]`` or ``[C, n, n]``."""
        import scipy.fft as sfft

        if self.kind == KS:
            return np.fft.irfft(state, n)[None]
        return sfft.irfft2(state, s=(n, n), workers=WORKERS)

    def edge_deviation(self, n: int, state: np.ndarray) -> float:
        """The largest |u − g| at the grid's nodes on the Dirichlet faces (0 without any)."""
        if not self.dirichlet:
            return 0.0
        grid = self.grid_values(n, state)
        worst = 0.0
        for _, axis, _, values in self.dirichlet:
            for u, g in values.items():
                face = np.take(grid[self.species.index(u)], 0, axis=axis)  # the lower face is the upper
                worst = max(worst, float(np.abs(face - g).max()))
        return worst


class FourierSpectral(ClassicalSolver):
    """Fourier pseudo-spectral in space, ETDRK4 in time, for the KS and Gray–Scott forms (see the
    module docstring). ``n``: Fourier points per space axis (even), or a list of grids solved
    coarse to fine, each afresh and timed alone; null: the form's default (KS 128, Gray–Scott
    256). ``steps``: time steps per unit time, one for every grid or one per grid; null: the
    form's default (KS 1600, Gray–Scott 1). ``snapshots``: states stored per unit time for the
    probe's interpolation in time (at most one per step); null: every step."""

    name = "the Fourier pseudo-spectral method"
    prefix = "spectral"

    def __init__(self, in_dim: int = 2, out_dim: int = 1, n: Points = None, steps: Steps = None,
                 snapshots: Optional[float] = None):
        check((int(in_dim), int(out_dim)) in ((2, 1), (3, 2)), "in_dim",
              f"{WHO} solves 1 unknown in x, t (KS) or 2 in x, y, t (Gray–Scott), got {out_dim} in {in_dim} "
              "coordinates; try solver=mol")
        super().__init__(in_dim, out_dim, "the Fourier spectral solvers", in_dims=(2, 3), out_dims=(1, 2))
        self.grids = _grids(n)
        self.steps = _steps(steps, self.grids)
        if self.grids and self.steps and len(self.steps) > 1:  # coarse to fine, each grid with its steps
            self.grids, self.steps = (list(v) for v in zip(*sorted(zip(self.grids, self.steps))))
        elif self.grids:
            self.grids = sorted(self.grids)
        check(snapshots is None or (isinstance(snapshots, (int, float)) and not isinstance(snapshots, bool)
                                    and snapshots > 0), "snapshots", f"must be a positive number or null, got {snapshots!r}")
        self.snapshots = None if snapshots is None else float(snapshots)
        self._solved = 0
        self._form: Optional[SpectralForm] = None
        self._snaps: Optional[Snapshots] = None
        self._n = 0

    @property
    def refinements(self) -> int:
        """How many solves the run makes (one per grid in ``n``)."""
        return len(self.grids or [None])

    def warm_up(self) -> None:
        """Run both forms' operators and ETDRK4 once on tiny grids (numpy's and scipy's FFTs, the
        expression evaluator), so the first solve's timing holds only its own work."""
        import sympy

        from dinf.equations.evaluate import evaluate

        L, N = ks_operators(16, 1.0, 1.0, 0.01)
        ETDRK4(L, 0.01, N).step(np.fft.rfft(np.cos(np.arange(16))))
        L, N = gs_operators(8, (0.01, 0.01), 0.04, 0.1, workers=WORKERS)
        ETDRK4(L, 1.0, N).step(np.ones(L.shape, complex))
        Sampler(8, np.zeros(2), np.zeros(2))(np.ones((2, 8, 5), complex))
        x = torch.zeros(4, dtype=torch.float64)
        evaluate(sympy.exp(sympy.Symbol("x", real=True)), {"x": x}, x)

    def check(self, field: Any, problem: Any) -> None:
        SpectralForm(problem)

    def plan(self, form: SpectralForm, k: int) -> Tuple[int, float, Optional[float]]:
        """Refinement ``k``'s points per axis, steps and snapshots per unit time."""
        n0, s0, snaps = DEFAULTS[form.kind]
        n = self.grids[min(k, len(self.grids) - 1)] if self.grids else n0
        steps = self.steps[min(k, len(self.steps) - 1)] if self.steps else s0
        return n, steps, self.snapshots if self.snapshots is not None else snaps

    def _solve(self, problem: Any) -> Dict[str, Any]:
        """Discretise and march on the next grid; returns the step counts and this solve's own
        time (``time_s``: operators, ETDRK4's coefficients, initial values and the steps).
        ``loss``: the time step."""
        start = time.perf_counter()
        form = SpectralForm(problem)
        n, steps, snaps = self.plan(form, self._solved)
        span = form.t1 - form.t0
        count = max(1, math.ceil(span * steps - 1e-9))
        stride = 1 if snaps is None else max(1, int(steps / snaps + 1e-9))
        count = stride * math.ceil(count / stride)
        h, m = span / count, count // stride
        L, nonlinear = form.operators(n)
        stepper = ETDRK4(L, h, nonlinear)
        v = form.initial_state(n)
        self._snaps = None  # the last solve's states go before this one's are stored
        states = np.empty((m + 1,) + v.shape, dtype=np.complex128)
        states[0] = v
        setup = time.perf_counter()
        for j in range(1, m + 1):
            for _ in range(stride):
                v = stepper.step(v)
            if not np.isfinite(v).all():
                raise RuntimeError(f"{WHO}: the solution blew up by {form.time} = {form.t0 + j * stride * h:.4g} on "
                                   f"{n} points per axis (h = {h:.3g}); try a finer solver.n or more solver.steps")
            states[j] = v
        done = time.perf_counter()
        self._form, self._n = form, n
        self._snaps = Snapshots(form.t0, stride * h, states, rate=lambda w: L * w + nonlinear(w))
        self._u = form.grid_values(n, v)
        edge = form.edge_deviation(n, v)
        if edge > EDGE_WARN:
            log.warning("%s: the solution is %.2g off its Dirichlet values on the faces at %s = %g: the periodic grid "
                        "does not hold them there", WHO, edge, form.time, form.t1)
        self._solved += 1
        self.info = {"loss": h, "loss_zero": 1.0, "dofs": int(self._u.size), "points": n, "steps": count,
                     "h": h, "snapshots": m + 1, "snapshot_mb": self._snaps.nbytes / 2**20,
                     "edge_deviation": edge, "setup_s": setup - start, "integrate_s": done - setup,
                     "time_s": done - start, "converged": self._solved >= self.refinements}
        return self.info

    def probe(self, x: Tensor) -> Tensor:
        """The solution at ``x`` ``[N, d + 1]`` (zero before the solve): each point's snapshots
        interpolated in time (cubic Lagrange), each snapshot by its trigonometric interpolant."""
        if self._snaps is None:
            return torch.zeros(x.shape[0], self.out_dim, dtype=torch.float64)
        form, n, snaps = self._form, self._n, self._snaps
        pts = x.detach().double().cpu().numpy()
        times = pts[:, form.coords.index(form.time)]
        space = np.stack([pts[:, form.coords.index(c)] for c in form.space], 1)
        if form.kind == KS:
            def at(state: np.ndarray, idx: np.ndarray) -> np.ndarray:
                xs, ix = distinct(space[idx, 0])
                basis = rfft_basis(n, xs, form.lo[0], form.period[0])
                return np.real(matmul(basis, state[:, None]))[ix]
        else:
            def at(state: np.ndarray, idx: np.ndarray) -> np.ndarray:
                return _plane_values(n, form, state, space[idx])
        values = snaps.combine(times, at, len(form.species))
        out = np.zeros((pts.shape[0], self.out_dim))
        out[:, form.channels] = values
        return torch.as_tensor(out)


def _plane_values(n: int, form: SpectralForm, state: np.ndarray, xy: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Both species' trigonometric interpolant at points ``xy`` ``[P, 2]``: on the tensor grid of
    their distinct x and y when that is not much larger than P (a reference file's points, a
    picture's grid; Ex V Eyᵀ multiplied in the cheaper order), else point by point in chunks."""
    xs, ix = distinct(xy[:, 0])
    ys, iy = distinct(xy[:, 1])
    basis = Sampler(n, xs, ys, tuple(form.lo), tuple(form.period))
    ex, ey = basis.ex, basis.ey
    X, Y, M = xs.size, ys.size, ey.shape[1]
    if X * Y <= 4 * xy.shape[0] + 4096:
        rows_first = X * n * M + X * M * Y <= n * M * Y + X * n * Y
        grids = [np.real(matmul(matmul(ex, w), ey.T) if rows_first else matmul(ex, matmul(w, ey.T))) for w in state]
        return np.stack([g[ix, iy] for g in grids], 1)
    out = np.empty((xy.shape[0], 2))
    for s in range(0, xy.shape[0], chunk):
        sel = slice(s, s + chunk)
        rows = ex[ix[sel]]  # [P, n]
        out[sel] = np.stack([np.real(np.sum(matmul(rows, w) * ey[iy[sel]], axis=1)) for w in state], 1)
    return out


def _grids(n: Any) -> Optional[List[int]]:
    """``n`` as a list of grid sizes, coarse to fine (None: the form's default)."""
    if n is None:
        return None
    entries = list(n) if isinstance(n, (list, tuple)) else [n]
    check(len(entries) > 0, "n", "give a point count, or a list of them: [64, 128]")
    for e in entries:
        ok = isinstance(e, int) and not isinstance(e, bool) and e >= 8 and e % 2 == 0
        check(ok, "n", f"Fourier points per axis are an even integer >= 8, got {e!r}")
    return list(entries)


def _steps(steps: Any, grids: Optional[Sequence[int]]) -> Optional[List[float]]:
    """``steps`` as a list (one entry, or one per grid; None: the form's default)."""
    if steps is None:
        return None
    entries = list(steps) if isinstance(steps, (list, tuple)) else [steps]
    for e in entries:
        ok = isinstance(e, (int, float)) and not isinstance(e, bool) and e > 0
        check(ok, "steps", f"time steps per unit time are positive numbers, got {e!r}")
    if len(entries) > 1:
        check(grids is not None and len(grids) == len(entries), "steps",
              f"give one number, or one per grid in solver.n ({len(grids or [])}), got {len(entries)}")
    return [float(e) for e in entries]
