"""Finite differences (``solver=fd``): Poisson image reconstruction on the problem's own pixel
grid by cosine transforms (``dinf.solvers.classical.poisson_fd``), and Helmholtz (the PML point source,
the manufactured problem) on a node grid of ``n`` cells per axis (``dinf.solvers.classical.helmholtz_fd``)."""
from __future__ import annotations

import time
from typing import Any, Dict, Sequence, Union

import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator
from torch import Tensor

from dinf.solvers.classical import helmholtz_fd
from dinf.solvers.classical.base import ClassicalSolver
from dinf.solvers.classical.poisson_fd import GRADIENTS, gradient_for, reconstruct
from dinf.errors import ConfigError, check
from dinf.pdes.poisson import PoissonImage
from dinf.solvers.linalg.sparse_solve import check_backend


class FiniteDifferences(ClassicalSolver):
    """Poisson images: the least-squares solution of the problem's difference equations on its
    pixel grid, probed by bilinear interpolation (exact at the pixel centres, where the metrics
    look); ``gradient``: the difference operator fitted to gradient targets (``auto``: Sobel when
    the problem models it, ``pde.sobel_smoothing``; else centred).

    Helmholtz: ``n`` cells per axis on ``[−1, 1]²``, the 5-point flux stencil (``order`` 2) or the
    compact 9-point one where the PML is absent (``order`` 4), one direct solve (``backend`` as in
    ``dinf.solvers.linalg.sparse_solve``), probed by a bicubic spline through the node values. ``n`` may be a
    list: each ``solve`` then solves at the next size, coarse to fine, afresh, each timed alone
    (``independent_solves``), so one run draws the error-against-time curve."""

    name = "finite differences"

    prefix = "fd"

    def __init__(self, in_dim: int = 2, out_dim: int = 1, gradient: str = "auto",
                 n: Union[int, Sequence[int]] = 256, order: int = 2, backend: str = "auto"):
        super().__init__(in_dim, out_dim, "finite differences", out_dims=(1, 2))
        check(gradient in GRADIENTS, "gradient", f"must be one of {GRADIENTS}, got {gradient!r}")
        sizes = list(n) if isinstance(n, (list, tuple)) else [n]
        ok = len(sizes) > 0 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 4 for v in sizes)
        check(ok, "n", f"must be an integer >= 4 (cells per axis) or a list of such, got {n!r}")
        check(order in helmholtz_fd.ORDERS, "order", f"must be one of {helmholtz_fd.ORDERS}, got {order!r}")
        check_backend(backend)
        self.gradient, self.order, self.backend = gradient, int(order), backend
        self.sizes = sorted(sizes)
        self.n = self.sizes[0]
        self._probe: Any = None
        self._solved = 0  # Helmholtz refinements solved so far
        self._grid = False  # whether the problem is solved on a node grid (Helmholtz), set by check

    @property
    def refinements(self) -> int:
        """How many solves the run makes (one per size in ``n``)."""
        return len(self.sizes)

    @property
    def num_params(self) -> int:
        """The last solve's real unknowns (two per inner node for a complex field)."""
        return int(self.info.get("dofs", 0)) if self._u is not None else 0

    def warm_up(self) -> None:
        """Helmholtz: the sparse backend's one-time loading, outside the first solve's clock."""
        if self._grid:
            helmholtz_fd.warm_up(self.backend)

    def check(self, field: Any, problem: Any) -> None:
        self._grid = isinstance(problem, helmholtz_fd.PROBLEMS)
        if self._grid:
            return
        if not isinstance(problem, PoissonImage):
            raise ConfigError("solver", f"solver=fd solves pde=poisson, poisson_laplacian, helmholtz (any wavenumber) "
                                       f"and helmholtz_manufactured; {type(problem).__name__} is not one")
        if problem.bc != "none":
            raise ConfigError("solver", f"solver=fd solves Poisson images with pde.bc=none, got {problem.bc}")
        if len(self.sizes) > 1:
            raise ConfigError("solver.n", f"Poisson images are solved once on their own pixel grid; "
                                      f"a list of sizes {self.sizes} is for Helmholtz")

    def _solve(self, problem: Any) -> Dict[str, Any]:
        """Poisson: one cosine-transform solve; ``loss``, the least-squares residual relative to
        the targets. Helmholtz: assembly and solve at the next size; ``loss``, the algebraic
        residual ``‖K u − b‖ / ‖b‖``; ``time_s``, assembly and solve (not the probe's spline)."""
        self.check(None, problem)
        if self._grid:
            return self._solve_helmholtz(problem)
        R = problem.resolution
        target = problem.target.detach().cpu().double().numpy().reshape(R, R, -1)
        t0 = time.perf_counter()
        gradient = gradient_for(problem, self.gradient)
        u = reconstruct(target, problem.supervision, gradient)
        seconds = time.perf_counter() - t0
        lin = np.linspace(-1.0, 1.0, R)
        self._u, self._probe = u, RegularGridInterpolator((lin, lin), u, method="linear")
        self.info = {"loss": _residual(u, target, problem.supervision, gradient), "loss_zero": 1.0,
                     "dofs": int(u.size), "time_s": seconds, "converged": True}
        return self.info

    def _solve_helmholtz(self, problem: Any) -> Dict[str, Any]:
        self.n = self.sizes[min(self._solved, len(self.sizes) - 1)]
        t0 = time.perf_counter()
        K, b, symmetric = helmholtz_fd.assemble(problem, self.n, self.order)
        t1 = time.perf_counter()
        u = helmholtz_fd.solve(K, b, symmetric, self.backend)
        t2 = time.perf_counter()
        nodes = helmholtz_fd.nodes(self.n)
        values = helmholtz_fd.node_values(u, self.n, self.out_dim)
        self._u, self._probe = values, helmholtz_fd.NodeProbe(nodes, values)
        self._solved += 1
        residual = float(np.linalg.norm(K @ u - b) / max(np.linalg.norm(b), 1e-300))
        self.info = {"loss": residual, "loss_zero": 1.0, "dofs": int(u.size * self.out_dim), "n": self.n,
                     "assemble_s": t1 - t0, "solve_s": t2 - t1, "time_s": t2 - t0,
                     "converged": self._solved >= len(self.sizes)}
        return self.info

    def probe(self, x: Tensor) -> Tensor:
        """The solution at ``x`` ``[N, 2]`` (zero before the solve)."""
        if self._probe is None:
            return torch.zeros(x.shape[0], self.out_dim, dtype=torch.float64)
        pts = x.detach().double().cpu().numpy().clip(-1.0, 1.0)
        out = self._probe(pts)
        return torch.as_tensor(out if out.ndim == 2 else out[:, None])


def _residual(u: np.ndarray, target: np.ndarray, supervision: str, gradient: str) -> float:
    """``‖G u − g‖ / ‖g‖`` with the operator the solve fitted (scipy's filters, ``reflect``)."""
    import scipy.ndimage as ndi

    R = u.shape[0]
    h = 2.0 / (R - 1)
    if supervision == "laplacian":
        fit = ndi.laplace(u)[..., None] / h**2
    elif gradient == "sobel":
        fit = np.stack([ndi.sobel(u, axis=a) / (8 * h) for a in (0, 1)], -1)
    else:
        fit = np.stack([ndi.correlate1d(u, [-1.0, 0.0, 1.0], axis=a) / (2 * h) for a in (0, 1)], -1)
    return float(np.linalg.norm(fit - target) / max(np.linalg.norm(target), 1e-300))
