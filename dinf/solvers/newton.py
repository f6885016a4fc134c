"""Newton on energies: a problem whose loss is an energy of the jet (the cloth) in a few solves.

The energy is ``Σ_n w_n e(J_n, x_n)`` over points fixed at the start, ``e`` the problem's energy
density (``energy_density``): random points with equal weights (``energy_measure`` over their
count), or Gauss–Legendre points in every cell with their weights (``quadrature``), the cells
where that rule misjudges the starting energy split further. With ``J = E z``
(``dinf.solvers.linalg.node_jets``) the gradient in the node values is ``Eᵀ g`` and the Hessian ``Eᵀ H E``, with
``g`` and ``H`` each point's derivatives of ``w e`` in its jet entries.

"Projected Newton": each point's ``H`` is made positive semi-definite, so every step descends
even where the energy is not convex (a membrane under compression). A problem that states its
derivatives in closed form (``energy_derivatives(jet, x, project=True)``) does that itself, term
by term; otherwise autograd gives ``H`` (one backward pass per entry) and its negative
eigenvalues are set to zero. ``Eᵀ H₊ E`` is summed from dense blocks of the points that share
their nodes (``GroupedHessian``), and ``(Eᵀ H₊ E + (μ + λ)I) δ = −Eᵀg − μz`` is solved directly
(PARDISO keeps its analysis of the fixed pattern) with Gauss–Newton's Tikhonov term,
Levenberg–Marquardt ``λ`` and line search.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from dinf.equations.residual import jet_width
from dinf.errors import ConfigError, check
from dinf.fields.warped import sample_for
from dinf.pdes.capabilities import EnergyProblem
from dinf.solvers.damped import damped_step
from dinf.solvers.gauss_newton import GaussNewton
from dinf.jet import Jet
from dinf.solvers.least_squares import cells_total, check_basis, read_back, write_back
from dinf.solvers.linalg.node_jets import GroupedHessian, NodeJets, random_jet, symmetric_entries
from dinf.solvers.linalg.sparse_solve import PatternSolver


class Newton(GaussNewton):
    """One projected Newton step per training step, for problems with ``energy_density``.

    The options are Gauss–Newton's (``method`` is always a direct solve), and ``quadrature``:
    ``q`` Gauss–Legendre points per axis in every finest-level cell instead of ``points`` random
    ones (null); ``refine``: cells where that rule's energy at the start differs from the rule of
    one more point per axis by more than ``refine_tol`` of the total get ``refine`` × ``refine``
    sub-cells of it (``refined_quadrature``). ``warm_start_steps``: Adam steps before the first
    solve (``dinf.app.module``)."""

    prefix = "newton"
    name = "Newton"

    def __init__(self, points: Optional[int] = None, quadrature: Optional[int] = None, refine: int = 1,
                 refine_tol: float = 1e-4, damping: float = 1e-10, lm: float = 1e-6, rtol: float = 1e-6,
                 halvings: int = 8, cold_start: bool = True, backend: str = "auto", warm_start_steps: int = 0,
                 warm_start_lr: float = 1e-2, max_solves: Optional[int] = None):
        super().__init__(points=points, damping=damping, lm=lm, method="direct", rtol=rtol, halvings=halvings,
                         cold_start=cold_start, backend=backend, warm_start_steps=warm_start_steps,
                         warm_start_lr=warm_start_lr, max_solves=max_solves)
        check(quadrature is None or int(quadrature) >= 1, "quadrature", f"must be >= 1 or null, got {quadrature!r}")
        check(int(refine) >= 1, "refine", f"must be >= 1, got {refine!r}")
        check(refine_tol >= 0, "refine_tol", f"must be >= 0, got {refine_tol!r}")
        self.quadrature = None if quadrature is None else int(quadrature)
        self.refine, self.refine_tol = int(refine), float(refine_tol)

    def check(self, field: torch.nn.Module, problem: torch.nn.Module) -> None:
        if not isinstance(problem, EnergyProblem):
            raise ConfigError("solver", f"Newton needs an energy density; {type(problem).__name__} states none "
                              "(use solver=gauss_newton for squared residuals, or adam)")
        check_basis(field, "Newton")
        if self.quadrature is not None and callable(getattr(field, "spacing", None)):
            raise ConfigError("solver.quadrature", "needs uniform cells; a graded grid (grid.focus) "
                              "takes random points (quadrature=null)")

    def solve(self, field: torch.nn.Module, problem: torch.nn.Module, generator: torch.Generator) -> Dict[str, Any]:
        self.check(field, problem)
        t0 = time.perf_counter()
        if self._state is None:
            z, bias = (None, None) if self.cold_start else read_back(field)
            self._state = _EnergyState(field, problem, self, generator, z, bias)
        st = self._state
        lam = st.lam
        t1 = time.perf_counter()
        g, Hn, projected = st.point_derivatives(st.z)
        grad = st.nodes.transpose(g.numpy())  # Eᵀ g
        t2 = time.perf_counter()
        H = st.hessian.upper(Hn)  # Eᵀ H₊ E, its upper triangle
        diag = H.data[st.hessian.diagonal]
        mean_diag = float(diag.mean())
        if st.mu is None:
            st.mu = self.damping * mean_diag
        objective = st.energy + st.mu * float(st.z @ st.z)
        M = H.copy()
        M.data[st.hessian.diagonal] += st.mu + lam * mean_diag
        t3 = time.perf_counter()
        delta = st.factor(M, -grad - st.mu * st.z)
        t4 = time.perf_counter()
        # δᵀ(Eᵀ H₊ E)δ from its upper half
        curvature = 2.0 * float(delta @ (H @ delta)) - float(diag @ (delta * delta))
        predicted = float(grad @ delta + 0.5 * curvature + st.mu * (st.z @ delta + 0.5 * delta @ delta))

        def evaluate(z1: np.ndarray) -> Tuple[float, float]:
            energy = st.total(z1)
            return energy + st.mu * float(z1 @ z1), energy

        step = damped_step(evaluate, st.z, delta, objective, predicted, lam, self.halvings, self.rtol)
        t5 = time.perf_counter()
        st.lam = step.lam
        if step.z is not None:
            st.z, st.energy = step.z, step.payload
            write_back(field, st.z, st.nodes.layout, st.bias)
        self.info = {"loss": st.energy, "loss_zero": st.loss_start, "step": step.alpha, "lm": lam,
                     "setup_s": t1 - t0, "derivatives_s": t2 - t1, "assemble_s": t3 - t2, "solve_s": t4 - t3,
                     "line_search_s": t5 - t4, "projected": projected, "points": st.x.shape[0],
                     "unknowns": H.shape[1], "nnz": 2 * H.nnz - H.shape[0], "method": "direct",
                     "converged": step.converged}
        return self.info


def cell_quadrature(field: torch.nn.Module, order: int, split: int = 1) -> Tuple[Tensor, Tensor, Tensor]:
    """``order`` Gauss–Legendre points per axis in each of ``split``^d sub-cells of every
    finest-level cell of the field's box: points ``[N, d]``, weights ``[N]`` as fractions of its
    volume (they sum to 1), float64, and each point's cell ``[N]`` (row-major). Exact for
    polynomials of degree ``2·order − 1`` per axis on each sub-cell."""
    inner = getattr(field, "inner", field)
    cells = list(inner.resolution_per_axis)
    nodes, weights = np.polynomial.legendre.leggauss(order)  # on [-1, 1], weights sum to 2
    local = ((np.arange(split)[:, None] + (nodes[None, :] + 1.0) / 2.0) / split).reshape(-1)  # in [0, 1]
    local_w = np.tile(weights / (2.0 * split), split)
    axes_x, axes_w, axes_c = [], [], []
    for n in cells:
        axes_x.append(((np.arange(n)[:, None] + local[None, :]) * 2.0 / n - 1.0).reshape(-1))
        axes_w.append(np.tile(local_w / n, n))
        axes_c.append(np.repeat(np.arange(n), local.size))
    def grid(axes):
        return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(cells))
    x = torch.as_tensor(grid(axes_x))
    w = torch.as_tensor(np.prod(grid(axes_w), -1))
    cell = torch.as_tensor(np.ravel_multi_index(tuple(grid(axes_c).T), cells))
    if hasattr(field, "lo"):  # a box-mapped field (dinf.fields.mapped): from [-1, 1]^d to the box
        x = (x + 1.0) / field.scale.double().cpu() + field.lo.double().cpu()
    return x, w, cell


def project_psd(H: Tensor, rtol: float = 1e-12) -> Tuple[Tensor, int]:
    """Each ``[U, U]`` block of ``H`` ``[N, U, U]`` with its negative eigenvalues set to zero, and
    how many blocks that changed. A Cholesky factorisation (a tenth of an eigendecomposition)
    first finds the blocks that are positive semi-definite to ``rtol`` of their largest diagonal
    entry: they stay as they are."""
    scale = H.diagonal(dim1=1, dim2=2).abs().amax(1).clamp(min=1e-300)
    eye = torch.eye(H.shape[1], dtype=H.dtype)
    _, info = torch.linalg.cholesky_ex(H + (rtol * scale)[:, None, None] * eye)
    bad = torch.nonzero(info != 0)[:, 0]
    if bad.numel() == 0:
        return H, 0
    lam, Q = torch.linalg.eigh(H[bad])
    H = H.clone()
    H[bad] = (Q * lam.clamp(min=0.0)[:, None, :]) @ Q.transpose(1, 2)
    return H, int(bad.numel())


class _EnergyState:
    """The points and their weights, their jets in the node values, and the energy's
    derivatives there."""

    def __init__(self, field: torch.nn.Module, problem: torch.nn.Module, newton: Newton, generator: torch.Generator,
                 z: Optional[np.ndarray] = None, bias: Optional[np.ndarray] = None):
        self.problem, self.lam = problem, newton.lm
        self.factor = PatternSolver(newton.backend)
        c = field.out_dim
        self.bias = np.zeros(c) if bias is None else bias
        measure = float(problem.energy_measure)
        if newton.quadrature is None:
            n = newton.points or 16 * cells_total(field)
            self.x = sample_for(field, problem, n, generator).x.double()
            self.w = torch.full((self.x.shape[0],), measure / self.x.shape[0], dtype=torch.float64)
        else:
            self.x, self.w = refined_quadrature(field, problem, newton.quadrature, newton.refine,
                                                newton.refine_tol, z is None)
            self.w = measure * self.w
        width = jet_width(problem.jet_order, field.in_dim)
        # The entries the energy reads: its gradient's pattern at a random jet.
        probe = random_jet(self.x.shape[0], c, field.in_dim, width)
        leaves = [t.requires_grad_(True) for t in (probe.value, probe.grad, probe.hess) if t is not None]
        with torch.enable_grad():
            e = problem.energy_density(Jet(*(leaves + [None] * (3 - len(leaves)))), self.x).sum()
            grads = torch.autograd.grad(e, leaves, allow_unused=True)
        n_pts = self.x.shape[0]
        pattern = torch.cat([(g if g is not None else torch.zeros_like(t)).reshape(n_pts, c, -1)
                             for g, t in zip(grads, leaves)], -1)
        self.nodes = NodeJets(field, self.x, problem.jet_order, pattern.abs().amax(0) > 0, merge_twins=True)
        self.closed_form = problem.closed_form_derivatives
        if self.closed_form:  # where each read entry sits in the problem's symmetric layout [C·S]
            sym = symmetric_entries(problem.jet_order, field.in_dim)
            self.select = torch.tensor([ch * len(sym) + sym.index(a) for ch, a in self.nodes.used])
            self.select_all = bool(torch.equal(self.select, torch.arange(c * len(sym))))
        self.hessian = GroupedHessian(self.nodes)
        self.z = np.zeros(self.nodes.layout.nodes * c) if z is None else z
        self.mu: Optional[float] = None
        self.energy = self.loss_start = self.total(self.z)

    def total(self, z: np.ndarray) -> float:
        """The energy at node values ``z``."""
        with torch.no_grad():
            jet = self.nodes.jet_of(self.nodes.values(z), self.bias)
            return float((self.w * self.problem.energy_density(jet, self.x)).sum())

    def point_derivatives(self, z: np.ndarray) -> Tuple[Tensor, Tensor, int]:
        """Each point's gradient ``[N, U]`` and positive semi-definite Hessian ``[N, U, U]`` of
        its weighted energy in the jet entries it reads, at node values ``z``, and how many
        Hessians the projection changed (-1: the problem's own projection)."""
        values = self.nodes.values(z)
        n = values.shape[0]
        if self.closed_form:
            with torch.no_grad():
                g, H = self.problem.energy_derivatives(self.nodes.jet_of(values, self.bias), self.x, project=True,
                                                       weight=self.w)
            g, H = g.reshape(n, -1), H.reshape(n, g.shape[1] * g.shape[2], -1)
            if not self.select_all:
                g, H = g[:, self.select], H[:, self.select][:, :, self.select]
            return g, H, -1
        values.requires_grad_(True)
        u = values.shape[1]
        with torch.enable_grad():
            e = (self.w * self.problem.energy_density(self.nodes.jet_of(values, self.bias), self.x)).sum()
            (g,) = torch.autograd.grad(e, values, create_graph=True)
            # One backward pass per entry: 0.79 s for the cloth's 21 at 16 384 points; one batched
            # pass (is_grads_batched) took 2.0 s, torch.func's vmap of jacfwd(jacrev) as long.
            rows = [torch.autograd.grad(g[:, k].sum(), values, retain_graph=k + 1 < u, allow_unused=True)[0]
                    for k in range(u)]
        H = torch.stack([r if r is not None else torch.zeros_like(values) for r in rows], 1).detach()
        H, projected = project_psd(0.5 * (H + H.transpose(1, 2)))
        return g.detach(), H, projected


def refined_quadrature(field: torch.nn.Module, problem: torch.nn.Module, order: int, refine: int, tol: float,
                       cold: bool) -> Tuple[Tensor, Tensor]:
    """Gauss–Legendre points and weights (fractions of the volume) in every cell
    (``cell_quadrature``); where the energy of the starting field (the zero field when ``cold``)
    by that rule and by the rule of one more point per axis differ by more than ``tol`` of its
    total, ``refine`` × ``refine`` sub-cells instead. The cloth's pulled corners are such cells:
    there the constraint bumps vary within a cell, and solves on the plain rule lower the energy
    on its points by raising it between them (3 × 3 points: −2.74 on them, −2.68 on 6 × 6)."""
    x, w, cell = cell_quadrature(field, order)
    if refine <= 1:
        return x, w
    x2, w2, cell2 = cell_quadrature(field, order + 1)
    cells = int(cell.max()) + 1
    coarse = _energy_by_cell(field, problem, x, w, cell, cells, cold)
    fine = _energy_by_cell(field, problem, x2, w2, cell2, cells, cold)
    flagged = (coarse - fine).abs() > tol * fine.sum().abs()
    if not bool(flagged.any()):
        return x, w
    xr, wr, cellr = cell_quadrature(field, order, refine)
    keep, take = ~flagged[cell], flagged[cellr]
    return torch.cat([x[keep], xr[take]]), torch.cat([w[keep], wr[take]])


def _energy_by_cell(field: torch.nn.Module, problem: torch.nn.Module, x: Tensor, w: Tensor, cell: Tensor, cells: int,
                    cold: bool) -> Tensor:
    """The energy (volume fractions as weights) of each cell ``[cells]``, of the field as it is
    or (``cold``) of the zero field."""
    dtype = next(field.parameters()).dtype
    with torch.no_grad():
        jet = field.jet(x.to(dtype), problem.jet_order)
    jet = Jet(*[None if t is None else (torch.zeros_like(t) if cold else t).double()
                for t in (jet.value, jet.grad, jet.hess)])
    with torch.no_grad():
        e = w * problem.energy_density(jet, x)
    return torch.zeros(cells, dtype=torch.float64).index_add_(0, cell, e)
