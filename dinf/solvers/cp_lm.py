"""Levenberg–Marquardt on all factors of a factored ∂∞-Grid (``model=dinf_cp``) at once.

A problem's rows are linear in the jet entries (``linear_system``; for a nonlinear residual, its
linearisation at the current jet, ``linearized_system``), and the factored grid's jet entries are
multilinear in its 1D factors (``dinf.fields.dinf_cp``). Each row's derivative with respect to the
factors of axis ``a`` is therefore ``Σ_m α_m · B_a^(m)(x_a)``: the 1D basis of that axis
(value, first, second derivative weights; fixed by the points, computed once) scaled by
``α = ∂row/∂(factor jets)``, in closed form from leave-one-, two- and three-out products of the
factors' values (``factored_rows``: the rows themselves without forming the d×d Hessian). The Jacobian is dense over ``P = Σ_a nodes_a · C · R``
parameters (a few hundred to a few thousand), so each step forms ``JᵀJ`` by chunks of rows and
solves

    (JᵀJ + μ I + λ D) δ = −Jᵀr − μ θ,   D = diag(JᵀJ) (Marquardt's scaling) or mean(diag JᵀJ)·I

by Cholesky, then searches along ``δ`` (``dinf.solvers.damped``: halving, λ from the actual
against the predicted decrease). ``μ‖θ‖²`` (``damping``, relative to the mean of diag JᵀJ at the
start) fixes the factors' scale, which the product leaves free (g₁·s, g₂/s), and keeps the ranks
from growing into cancelling pairs. Marquardt's scaling matters: the factors' nodes differ by
orders of magnitude in how much the rows see them (a node near the domain's edge, a ghost node,
a rank that carries little); on HNd (rank 8, 8 192 points) 30 steps reach 9.5e-7 with it and
3.4e-5 with the mean.

The points are drawn once (the steps minimise one loss). A step costs ``rows · P²`` for ``JᵀJ``
and ``P³ / 3`` for the factorisation.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor

from dinf.errors import ConfigError, check, check_choice
from dinf.fields.dinf_cp import DInfCP, cp_jet, exclusive_products, factored_parts
from dinf.fields.warped import sample_for
from dinf.linear_system import LinearSystem
from dinf.pdes.capabilities import LinearProblem, ResidualProblem
from dinf.solvers.base import SolveSolver
from dinf.solvers.damped import damped_step


SCALINGS = ("mean", "diagonal")  # λ times mean(diag JᵀJ)·I, or times diag(JᵀJ) (Marquardt's)


class CPLevenbergMarquardt(SolveSolver):
    """One Levenberg–Marquardt step per training step on a factored grid's factors.

    ``points``: collocation points, drawn once (null: the problem's ``batch_size``).
    ``damping``: Tikhonov weight on the factors, relative to the mean diagonal of JᵀJ at the
    start. ``lm``: the initial λ (same scale). ``rtol``: a step that lowers the objective by less
    than this fraction ends the run. ``halvings``: line-search halvings before a step is refused
    and λ raised ×10. ``max_solves``: at most this many steps (null: ``trainer.max_steps``).
    ``chunk``: rows per block of the Jacobian (memory: chunk · P · 8 bytes). The first step
    starts from the field as it is (its initialisation, a checkpoint, or ``warm_start_steps``
    Adam steps at ``warm_start_lr``): a zero field would be a saddle of the multilinear loss.
    """

    prefix = "lm"
    name = "Levenberg–Marquardt (factored grid)"

    def __init__(self, points: Optional[int] = None, damping: float = 1e-10, lm: float = 1e-3,
                 rtol: float = 1e-9, halvings: int = 4, max_solves: Optional[int] = None, chunk: int = 4096,
                 warm_start_steps: int = 0, warm_start_lr: float = 1e-2, scaling: str = "diagonal"):
        super().__init__()
        check(points is None or int(points) > 0, "points", f"must be > 0, got {points!r}")
        check(damping >= 0, "damping", f"must be >= 0, got {damping!r}")
        check(lm >= 0, "lm", f"must be >= 0, got {lm!r}")
        check(rtol >= 0, "rtol", f"must be >= 0, got {rtol!r}")
        check(int(halvings) >= 0, "halvings", f"must be >= 0, got {halvings!r}")
        check(max_solves is None or int(max_solves) >= 1, "max_solves", f"must be >= 1 or null, got {max_solves!r}")
        check(int(chunk) >= 1, "chunk", f"must be >= 1, got {chunk!r}")
        check(int(warm_start_steps) >= 0, "warm_start_steps", f"must be >= 0, got {warm_start_steps!r}")
        self.points = None if points is None else int(points)
        self.damping, self.lm, self.rtol, self.halvings = float(damping), float(lm), float(rtol), int(halvings)
        self.max_solves = None if max_solves is None else int(max_solves)
        self.chunk = int(chunk)
        check_choice("scaling", scaling, SCALINGS)
        self.scaling = scaling
        self.warm_start_steps, self.warm_start_lr = int(warm_start_steps), float(warm_start_lr)
        self._state: Optional[_State] = None

    # --- the protocol -----------------------------------------------------------------------
    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        """A factored grid (``model=dinf_cp``) and a loss of squared rows of the jet."""
        if not isinstance(problem, (LinearProblem, ResidualProblem)):
            raise ConfigError("solver", f"Levenberg-Marquardt on the factored grid needs a loss of squared residuals; "
                              f"{type(problem).__name__} states none (use solver=adam)")
        try:
            factored_parts(field)
        except ConfigError as e:
            raise ConfigError(e.key, f"Levenberg-Marquardt on factors {e.detail}") from None
        if isinstance(problem, LinearProblem) and not isinstance(problem, ResidualProblem):
            problem.check_linear()

    def trainer_steps(self, trainer: DictConfig) -> Dict[str, Any]:
        return {"max_steps": min(self.max_solves or trainer.max_steps, trainer.max_steps), "val_check_interval": 1}

    # --- one step ---------------------------------------------------------------------------
    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        t0 = time.perf_counter()
        if self._state is None:  # from the field as it is: its initialisation, a checkpoint or Adam's warm start
            self._state = _State(field, problem, self._batch(field, problem, generator), self.chunk, self.lm)
        st = self._state
        t1 = time.perf_counter()
        JtJ, Jtr, diag_mean = st.normal_equations(st.theta)
        if st.mu is None:  # the Tikhonov weight, fixed at the start: one objective for every step
            st.mu = self.damping * diag_mean
            st.objective = st.loss + st.mu * float(st.theta @ st.theta)
            st.loss_start = st.loss
        lam = st.lam
        t2 = time.perf_counter()
        diag = JtJ.diagonal()
        scale = diag_mean if self.scaling == "mean" else diag.clamp_min(1e-12 * diag_mean)
        delta = _solve(JtJ, -(Jtr + st.mu * st.theta), st.mu + lam * scale)
        t3 = time.perf_counter()
        predicted = float(2.0 * delta @ Jtr + delta @ (JtJ @ delta) + st.mu * (2.0 * st.theta @ delta + delta @ delta))

        def evaluate(theta1: Tensor) -> Tuple[float, Any]:
            loss1, payload = st.loss_at(theta1)
            return loss1 + st.mu * float(theta1 @ theta1), payload

        step = damped_step(evaluate, st.theta, delta, st.objective, predicted, lam, self.halvings, self.rtol)
        t4 = time.perf_counter()
        st.lam = step.lam
        if step.z is not None:
            st.theta, st.objective = step.z, step.objective
            st.loss, st.system, st.residual = step.payload
            st.write(st.theta)
        st.steps += 1
        self.info = {"loss": st.loss, "loss_zero": st.loss_start, "step": step.alpha, "lm": lam,
                     "assemble_s": t2 - t1 + (t1 - t0), "solve_s": t3 - t2, "line_search_s": t4 - t3,
                     "rows": st.rows, "unknowns": int(st.theta.numel()), "converged": step.converged}
        return self.info

    def _batch(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Any:
        n = self.points or int(getattr(problem, "batch_size", 16384))
        return sample_for(field, problem, n, generator)


def _solve(JtJ: Tensor, rhs: Tensor, shift: Any) -> Tensor:
    """``(JᵀJ + diag(shift))⁻¹ rhs`` (``shift`` a number or one per unknown) by Cholesky, by least
    squares if round-off breaks the factorisation."""
    M = JtJ.clone()
    M.diagonal().add_(shift)
    L, info = torch.linalg.cholesky_ex(M)
    if int(info) == 0:
        return torch.cholesky_solve(rhs[:, None], L)[:, 0]
    return torch.linalg.lstsq(M, rhs[:, None]).solution[:, 0]


class _State:
    """The points, their fixed 1D bases, the rows, and the factors as one float64 vector."""

    def __init__(self, field: torch.nn.Module, problem: torch.nn.Module, batch: Any, chunk: int, lam: float):
        self.grid, lo, scale = factored_parts(field)
        grid: DInfCP = self.grid
        self.problem, self.batch, self.chunk = problem, batch, chunk
        self.order = problem.jet_order
        x = batch.data["x64"].double() if "x64" in batch.data else batch.x.double()
        lo, scale = lo.to(x), scale.to(x)
        u = (x - lo) * scale - 1.0  # the grid's coordinates; d x_unit / d x = scale per axis
        self.n, self.d = x.shape
        self.C, self.R = grid.out_dim, grid.rank
        # Per axis: columns [N, M] and weights [N, m, M] in the problem's units (chain rule of the map).
        self.cols: List[Tensor] = []
        self.weights: List[Tensor] = []
        with torch.no_grad():
            for a in range(self.d):
                c, w = grid.axis_basis(u[:, a].to(torch.float64), a, self.order)
                powers = torch.tensor([float(scale[a]) ** m for m in range(self.order + 1)], dtype=torch.float64,
                                      device=w.device)
                self.cols.append(c)
                self.weights.append(w.double() * powers[:, None])
        self.sizes = [n * self.C * self.R for n in grid.nodes_per_axis]
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int).tolist()
        # A linear problem's rows do not depend on the jet: built once.
        self._fixed: Optional[LinearSystem] = None
        if isinstance(problem, LinearProblem) and (not isinstance(problem, ResidualProblem)
                                                   or problem.nonlinear_term() is None):
            with torch.no_grad():
                self._fixed = problem.linear_system(batch)
            self._check(self._fixed)
        self.theta = self.read()
        self.lam = lam
        self.mu: Optional[float] = None
        self.objective = float("nan")
        self.steps = 0
        self.loss = self.loss_start = float("nan")
        self.system: Optional[LinearSystem] = None
        self.residual: Optional[Tensor] = None
        self.rows = 0

    # --- the factors as a vector ------------------------------------------------------------
    def read(self) -> Tensor:
        return torch.cat([f.detach().double().reshape(-1) for f in self.grid.factors])

    def write(self, theta: Tensor) -> None:
        with torch.no_grad():
            for f, s, n in zip(self.grid.factors, self.starts, self.sizes):
                f.copy_(theta[s:s + n].reshape(f.shape).to(f.dtype))

    def factor_jets(self, theta: Tensor, rows: slice = slice(None)) -> Tensor:
        """``[n, d, m, C, R]`` at the points ``rows`` for factors ``theta``."""
        out = []
        for a in range(self.d):
            F = theta[self.starts[a]:self.starts[a] + self.sizes[a]].reshape(-1, self.C, self.R)
            out.append(torch.einsum("nmk,nkcr->nmcr", self.weights[a][rows], F[self.cols[a][rows]]))
        return torch.stack(out, 1)

    # --- rows ---------------------------------------------------------------------------------
    def _check(self, system: LinearSystem) -> None:
        if system.linear is not None:
            raise ConfigError("solver", "Levenberg-Marquardt on factors minimises squared rows; this problem's energy "
                              "has a linear term (use solver=adam)")

    def loss_at(self, theta: Tensor) -> Tuple[float, Tuple[float, LinearSystem, Tensor]]:
        """The loss at ``theta`` and what the next step reuses: ``(loss, rows, residual)``."""
        with torch.no_grad():
            q = self.factor_jets(theta)
            system = self._fixed
            if system is None:  # a nonlinear residual: its rows linearised at this jet
                system = self.problem.linearized_system(self.batch, cp_jet(q, self.order))
                self._check(system)
            rho = torch.cat([factored_rows(q[s:s + self.chunk], system.coef[s:s + self.chunk].double())[0]
                             for s in range(0, self.n, self.chunk)])
            if system.mix is not None:
                rho = torch.sparse.mm(system.mix.double(), rho.reshape(-1, 1)).reshape(-1, rho.shape[1])
            r = (rho - system.rhs.to(rho)).reshape(-1)
        loss = float(r @ r)
        return loss, (loss, system, r)

    def normal_equations(self, theta: Tensor) -> Tuple[Tensor, Tensor, float]:
        """``JᵀJ`` ``[P, P]``, ``Jᵀr`` ``[P]`` at ``theta`` (the current point), and the mean of
        ``diag JᵀJ``."""
        if self.system is None:
            self.loss, self.system, self.residual = self.loss_at(theta)[1]
        system, r = self.system, self.residual
        self.rows = int(r.numel())
        P = int(theta.numel())
        coef = system.coef.double()
        if system.mix is not None:  # measured rows mix points: the whole Jacobian at once
            J = torch.cat([self._jacobian(theta, coef[s:s + self.chunk], slice(s, s + self.chunk))
                           for s in range(0, self.n, self.chunk)])
            J = torch.sparse.mm(system.mix.double(), J)
            JtJ, Jtr = J.T @ J, J.T @ r
        else:
            E = coef.shape[1]
            JtJ = theta.new_zeros(P, P)
            Jtr = theta.new_zeros(P)
            for s in range(0, self.n, self.chunk):
                rows = slice(s, min(s + self.chunk, self.n))
                J = self._jacobian(theta, coef[rows], rows)
                JtJ.addmm_(J.T, J)
                Jtr.addmv_(J.T, r[rows.start * E:rows.stop * E])
        return JtJ, Jtr, float(JtJ.diagonal().mean())

    def _jacobian(self, theta: Tensor, coef: Tensor, rows: slice) -> Tensor:
        """Dense ``[n·E, P]``: the pointwise rows' derivatives in the factors at points ``rows``."""
        q = self.factor_jets(theta, rows)
        alpha = factored_rows(q, coef, derivatives=True)[1]  # [n, E, d, m, C, R]
        n, E = alpha.shape[:2]
        P = int(theta.numel())
        J = theta.new_zeros(n, E, P)
        CR = self.C * self.R
        for ax in range(self.d):
            w = self.weights[ax][rows]  # [n, m, M]
            vals = torch.einsum("nemcr,nmk->nekcr", alpha[:, :, ax], w).reshape(n, E, -1)  # [n, E, M·C·R]
            cols = self.cols[ax][rows]  # [n, M]
            idx = (self.starts[ax] + cols[:, :, None] * CR + torch.arange(CR, device=cols.device)).reshape(n, 1, -1).expand(n, E, -1)
            J.scatter_add_(2, idx, vals)
        return J.reshape(n * E, P)


def leave_two_out(v: Tensor) -> Tensor:
    """``[N, d, ...]`` → ``[N, d, d, ...]``: ``out[:, i, j] = Π_{l∉{i,j}} v_l`` (``Π_{l≠i}`` on i = j)."""
    d = v.shape[1]
    eye = torch.eye(d, dtype=torch.bool, device=v.device).reshape(1, d, d, *([1] * (v.dim() - 2)))
    m = torch.where(eye, torch.ones_like(v).unsqueeze(1), v.unsqueeze(1))  # row i: v with v_i = 1
    return exclusive_products(m, 2)


def factored_rows(q: Tensor, coef: Tensor, derivatives: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
    """The rows ``ρ[n, e] = Σ_{c,a} coef[n, e, c, a] · J_a(u_c)`` of a factored field with factor
    jets ``q`` ``[N, d, m, C, R]``, without forming its jet, and with ``derivatives`` their
    derivatives in the factor jets, ``α`` ``[N, E, d, m, C, R]``.

    ``J_a`` reads per axis a derivative order μ_l ∈ {0, 1, 2} (value: none; ∂_j: μ_j = 1; ∂_jj:
    μ_j = 2; ∂_jk: μ_j = μ_k = 1), so ``∂J_a/∂q_i^(m) = [μ_i = m] Σ_r Π_{l≠i} q_l^(μ_l)``: the
    products over the other axes, from leave-one-, two- and (for mixed entries) three-out
    products of the values. ``O(N d² C R)`` without mixed entries, ``O(N d³ C R)`` with them."""
    n, d, m, C, R = q.shape
    E, A = coef.shape[1], coef.shape[-1]
    v = q[:, :, 0]  # [N, d, C, R]
    loo = exclusive_products(v, 1) if d > 1 else torch.ones_like(v)
    c0 = coef[..., 0]  # [N, E, C]
    rho = torch.einsum("nec,ncr->ne", c0, v[:, 0] * loo[:, 0])
    alpha = None
    if derivatives:
        alpha = q.new_zeros(n, E, d, m, C, R)
        alpha[:, :, :, 0] += c0[:, :, None, :, None] * loo[:, None]
    if A == 1:
        return rho, alpha
    # Entries on one axis: ∂_j (μ_j = 1) and ∂_jj (μ_j = 2), coefficients G[n, e, c, j, μ].
    G = coef.new_zeros(n, E, C, d, m)
    G[..., 1] = coef[..., 1:1 + d]
    mixed = None
    if A > 1 + d:
        H = coef[..., 1 + d:1 + d + d * d].reshape(n, E, C, d, d)
        G[..., 2] = H.diagonal(dim1=-2, dim2=-1)
        off = H - torch.diag_embed(H.diagonal(dim1=-2, dim2=-1))
        if bool(off.ne(0).any()):
            mixed = off + off.transpose(-1, -2)  # symmetric, zero diagonal: K_jk = H_jk + H_kj
    T = torch.einsum("necjm,njmcr->necrj", G, q)  # the entries' values per axis and rank, before the products
    rho = rho + torch.einsum("necrj,njcr->ne", T, loo)
    two = None
    if d > 1 and (derivatives or mixed is not None):
        two = leave_two_out(v)  # [N, i, j, C, R]
        eye = torch.eye(d, dtype=torch.bool, device=q.device)[None, :, :, None, None]
        two = torch.where(eye, torch.zeros_like(two), two)  # distinct i, j only
    if derivatives:
        alpha += torch.einsum("necjm,njcr->nejmcr", G, loo)
        if two is not None:
            alpha[:, :, :, 0] += torch.einsum("necrj,nijcr->neicr", T, two)
    if mixed is not None:
        d1 = q[:, :, 1]  # [N, d, C, R]
        dd = d1.unsqueeze(2) * d1.unsqueeze(1) * two  # [N, j, k, C, R]: d_j d_k Π_{l∉{j,k}} v_l
        rho = rho + 0.5 * torch.einsum("necjk,njkcr->ne", mixed, dd)
        if derivatives:
            alpha[:, :, :, 1] += torch.einsum("necjk,nkcr,njkcr->nejcr", mixed, d1, two)
            if d > 2:
                # Leave-three-out: for each i, the leave-two-out products of v with v_i = 1.
                eye = torch.eye(d, dtype=torch.bool, device=q.device).reshape(1, d, d, 1, 1)
                ones_i = torch.where(eye, torch.ones_like(v).unsqueeze(1), v.unsqueeze(1))  # [N, i, l, C, R]
                three = leave_two_out(ones_i.reshape(n * d, d, C, R)).reshape(n, d, d, d, C, R)  # [N, i, j, k]
                three = torch.where(_distinct3(d, q.device), three, torch.zeros_like(three))
                alpha[:, :, :, 0] += 0.5 * torch.einsum("necjk,njcr,nkcr,nijkcr->neicr", mixed, d1, d1, three)
    return rho, alpha


def _distinct3(d: int, device: torch.device) -> Tensor:
    """``[1, d, d, d, 1, 1]``: True where i, j, k are pairwise distinct."""
    i = torch.arange(d, device=device)
    a, b, c = i[:, None, None], i[None, :, None], i[None, None, :]
    return ((a != b) & (a != c) & (b != c)).reshape(1, d, d, d, 1, 1)
