"""Gauss–Newton with Levenberg–Marquardt damping: nonlinear problems in a few linear solves.

A problem's loss is a sum of squared residuals of the field's jet (minus twice a linear term for an
energy). With a linear-decoder grid the jet is linear in the node values ``z``: ``J = E z`` with a
sparse ``E`` fixed by the points (``dinf.solvers.least_squares.assemble`` of one-hot rows). The problem linearises its
residuals around the current jet (``linearized_system``: ``coef = ∂r/∂J``), so the Jacobian of the
residuals in ``z`` is ``diag(coef) · E`` and each step solves the damped normal equations

    (AᵀA + (μ + λ·m)·I) δ = −Aᵀ r + g − μ z,   m = mean(diag AᵀA)

then searches along ``δ`` (halving until the objective falls). ``μ ‖z‖²`` is the Tikhonov term of
least squares (``damping``, relative to ``m`` at the start): the levels overlap, so the loss has
directions it barely sees, and without it the steps drift along them (NS2d-C, 32² cells: L2RE
1.0e-2 after 3 steps, then 0.27 after 12 while the loss kept falling). ``λ`` is Levenberg–
Marquardt's: it adapts by the ratio of the actual to the predicted decrease. A linear problem
(``linear_system``, or a linearisation that does not depend on the jet) is solved by the first
step, to what ``solver=least_squares`` gives.

A problem's unknown parameters θ (``dinf.pdes.inferred``: more channels of the jet) are unknowns
beside ``z``: their columns are the rows' coefficients on those channels, and the Tikhonov term
leaves them out. After each step their standard deviations come from the Laplace approximation at
the new point, ``cov = c · (AᵀA + μ·I_z)⁻¹``, ``c`` the problem's noise scale (``noise_scale``);
``pointwise_std`` gives the same for each unknown's value at any points, after the run.

A problem whose regularisation weight is chosen from the data (``dinf.pdes.regularization``:
``risk`` or ``discrepancy``) has it moved between steps: once the objective falls by less than
0.1 % a step at one weight, ``dinf.solvers.weight_search`` proposes the next, and the steps go on
from the current point at it, until the search has chosen.

The points are drawn once: the steps minimise one loss, so each step's decrease is real.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from omegaconf import DictConfig

from dinf.equations.residual import jet_width
from dinf.pdes.capabilities import LinearProblem, ResidualProblem
from dinf.solvers.base import SolveSolver
from dinf.solvers.damped import damped_step
from dinf.solvers.weight_search import DiscrepancySearch, LCurveSearch, RiskSearch
from dinf.fields.warped import sample_for
from dinf.errors import ConfigError, check, check_choice
from dinf.jet import Jet
from dinf.linear_system import LinearSystem, mix_matrix
from dinf.solvers.least_squares import (DIRECT_LIMIT, cells_total, check_basis, initial_bias, level_damping,
                                        read_back, warm_up_solves, write_back)
from dinf.solvers.linalg.node_jets import random_jet
from dinf.solvers.linalg.split_jets import node_jets
from dinf.solvers.linalg.gram import normal_matrix
from dinf.solvers.linalg.sparse_solve import check_backend, solve_spd

METHODS = ("auto", "direct", "cg", "lsqr")
# λ ÷ 10 after a full step that gained > 9/10 of the predicted decrease (÷ 3 in the textbook
# rule, which Newton keeps): the damping left from the first steps then no longer slows the end.
# Burgers1d-C with its focus: 16 solves instead of 21 to the same 6.96e-5 (2026-12-07).
TRUSTED = 10.0
log = logging.getLogger(__name__)


class GaussNewton(SolveSolver):
    """One Gauss–Newton step per training step (``trainer.max_steps`` bounds the solves).

    ``points``: collocation points, drawn once (default 16 per finest-level cell, as least
    squares). ``damping``: the Tikhonov weight on the node values, as least squares' (relative to
    the mean diagonal of AᵀA at the start). ``lm``: the initial Levenberg–Marquardt ``λ`` on the
    step, relative to the mean diagonal. ``method``: the inner solve, as in
    ``dinf.solvers.least_squares.LeastSquares`` (``auto``: direct up to ``DIRECT_LIMIT`` unknowns, else LSQR, which
    damps the column-scaled system). ``rtol``: stop when
    a step lowers the loss by less than this fraction. ``halvings``: line-search halvings before
    the step is refused and ``λ`` raised. ``cold_start``: start from the zero field (else from the
    field as it is, e.g. after Adam). ``backend``: the direct solve's (auto, pardiso, superlu).
    ``warm_start_steps``: Adam steps (learning rate ``warm_start_lr``, the problem's batch) before
    the first solve, which then starts from their field (``dinf.app.module`` runs them).
    ``max_solves``: at most this many solves (null: ``trainer.max_steps``), each validated.
    ``windows``, ``overlap``: marching in time windows, which the run sets up around this solver
    (``dinf.solvers.marching``: the steps run to convergence on each window in turn).
    """

    prefix = "gn"
    name = "Gauss–Newton"
    reweighs = True  # chooses a regularisation weight from the data (dinf.pdes.regularization)

    def __init__(self, points: Optional[int] = None, damping: float = 1e-10, lm: float = 1e-6,
                 method: str = "auto", tol: float = 1e-10, maxiter: int = 2000, rtol: float = 1e-6, halvings: int = 8,
                 cold_start: bool = True, backend: str = "auto", warm_start_steps: int = 0,
                 warm_start_lr: float = 1e-2, max_solves: Optional[int] = None,
                 windows: Optional[Union[int, list]] = None, overlap: float = 0.0):
        check_choice("method", method, METHODS)
        check(max_solves is None or int(max_solves) >= 1, "max_solves", f"must be >= 1 or null, got {max_solves!r}")
        self.max_solves = None if max_solves is None else int(max_solves)
        check_backend(backend)
        check(damping >= 0, "damping", f"must be >= 0, got {damping!r}")
        check(points is None or int(points) > 0, "points", f"must be > 0, got {points!r}")
        check(lm >= 0, "lm", f"must be >= 0, got {lm!r}")
        check(rtol >= 0, "rtol", f"must be >= 0, got {rtol!r}")
        check(int(halvings) >= 0, "halvings", f"must be >= 0, got {halvings!r}")
        check(int(warm_start_steps) >= 0, "warm_start_steps", f"must be >= 0, got {warm_start_steps!r}")
        check(warm_start_lr > 0, "warm_start_lr", f"must be > 0, got {warm_start_lr!r}")
        super().__init__()
        self.points, self.damping, self.lm, self.method = points, float(damping), float(lm), method
        self.tol, self.maxiter, self.rtol, self.halvings = float(tol), int(maxiter), float(rtol), int(halvings)
        self.cold_start, self.backend = bool(cold_start), backend
        self.warm_start_steps, self.warm_start_lr = int(warm_start_steps), float(warm_start_lr)
        self._state: Optional[_State] = None
        self.windows, self.overlap = windows, overlap

    # --- checks -----------------------------------------------------------------------------
    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        """Raise a one-line ``ConfigError`` unless Gauss–Newton applies (a grid with a basis and
        the linear decoder; a problem whose loss is squared residuals of the jet)."""
        if not isinstance(problem, (ResidualProblem, LinearProblem)):
            raise ConfigError("solver", f"Gauss-Newton needs a loss of squared residuals; {type(problem).__name__} "
                              "states none (use solver=adam or lbfgs)")
        check_basis(field, "Gauss-Newton", split=True)

    def trainer_steps(self, trainer: DictConfig) -> Dict[str, Any]:
        """Each solve is validated; ``max_solves`` and ``trainer.max_steps`` bound them."""
        return {"max_steps": min(self.max_solves or trainer.max_steps, trainer.max_steps), "val_check_interval": 1}

    def resume(self) -> None:
        self.cold_start = False  # a resumed run goes on from its checkpoint's field

    def warm_started(self) -> None:
        self.cold_start = False  # the first solve reads the field Adam left

    def warm_up(self) -> None:
        warm_up_solves(self.backend)

    # --- one step ---------------------------------------------------------------------------
    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        """One damped Gauss–Newton step; writes the new node values into ``field``. Returns the
        loss after it, the step length, ``λ``, timings and ``converged``."""
        self.check(field, problem)
        t0 = time.perf_counter()
        if self._state is None:
            self._state = self._start(field, problem, generator)
        st = self._state
        lam = st.lam
        t1 = time.perf_counter()
        A = st.jacobian(st.system)
        g = st.linear_vector(st.system)
        r0 = st.system.residual(st.full(st.jet)).reshape(-1).double().numpy()
        norms2 = np.asarray(A.multiply(A).sum(0)).ravel()  # diag AᵀA
        if st.mu is None:  # the Tikhonov weight, fixed at the start: one objective for every step
            st.mu = self.damping * float(norms2.mean())
            if getattr(field, "refined", 0):  # per level, as least squares' (least_squares.level_damping)
                n = st.nodes_count
                st.mask[:n] = level_damping(norms2[:n], st.layout, 1.0) / max(float(norms2.mean()), 1e-300)
            st.objective = st.loss + st.mu * st.norm2(st.z)
        t2 = time.perf_counter()
        delta, inner = self._inner(A, r0, g, st.z, st.mu, lam * float(norms2.mean()), norms2)
        t3 = time.perf_counter()
        # The model's predicted change of the objective at δ, and the actual objective along δ.
        Ad = A @ delta
        dz = delta * st.mask
        predicted = float(np.sum((r0 + Ad) ** 2) - np.sum(r0**2) - 2.0 * g @ delta
                          + st.mu * (2.0 * st.z @ dz + delta @ dz))

        def evaluate(z1: np.ndarray) -> Tuple[float, Any]:
            jet1 = st.jet_at(z1)
            system1 = st.linearize(jet1)
            loss1 = float(system1.loss(st.full(jet1)))
            return loss1 + st.mu * st.norm2(z1), (jet1, system1, loss1)

        before = st.objective
        step = damped_step(evaluate, st.z, delta, st.objective, predicted, lam, self.halvings, self.rtol,
                           trusted=TRUSTED)
        t4 = time.perf_counter()
        st.lam = step.lam
        if step.z is not None:
            st.z, st.objective = step.z, step.objective
            st.jet, st.system, st.loss = step.payload
            write_back(field, st.z[:st.nodes_count], st.layout, st.bias)
        st.steps += 1
        extra = {}
        if st.extra:
            st.set_params(st.z)  # the accepted values (a refused trial set others)
            extra = self._parameters(st)
        converged = step.converged
        reg = getattr(problem, "regularization", None)
        ratio = float("nan")
        if st.observed:
            with torch.no_grad():
                ratio = problem.misfit_ratio(st.batch, st.jet)
            extra["misfit_ratio"] = ratio
        if reg is not None and (st.observed or reg.mode == "lcurve"):
            extra["reg_weight"] = reg.weight
            if reg.auto:  # the discrepancy principle's target misfit, the predictive risk, the L-curve's fit
                extra[{"discrepancy": "misfit_target", "risk": "risk", "lcurve": "lcurve_fit"}[reg.mode]] = st.target
            # Reweigh once the misfit has settled (the objective falls by < 0.1 % a step):
            # solving on to round-off at a weight about to change would be wasted.
            settled = converged or before - st.objective < 1e-3 * abs(before)
            if reg.auto and not st.weighed and settled and self._reweigh(st, reg, ratio):
                converged = False  # solve again at the new weight, from here
        self.info = {"loss": st.loss, "loss_zero": st.loss_start, "step": step.alpha, "lm": lam,
                     "inner_iterations": inner, "assemble_s": t2 - t1 + (t1 - t0), "solve_s": t3 - t2,
                     "line_search_s": t4 - t3, "rows": A.shape[0], "unknowns": A.shape[1], "nnz": A.nnz,
                     "method": st.method, "converged": converged, **extra}
        return self.info

    def _reweigh(self, st: "_State", reg: Any, ratio: float) -> bool:
        """After the solve at the regularisation weight α settled with a data misfit of
        ``ratio``·σ², move α (``dinf.solvers.weight_search``: towards the discrepancy target, or
        towards the least predictive risk) and go on from this point. False once α is chosen."""
        dof = self._fit_dof(st) if reg.mode == "risk" or (reg.mode == "discrepancy" and reg.dof) else 0.0
        if reg.mode == "lcurve":
            st.search = st.search or LCurveSearch()
            with torch.no_grad():
                fit, penalty = st.problem.lcurve_point(st.batch, st.jet)
            st.target = fit
            alpha = st.search.propose(reg.weight, fit, penalty)
            what = f"a fit of {fit:.4g} and a penalty of {penalty:.4g}"
        elif reg.mode == "risk":
            st.search = st.search or RiskSearch()
            st.target = ratio + 2.0 * dof - 1.0  # what the search minimises (logged as risk)
            alpha = st.search.propose(reg.weight, st.target)
            what = f"a predictive risk of {st.target:.4g} sigma^2"
        else:
            st.search = st.search or DiscrepancySearch(reg.tolerance)
            st.target = reg.tau**2 * (1.0 - dof)
            alpha = st.search.propose(reg.weight, ratio, st.target)
            what = f"a misfit of {ratio:.4g} sigma^2 (target {st.target:.4g})"
        if alpha is None:
            st.weighed = True
            if reg.mode == "discrepancy" and not reg.reached(ratio, st.target):
                log.warning("%s: the discrepancy principle stopped after %d weights at %s; weight %.3g",
                            reg.key, st.search.solves, what, reg.weight)
            else:
                log.info("%s: weight %.3g chosen (%s) after %d weights", reg.key, reg.weight, what, st.search.solves)
            return False
        log.info("%s: weight %.3g gave %s; next %.3g", reg.key, reg.weight, what, alpha)
        st.problem.set_regularization_weight(alpha)
        st.refresh()
        return True

    def _parameters(self, st: "_State") -> Dict[str, float]:
        """The unknown parameters' values and Laplace standard deviations at the current point:
        the θ block of ``c · (AᵀA + μ·I_z)⁻¹``, one factorisation with a right side per parameter."""
        H = st.precision()
        n, p = st.nodes_count, st.extra
        unit = np.zeros((H.shape[0], p))
        unit[n + np.arange(p), np.arange(p)] = 1.0
        with torch.no_grad():
            scale = st.problem.noise_scale(st.batch, st.jet)
        cols = solve_spd(H, unit, self.backend).reshape(H.shape[0], p)
        var = scale * np.clip(cols[n + np.arange(p), np.arange(p)], 0.0, None)
        inferred = st.problem.inferred
        inferred.std = np.sqrt(var).tolist()
        return {f"param_{k}": v for k, v in inferred.metrics().items()}

    def pointwise_std(self, field: torch.nn.Module, problem: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
        """The Laplace approximation's standard deviation of each unknown at points ``x`` ``[M, d]``
        (``[M, C]``): ``sqrt(c · eᵀ (AᵀA + μ·I_z)⁻¹ e)`` for the row ``e`` of the unknown's value
        over the node values (and zero over the parameters), at the last step's point; an exact
        condition's factor ``B`` in ``u = g + B·N`` scales it. The right sides go in blocks of
        about 20 M numbers (a block per solve)."""
        st = self._state
        check(st is not None, "solver", "no Gauss-Newton step has been taken: nothing to estimate")
        c = field.out_dim
        E = node_jets(field, x.double(), 0, torch.ones(c, 1, dtype=torch.bool)).entries  # rows: point-major
        E = sp.hstack([E, sp.csr_matrix((E.shape[0], st.extra))], format="csr")
        H = st.precision()
        with torch.no_grad():
            scale = problem.noise_scale(st.batch, st.jet)
        var = np.empty(E.shape[0])
        chunk = int(min(max(2e7 // H.shape[0], 64), 4096))
        for start in range(0, E.shape[0], chunk):
            rows = E[start:start + chunk]
            X = solve_spd(H, rows.T.toarray(), self.backend).reshape(H.shape[0], -1)
            var[start:start + chunk] = np.asarray(rows.multiply(X.T).sum(1)).ravel()
        std = np.sqrt(scale * np.clip(var, 0.0, None)).reshape(-1, c)
        hard = getattr(problem, "hard", None)
        if hard:
            xd = x.double()
            ones, zeros = torch.ones(len(x), c, dtype=torch.float64), torch.zeros(len(x), c, dtype=torch.float64)
            std = std * (hard.values(ones, xd) - hard.values(zeros, xd)).abs().numpy()
        return std

    def _fit_dof(self, st: "_State", probes: int = 64) -> float:
        """The fraction of the observations' degrees of freedom the fit spends: tr(H)/n for the
        influence matrix ``H = A_d (AᵀA + μ·I_z)⁻¹ A_dᵀ`` of the n observation rows ``A_d`` (of
        known σ), by Hutchinson's estimator (seeded ±1 probes). A linear smoother's expected misfit
        is σ²(n − tr H), so the discrepancy principle aims there rather than at nσ²: aiming at nσ²
        over-smooths by as much as the fit resolves."""
        rows, n = st.observation_rows()
        H = st.precision()
        Ad = st.jacobian(st.system, mixed=False)[rows]
        v = np.random.default_rng(0).choice([-1.0, 1.0], size=(len(rows), probes))
        X = solve_spd(H, np.asarray(Ad.T @ v), self.backend).reshape(H.shape[0], probes)
        trace = float(np.mean(np.sum(np.asarray(Ad @ X) * v, 0)))
        return min(max(trace / max(n, 1), 0.0), 0.99)

    def _start(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> "_State":
        n = self.points or 16 * cells_total(field)
        batch = sample_for(field, problem, n, generator)
        st = _State(field, problem, batch, self.lm)
        method = self.method
        if method == "auto":
            method = "direct" if st.nodes_count <= DIRECT_LIMIT else "lsqr"
        if method == "lsqr" and st.has_linear:
            method = "cg"  # an energy's linear term: LSQR solves ‖Aδ + r‖² only
        st.method = method
        if not self.cold_start:
            z, st.bias = read_back(field)
            st.z[:st.nodes_count] = z
        st.jet = st.jet_at(st.z)
        st.system = st.linearize(st.jet)
        st.loss = st.loss_start = float(st.system.loss(st.full(st.jet)))
        return st

    def _inner(self, A: sp.csr_matrix, r: np.ndarray, g: np.ndarray, z: np.ndarray, mu: float, lam: float,
               norms2: np.ndarray) -> Tuple[np.ndarray, int]:
        """δ minimising ‖Aδ + r‖² − 2gᵀδ + μ‖z + δ‖² + λ‖δ‖², and the inner iterations."""
        method, mask = self._state.method, self._state.mask  # μ acts on the node values only
        if method == "lsqr":  # on [A; √μ I] with unit column norms; λ relative to them
            scale = 1.0 / np.sqrt(np.where(norms2 > 0, norms2, 1.0))
            root, m = np.sqrt(mu * mask), A.shape[0]
            op = spla.LinearOperator((m + A.shape[1], A.shape[1]), dtype=np.float64,
                                     matvec=lambda y: np.concatenate([A @ (scale * y), root * scale * y]),
                                     rmatvec=lambda v: scale * (A.T @ v[:m] + root * v[m:]))
            rhs = np.concatenate([-r, -root * z])
            damp = float(np.sqrt(lam / max(float(norms2.mean()), 1e-300)))
            out = spla.lsqr(op, rhs, damp=damp, atol=self.tol, btol=self.tol, iter_lim=self.maxiter)
            return scale * out[0], int(out[2])
        AtA = normal_matrix(A)
        rhs = -(A.T @ r) + g - mu * mask * z
        shift = mu * mask + lam
        M = (AtA + sp.diags(shift)).tocsr()
        if method == "direct":
            return solve_spd(M, rhs, self.backend), 0
        inv = 1.0 / (AtA.diagonal() + shift)
        count = [0]

        def counted(_: np.ndarray) -> None:
            count[0] += 1

        out, _ = spla.cg(M, rhs, rtol=self.tol, maxiter=self.maxiter, callback=counted,
                         M=spla.LinearOperator(M.shape, matvec=lambda v: inv * v))
        return out, count[0]


class _State:
    """What the steps share: the points, their jets in the node values (``NodeJets``), the
    linearisation at the current jet, and ``λ``."""

    def __init__(self, field: torch.nn.Module, problem: torch.nn.Module, batch: Any, lam: float):
        self.problem, self.batch, self.lam = problem, batch, lam
        self.x = x = batch.data["x64"].double() if "x64" in batch.data else batch.x.double()
        self.steps = 0
        self.method = "direct"
        self.jet: Optional[Jet] = None
        self.system: Optional[LinearSystem] = None
        self.loss = self.loss_start = self.objective = float("nan")
        self.mu: Optional[float] = None
        self._fixed = None if isinstance(problem, ResidualProblem) else problem.linear_system(batch)
        # The jet entries (channel, entry) the loss reads: the pattern of a linearisation at a
        # random jet (a linear problem's rows do not depend on it).
        # Unknown parameters (dinf.pdes.inferred): channels after the field's, unknowns after z.
        self.channels = field.out_dim
        self.extra = len(getattr(problem, "inferred", ()))
        width = jet_width(problem.jet_order, field.in_dim)
        # At random parameters too: at λ = 0, λ·u·u_x would not read u_x, yet a step from there does.
        saved = problem.inferred.randomize() if self.extra else None
        probe = self.linearize(random_jet(x.shape[0], field.out_dim, field.in_dim, width))
        if saved is not None:
            problem.inferred.set(saved)
        used = probe.coef.abs().amax(dim=(0, 1)) > 0  # [C (+ parameters), A]
        if probe.linear is not None:
            used |= probe.linear.abs().amax(dim=0) > 0
        self.has_linear = probe.linear is not None
        self.nodes = node_jets(field, x, problem.jet_order, used[:self.channels])
        self.layout, self.used, self.entries = self.nodes.layout, self.nodes.used, self.nodes.entries
        self.nodes_count = self.entries.shape[1]
        self.z = np.zeros(self.nodes_count + self.extra)
        self.mask = np.r_[np.ones(self.nodes_count), np.zeros(self.extra)]  # the Tikhonov term's unknowns
        if self.extra:
            self.z[self.nodes_count:] = problem.inferred.values().detach().numpy()
        self.bias = initial_bias(field)  # a cold start's constant per channel (a coefficient's init)
        self._mix = None
        self._precision: Optional[Tuple[LinearSystem, sp.csr_matrix]] = None  # (its system, AᵀA + μ·I_z)
        # Observations of known noise: their misfit is reported (and steers a discrepancy weight).
        self.observed = any(getattr(c, "sigma", 0) > 0 for c in getattr(problem, "conditions", ()))
        self.search: Optional[Union[DiscrepancySearch, RiskSearch, LCurveSearch]] = None
        self.weighed = False  # the search has chosen its weight
        self.target = float("nan")  # the discrepancy's target misfit or the risk (in σ²), or the L-curve's fit

    def refresh(self) -> None:
        """The rows, loss and objective again at the current point, after the problem's weights
        changed (a linear problem's rows too)."""
        if self._fixed is not None:
            self._fixed = self.problem.linear_system(self.batch)
        self.system = self.linearize(self.jet)
        self.loss = float(self.system.loss(self.full(self.jet)))
        self.objective = self.loss + self.mu * self.norm2(self.z)

    def jet_at(self, z: np.ndarray) -> Jet:
        """The field's jet at the node values of ``z``; its parameters (clamped into their bounds,
        in ``z`` too) go to the problem, whose linearisation reads them."""
        if self.extra:
            self.set_params(z)
        return self.nodes.jet_at(z[:self.nodes_count], self.bias)

    def full(self, jet: Jet) -> Jet:
        """``jet`` with the problem's parameter channels: what the linearised rows act on."""
        if not self.extra:
            return jet
        with torch.no_grad():
            return self.problem.extended(jet)

    def set_params(self, z: np.ndarray) -> None:
        inferred = self.problem.inferred
        inferred.set(z[self.nodes_count:])
        z[self.nodes_count:] = inferred.values().detach().numpy()

    def norm2(self, z: np.ndarray) -> float:
        """‖z‖² over the node values, each weighed by ``mask`` (the Tikhonov term leaves the
        parameters out; a refined grid's levels weigh by their own diagonal)."""
        n = self.nodes_count
        return float(z[:n] @ (self.mask[:n] * z[:n]))

    def linearize(self, jet: Jet) -> LinearSystem:
        """The problem's rows linearised at ``jet`` (a linear problem's own rows)."""
        if self._fixed is not None:
            return self._fixed
        with torch.no_grad():
            return self.problem.linearized_system(self.batch, jet)

    def precision(self) -> sp.csr_matrix:
        """``AᵀA + μ·I_z`` at the current point: the Laplace approximation's precision (over the
        noise scale) and the influence matrix's inverse. Built once per linearisation: a step that
        reports parameters' deviations and moves a regularisation weight reads it twice."""
        if self._precision is not None and self._precision[0] is self.system:
            return self._precision[1]
        AtA = normal_matrix(self.jacobian(self.system))
        # A parameter the rows do not see yet (a zero column: from the zero field, ∂r/∂λ = u·u_x = 0)
        # gets a vanishing ridge, so its variance comes out huge rather than the solve failing.
        ridge = 1e-30 * max(float(AtA.diagonal().max()), 1e-300)
        H = (AtA + sp.diags(self.mu * self.mask + ridge * (self.mask == 0))).tocsr()
        self._precision = (self.system, H)
        return H

    def observation_rows(self) -> Tuple[np.ndarray, int]:
        """The rows (before ``mix``) of the observations of known σ, and how many values they
        hold: each data condition's block of points times the equations per point."""
        sizes = self.batch.data["sizes"].tolist()
        starts = np.cumsum([0] + sizes)
        per_point = self.system.coef.shape[1]
        rows, n = [], 0
        for c, start, size in zip(self.problem.conditions, starts[1:], sizes[1:]):
            if getattr(c, "sigma", 0) > 0:
                rows.append(np.arange(start * per_point, (start + size) * per_point))
                n += size * len(c.residuals)
        return np.concatenate(rows), n

    def jacobian(self, system: LinearSystem, mixed: bool = True) -> sp.csr_matrix:
        """``A = mix · diag(coef) · E``: the residual rows' derivatives in the node values
        (``mixed`` False: without ``mix``, one row per point and equation)."""
        coef = system.coef.double()
        A = self.nodes.combine(torch.stack([coef[:, :, c, a] for c, a in self.used], -1))  # [N, E, U] weights
        if self.extra:  # a parameter's column: the rows' coefficients on its channel's value
            theta = coef[:, :, self.channels:, 0].reshape(-1, self.extra).numpy()
            A = sp.hstack([A, sp.csr_matrix(theta)], format="csr")
        if system.mix is not None and mixed:
            if self._mix is None:
                self._mix = mix_matrix(system)
            A = (self._mix @ A).tocsr()
        return A

    def linear_vector(self, system: LinearSystem) -> np.ndarray:
        """``g`` with ``ℓ = gᵀz`` for an energy's linear term (zeros without one)."""
        if system.linear is None:
            return np.zeros(self.z.shape[0])
        lin = torch.stack([system.linear.double()[:, c, a] for c, a in self.used], -1).reshape(-1).numpy()
        return np.r_[self.entries.T @ lin, np.zeros(self.extra)]
