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
the new point, ``cov = c · (AᵀA + μ·I_z)⁻¹``, ``c`` the problem's noise scale (``noise_scale``).

The points are drawn once: the steps minimise one loss, so each step's decrease is real.
"""
from __future__ import annotations

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
from dinf.fields.warped import sample_for
from dinf.errors import ConfigError, check, check_choice
from dinf.jet import Jet
from dinf.linear_system import LinearSystem, mix_matrix
from dinf.solvers.least_squares import DIRECT_LIMIT, cells_total, check_basis, read_back, warm_up_solves, write_back
from dinf.solvers.linalg.node_jets import NodeJets, random_jet
from dinf.solvers.linalg.gram import normal_matrix
from dinf.solvers.linalg.sparse_solve import check_backend, solve_spd

METHODS = ("auto", "direct", "cg", "lsqr")


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
        check_basis(field, "Gauss-Newton")

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
            st.objective = st.loss + st.mu * st.norm2(st.z)
        t2 = time.perf_counter()
        delta, inner = self._inner(A, r0, g, st.z, st.mu, lam * float(norms2.mean()), norms2)
        t3 = time.perf_counter()
        # The model's predicted change of the objective at δ, and the actual objective along δ.
        Ad = A @ delta
        dz = delta * st.mask
        predicted = float(np.sum((r0 + Ad) ** 2) - np.sum(r0**2) - 2.0 * g @ delta
                          + st.mu * (2.0 * st.z @ dz + dz @ dz))

        def evaluate(z1: np.ndarray) -> Tuple[float, Any]:
            jet1 = st.jet_at(z1)
            system1 = st.linearize(jet1)
            loss1 = float(system1.loss(st.full(jet1)))
            return loss1 + st.mu * st.norm2(z1), (jet1, system1, loss1)

        step = damped_step(evaluate, st.z, delta, st.objective, predicted, lam, self.halvings, self.rtol)
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
        self.info = {"loss": st.loss, "loss_zero": st.loss_start, "step": step.alpha, "lm": lam,
                     "inner_iterations": inner, "assemble_s": t2 - t1 + (t1 - t0), "solve_s": t3 - t2,
                     "line_search_s": t4 - t3, "rows": A.shape[0], "unknowns": A.shape[1], "nnz": A.nnz,
                     "method": st.method, "converged": step.converged, **extra}
        return self.info

    def _parameters(self, st: "_State") -> Dict[str, float]:
        """The unknown parameters' values and Laplace standard deviations at the current point:
        the θ block of ``c · (AᵀA + μ·I_z)⁻¹``, one factorisation with a right side per parameter."""
        A = st.jacobian(st.system)
        AtA = normal_matrix(A)
        # A parameter the rows do not see yet (a zero column: from the zero field, ∂r/∂λ = u·u_x = 0)
        # gets a vanishing ridge, so its variance comes out huge rather than the solve failing.
        ridge = 1e-30 * max(float(AtA.diagonal().max()), 1e-300)
        H = AtA + sp.diags(st.mu * st.mask + ridge * (1.0 - st.mask))
        n, p = st.nodes_count, st.extra
        unit = np.zeros((H.shape[0], p))
        unit[n + np.arange(p), np.arange(p)] = 1.0
        with torch.no_grad():
            scale = st.problem.noise_scale(st.batch, st.jet)
        cols = solve_spd(H.tocsr(), unit, self.backend).reshape(H.shape[0], p)
        var = scale * np.clip(cols[n + np.arange(p), np.arange(p)], 0.0, None)
        inferred = st.problem.inferred
        inferred.std = np.sqrt(var).tolist()
        return {f"param_{k}": v for k, v in inferred.metrics().items()}

    def _start(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> "_State":
        n = self.points or 16 * cells_total(field)
        batch = sample_for(field, problem, n, generator)
        st = _State(field, problem, batch, self.lm)
        method = self.method
        if method == "auto":
            method = "direct" if st.layout.nodes * field.out_dim <= DIRECT_LIMIT else "lsqr"
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
            root, m = np.sqrt(mu) * mask, A.shape[0]
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
        self.nodes = NodeJets(field, x, problem.jet_order, used[:self.channels])
        self.layout, self.used, self.entries = self.nodes.layout, self.nodes.used, self.nodes.entries
        self.nodes_count = self.entries.shape[1]
        self.z = np.zeros(self.nodes_count + self.extra)
        self.mask = np.r_[np.ones(self.nodes_count), np.zeros(self.extra)]  # the Tikhonov term's unknowns
        if self.extra:
            self.z[self.nodes_count:] = problem.inferred.values().detach().numpy()
        self.bias = np.zeros(field.out_dim)
        self._mix = None

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
        """‖z‖² over the node values (the Tikhonov term leaves the parameters out)."""
        return float(z[:self.nodes_count] @ z[:self.nodes_count])

    def linearize(self, jet: Jet) -> LinearSystem:
        """The problem's rows linearised at ``jet`` (a linear problem's own rows)."""
        if self._fixed is not None:
            return self._fixed
        with torch.no_grad():
            return self.problem.linearized_system(self.batch, jet)

    def jacobian(self, system: LinearSystem) -> sp.csr_matrix:
        """``A = mix · diag(coef) · E``: the residual rows' derivatives in the node values."""
        coef = system.coef.double()
        A = self.nodes.combine(torch.stack([coef[:, :, c, a] for c, a in self.used], -1))  # [N, E, U] weights
        if self.extra:  # a parameter's column: the rows' coefficients on its channel's value
            theta = coef[:, :, self.channels:, 0].reshape(-1, self.extra).numpy()
            A = sp.hstack([A, sp.csr_matrix(theta)], format="csr")
        if system.mix is not None:
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
