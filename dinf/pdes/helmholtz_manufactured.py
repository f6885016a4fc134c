"""Manufactured Helmholtz (the PINN benchmark): ``Δu + k² u = q`` on ``[-1, 1]²``.

Conventions
-----------
* Exact solution ``u = sin(aπx) sin(aπy)``, Dirichlet ``u = 0`` on the boundary (for integer
  ``a``), source ``q = (k² - 2a²π²) u``.
* A batch of ``n`` points holds ``min(boundary_points, n // 2)`` uniform points on the four edges
  and the rest stratified over the square (``batch_size`` counts both). ``collocation="lattice"``
  puts the stratified points at the centres of their strata instead: with ``m²`` interior points
  and ``m`` a multiple of the grid's cells per axis, every cell holds the same midpoint rule, and
  a least-squares solve's error falls about 10× against the jittered draw at a = 10 (docs/results/helmholtz.md).
* ``loss_residual = mean (Δu + k²u - q)² / (k² + 2a²π²)²``: dividing by the operator's scale on
  the solution's frequency makes the term O(1) relative to u (an error δu at that frequency
  costs about δu²), so ``boundary_weight`` means the same for every ``a`` and ``k``.
  ``loss_boundary = mean u²`` on the edge points; ``loss = residual + boundary_weight · boundary``.
* Evaluated on ``linspace(-1, 1, resolution)²`` (boundary included): relative L2 error.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from dinf.errors import check, check_int
from dinf.jet import Jet
from dinf.linear_system import LinearSystem
from dinf.pdes.capabilities import LinearProblem
from dinf.pdes.base import Batch, FieldLike, Problem, edge_points, grid_points, masked_mean, stratified


class HelmholtzManufactured(Problem, LinearProblem):
    """``Δu + k²u = q`` with ``u = sin(aπx) sin(aπy)`` and ``u = 0`` on the boundary."""

    in_dim = 2
    out_dim = 1
    jet_order = 2
    metric_modes = {"rel_l2": "min"}

    def __init__(
        self,
        a: float = 10.0,
        k: float = 1.0,
        batch_size: int = 16384,
        resolution: int = 256,
        boundary_points: int = 1024,
        boundary_weight: float = 100.0,
        collocation: str = "random",
        targets: Mapping[str, List[float]] | None = None,
        in_dim: int | None = None,
        out_dim: int | None = None,
    ):
        super().__init__(targets, in_dim, out_dim)
        check(a > 0, "a", f"must be > 0, got {a!r}")
        check_int("batch_size", batch_size, 1)
        check_int("resolution", resolution, 8)
        check_int("boundary_points", boundary_points, 0)
        check(boundary_weight >= 0, "boundary_weight", f"must be >= 0, got {boundary_weight!r}")
        check(collocation in ("random", "lattice"), "collocation", f"must be random or lattice, got {collocation!r}")
        self.collocation = collocation
        self.a, self.k = float(a), float(k)
        self.batch_size, self.resolution = batch_size, resolution
        self.boundary_points, self.boundary_weight = boundary_points, float(boundary_weight)
        self.residual_scale = 1.0 / (self.k**2 + 2 * self.a**2 * math.pi**2) ** 2

        lin = torch.linspace(-1.0, 1.0, resolution, dtype=torch.float64)
        coords = grid_points(lin)
        self.register_buffer("coords", coords.float(), persistent=False)
        self.register_buffer("exact", self.solution(coords).float(), persistent=False)  # [R*R]

    def solution(self, x: Tensor) -> Tensor:
        """Exact ``u`` at ``x`` ``[N, 2]`` -> ``[N]``."""
        w = self.a * math.pi
        return torch.sin(w * x[:, 0]) * torch.sin(w * x[:, 1])

    def rhs(self, x: Tensor) -> Tensor:
        return (self.k**2 - 2 * (self.a * math.pi) ** 2) * self.solution(x)

    def sample(self, n: int, generator: torch.Generator) -> Batch:
        n = int(n)
        n_b = min(self.boundary_points, n // 2)
        inner = stratified(n - n_b, generator, jitter=self.collocation == "random").float()
        x = torch.cat([inner, edge_points(n_b, generator)]).float()
        is_b = torch.cat([torch.zeros(n - n_b, dtype=torch.bool), torch.ones(n_b, dtype=torch.bool)])
        dev = self.device
        return Batch(x=x.to(dev), data={"is_boundary": is_b.to(dev)})

    def loss(self, jet: Jet, batch: Batch) -> Dict[str, Tensor]:
        mask = batch.flag("is_boundary")
        u = jet.value[:, 0]
        x = batch.x.to(u.dtype)
        res = jet.laplacian()[:, 0] + self.k**2 * u - self.rhs(x)
        l_res = masked_mean(res**2, ~mask) * self.residual_scale
        l_bnd = masked_mean(u**2, mask)
        return {"loss": l_res + self.boundary_weight * l_bnd, "loss_residual": l_res, "loss_boundary": l_bnd}

    def linear_system(self, batch: Batch) -> LinearSystem:
        """The loss as least-squares rows: ``Δu + k²u = q`` inside, ``u = 0`` on the edges."""
        x = batch.x.double()
        on_edge = batch.flag("is_boundary")
        n_b = int(on_edge.sum())
        coef = torch.zeros(x.shape[0], 1, 1, 7, dtype=torch.float64, device=x.device)
        coef[~on_edge, 0, 0, 0] = self.k**2
        coef[~on_edge, 0, 0, 3] = 1.0  # u_xx
        coef[~on_edge, 0, 0, 6] = 1.0  # u_yy
        coef[on_edge, 0, 0, 0] = 1.0
        rhs = self.rhs(x).masked_fill(on_edge, 0.0).unsqueeze(1)
        w = torch.full_like(x[:, 0], math.sqrt(self.residual_scale / max(x.shape[0] - n_b, 1)))
        w[on_edge] = math.sqrt(self.boundary_weight / max(n_b, 1))
        return LinearSystem(x, coef, rhs).scaled(w)

    def prediction(self, field: FieldLike) -> np.ndarray:
        """The field on the evaluation grid, float64 ``[resolution²]``."""
        return self.predict(field, self.coords)[:, 0].numpy()

    def _metrics(self, pred: np.ndarray) -> Dict[str, float]:
        ex = self.exact.detach().cpu().double().numpy()
        return {"rel_l2": float(np.linalg.norm(pred - ex) / np.linalg.norm(ex))}

    def evaluate(self, field: FieldLike) -> Dict[str, float]:
        return self._metrics(self.prediction(field))

    def pictures(self, field: FieldLike) -> Dict[str, Figure]:
        R = self.resolution
        pred = self.prediction(field)
        m = self._metrics(pred)
        ex = self.exact.detach().cpu().double().numpy()
        fig = Figure(figsize=(13, 4))
        axes = fig.subplots(1, 3)
        ext = (-1, 1, -1, 1)
        for ax, arr, title, cmap, sym in (
            (axes[0], pred, f"prediction (a = {self.a:g}, k = {self.k:g})", "RdBu_r", True),
            (axes[1], ex, "exact", "RdBu_r", True),
            (axes[2], np.abs(pred - ex), f"|error|, rel L2 {m['rel_l2']:.3g}", "inferno", False),
        ):
            kw = {"vmin": -1, "vmax": 1} if sym else {}
            im = ax.imshow(arr.reshape(R, R).T, origin="lower", extent=ext, cmap=cmap, **kw)
            ax.set_title(title)
            fig.colorbar(im, ax=ax)
        fig.tight_layout()
        return {"helmholtz_manufactured": fig}
