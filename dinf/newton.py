"""Newton on energies: a problem whose loss is an energy of the jet (the cloth) in a few solves.

The energy is ``Σ_n w e(J_n, x_n)`` over points drawn once, ``e`` the problem's energy density
(``energy_density``) and ``w`` its measure over the point count. With ``J = E z``
(``dinf.node_jets``) the gradient in the node values is ``Eᵀ g`` and the Hessian ``Eᵀ H E``, with
``g`` and ``H`` each point's derivatives of ``e`` in its jet entries (autograd: one backward pass
per entry for ``H``). Each point's ``H`` is projected onto the positive semi-definite matrices
(its negative eigenvalues set to zero: "projected Newton"), so every step descends even where
the energy is not convex (a membrane under compression), and factored as ``LᵀL``; the system
``(AᵀA + (μ + λ)I) δ = −Eᵀg − μz`` with ``A = blockdiag(L) E`` then reuses Gauss–Newton's
solves, Tikhonov term, Levenberg–Marquardt ``λ`` and line search.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from dinf.equations.residual import jet_width
from dinf.fields.warped import sample_for
from dinf.errors import ConfigError
from dinf.gauss_newton import GaussNewton, line_search, next_lm
from dinf.jet import Jet
from dinf.lsq import cells_total, check_basis, read_back, write_back
from dinf.node_jets import NodeJets, random_jet
from dinf.sparse_solve import normal_matrix, solve_spd


class Newton(GaussNewton):
    """One projected Newton step per training step, for problems with ``energy_density``; the
    options are Gauss–Newton's (``method`` is always a direct solve)."""

    prefix = "newton"

    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        if not hasattr(problem, "energy_density"):
            raise ConfigError("optimizer", f"Newton needs an energy density; {type(problem).__name__} states none "
                              "(use optimizer=gauss_newton for squared residuals, or adam)")
        check_basis(field, "Newton")

    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        self.check(field, problem)
        t0 = time.perf_counter()
        if self._state is None:
            self._state = _EnergyState(field, problem, self.points or 16 * cells_total(field), generator, self.lm)
            st = self._state
            if not self.cold_start:
                st.z, st.bias = read_back(field)
            st.energy = st.loss_start = st.total(st.z)
        st = self._state
        lam = st.lam
        grad, A = st.derivatives(st.z)
        AtA = normal_matrix(A)
        mean_diag = float(AtA.diagonal().mean())
        if st.mu is None:
            st.mu = self.damping * mean_diag
        objective = st.energy + st.mu * float(st.z @ st.z)
        t1 = time.perf_counter()
        rhs = -grad - st.mu * st.z
        M = AtA + (st.mu + lam * mean_diag) * sp.identity(AtA.shape[0], format="csr")
        delta = solve_spd(M, rhs, self.backend)
        t2 = time.perf_counter()
        Ad = A @ delta
        predicted = float(grad @ delta + 0.5 * Ad @ Ad + st.mu * (st.z @ delta + 0.5 * delta @ delta))

        def evaluate(z1: np.ndarray) -> Tuple[float, float]:
            energy = st.total(z1)
            return energy + st.mu * float(z1 @ z1), energy

        alpha, z1, objective1, energy1 = line_search(evaluate, st.z, delta, objective, self.halvings)
        t3 = time.perf_counter()
        decrease = objective - objective1
        st.lam = next_lm(lam, alpha, decrease, predicted)
        if z1 is not None:
            st.z, st.energy = z1, energy1
            write_back(field, st.z, st.nodes.layout, st.bias)
        converged = z1 is not None and decrease <= self.rtol * abs(objective)
        self.info = {"loss": st.energy, "loss_zero": st.loss_start, "step": alpha, "lm": lam,
                     "assemble_s": t1 - t0, "solve_s": t2 - t1, "line_search_s": t3 - t2,
                     "unknowns": A.shape[1], "nnz": AtA.nnz, "method": "direct", "converged": converged}
        return self.info


class _EnergyState:
    """The points, their jets in the node values, and the energy's derivatives there."""

    def __init__(self, field: torch.nn.Module, problem: torch.nn.Module, n: int, generator: torch.Generator,
                 lam: float):
        self.problem, self.lam = problem, lam
        batch = sample_for(field, problem, n, generator)
        self.x = batch.x.double()
        self.weight = float(problem.energy_measure) / self.x.shape[0]
        width = jet_width(problem.jet_order, field.in_dim)
        # The entries the energy reads: its gradient's pattern at a random jet.
        probe = random_jet(self.x.shape[0], field.out_dim, field.in_dim, width)
        leaves = [t.requires_grad_(True) for t in (probe.value, probe.grad, probe.hess) if t is not None]
        with torch.enable_grad():
            e = problem.energy_density(Jet(*(leaves + [None] * (3 - len(leaves)))), self.x).sum()
            grads = torch.autograd.grad(e, leaves, allow_unused=True)
        n_pts, c = self.x.shape[0], field.out_dim
        pattern = torch.cat([(g if g is not None else torch.zeros_like(t)).reshape(n_pts, c, -1)
                             for g, t in zip(grads, leaves)], -1)
        self.nodes = NodeJets(field, self.x, problem.jet_order, pattern.abs().amax(0) > 0)
        self.z = np.zeros(self.nodes.entries.shape[1])
        self.bias = np.zeros(c)
        self.mu: Optional[float] = None
        self.energy = self.loss_start = float("nan")

    def _values(self, z: np.ndarray) -> Tensor:
        return torch.as_tensor(self.nodes.entries @ z).reshape(self.x.shape[0], len(self.nodes.used))

    def total(self, z: np.ndarray) -> float:
        """The energy at node values ``z``."""
        with torch.no_grad():
            jet = self.nodes.jet_of(self._values(z), self.bias)
            return float(self.weight * self.problem.energy_density(jet, self.x).sum())

    def point_derivatives(self, z: np.ndarray) -> tuple:
        """Each point's gradient ``[N, U]`` and Hessian ``[N, U, U]`` of its weighted energy in
        the jet entries it reads, at node values ``z``."""
        values = self._values(z).requires_grad_(True)
        u = values.shape[1]
        with torch.enable_grad():
            e = self.weight * self.problem.energy_density(self.nodes.jet_of(values, self.bias), self.x).sum()
            (g,) = torch.autograd.grad(e, values, create_graph=True)
            # One backward pass per entry: 0.79 s for the cloth's 21 at 16 384 points; one batched
            # pass (is_grads_batched) took 2.0 s.
            rows = [torch.autograd.grad(g[:, k].sum(), values, retain_graph=k + 1 < u, allow_unused=True)[0]
                    for k in range(u)]
        H = torch.stack([r if r is not None else torch.zeros_like(values) for r in rows], 1).detach()
        return g.detach(), 0.5 * (H + H.transpose(1, 2))

    def derivatives(self, z: np.ndarray) -> tuple:
        """The gradient ``Eᵀg`` and ``A`` with ``AᵀA = Eᵀ H₊ E`` (``H₊``: each point's Hessian,
        projected onto the positive semi-definite matrices)."""
        g, H = self.point_derivatives(z)
        lam, Q = torch.linalg.eigh(H)
        L = lam.clamp(min=0.0).sqrt()[:, :, None] * Q.transpose(1, 2)  # H₊ = LᵀL
        return self.nodes.entries.T @ g.reshape(-1).numpy(), self.nodes.combine(L)
