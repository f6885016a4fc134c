"""Kirchhoff plate: small deflection ``D ∇⁴w = q`` of a simply supported square, in energy form.

Conventions
-----------
* The plate is ``[-1, 1]²`` (side ``a = 2``); ``ξ = (x + 1) / 2`` maps it to the unit square.
* Bending stiffness ``D = E t³ / (12 (1 - ν²))``. The field is trained on the total potential
  energy ``Π(w) = ∫ D/2 [(Δw)² - 2(1 - ν)(w_xx w_yy - w_xy²)] - q w dA``, estimated on stratified
  points (area 4 times the mean). Its minimiser solves ``D ∇⁴w = q`` with the natural (moment-free)
  condition of a simple support; ``w = 0`` on the edges is imposed exactly by
  ``w = (1 - x²)(1 - y²) · u`` with ``u`` the field, the product rule carrying it through the jet.
* Loads: ``uniform`` (``q = q0``) and ``sine`` (``q = q0 sin(πξ) sin(πη)``).
* Reference: the Navier double-sine series,
  ``w = Σ_{m,n odd} 16 q0 a⁴ / (π⁶ D m n (m² + n²)²) sin(mπξ) sin(nπη)`` (uniform; ``terms`` per
  axis) and ``w = q0 a⁴ / (4 π⁴ D) sin(πξ) sin(πη)`` (sine, exact).
* Metrics on ``linspace(-1, 1, resolution)²``: relative L2 error and the relative error of the
  maximum deflection.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from dinf.errors import check, check_choice, check_int
from dinf.jet import Jet
from dinf.linear_system import LinearSystem
from dinf.fields.interpolant import Interpolant
from dinf.pdes.capabilities import LinearProblem
from dinf.pdes.base import (BCS, Batch, FieldLike, Problem, boundary_factor, edge_points, grid_points,
                             masked_mean, stratified)

LOADS = ("uniform", "sine")
SIDE = 2.0
AREA = SIDE * SIDE


def check_material(youngs_modulus: float, poisson_ratio: float, thickness: float) -> None:
    """A linear isotropic plate or shell: E > 0, ν in (-1, 0.5), t > 0 (else ``ConfigError``)."""
    check(youngs_modulus > 0, "youngs_modulus", f"must be > 0, got {youngs_modulus!r}")
    check(-1.0 < poisson_ratio < 0.5, "poisson_ratio", f"must be in (-1, 0.5), got {poisson_ratio!r}")
    check(thickness > 0, "thickness", f"must be > 0, got {thickness!r}")


def bending_stiffness(youngs_modulus: float, poisson_ratio: float, thickness: float) -> float:
    return youngs_modulus * thickness**3 / (12.0 * (1.0 - poisson_ratio**2))


def navier_deflection(x: np.ndarray, stiffness: float, load: str, magnitude: float, terms: int = 199) -> np.ndarray:
    """The series solution at ``x`` ``[N, 2]`` in ``[-1, 1]²``."""
    xi = (np.asarray(x, dtype=np.float64) + 1.0) / SIDE
    if load == "sine":
        amp = magnitude * SIDE**4 / (4.0 * math.pi**4 * stiffness)
        return amp * np.sin(math.pi * xi[:, 0]) * np.sin(math.pi * xi[:, 1])
    m = np.arange(1, terms + 1, 2, dtype=np.float64)
    coef = 16.0 * magnitude * SIDE**4 / (math.pi**6 * stiffness * np.outer(m, m) * (m[:, None] ** 2 + m[None, :] ** 2) ** 2)
    sx, sy = np.sin(math.pi * np.outer(xi[:, 0], m)), np.sin(math.pi * np.outer(xi[:, 1], m))
    return np.einsum("nm,mk,nk->n", sx, coef, sy)


class KirchhoffPlate(Problem, LinearProblem):
    """Simply supported square plate under a uniform or sinusoidal load, scored against Navier."""

    in_dim = 2
    out_dim = 1
    jet_order = 2
    metric_modes = {"rel_l2": "min", "max_deflection_error": "min"}

    def __init__(
        self,
        load: str = "uniform",
        youngs_modulus: float = 10920.0,
        poisson_ratio: float = 0.3,
        thickness: float = 0.1,
        load_magnitude: float = 1.0,
        batch_size: int = 16384,
        resolution: int = 128,
        terms: int = 199,
        bc: str = "hard",
        bc_weight: float = 100000.0,
        boundary_points: int = 1024,
        targets: Mapping[str, List[float]] | None = None,
        in_dim: int | None = None,
        out_dim: int | None = None,
    ):
        super().__init__(targets, in_dim, out_dim)
        check_choice("load", load, LOADS)
        check_material(youngs_modulus, poisson_ratio, thickness)
        check_int("batch_size", batch_size, 1)
        check_int("resolution", resolution, 8)
        check_int("terms", terms, 1)
        check_choice("bc", bc, BCS)
        check(bc_weight >= 0, "bc_weight", f"must be >= 0, got {bc_weight!r}")
        check_int("boundary_points", boundary_points, 1)
        self.bc, self.bc_weight, self.boundary_points = bc, float(bc_weight), boundary_points
        self.load, self.load_magnitude = load, float(load_magnitude)
        self.poisson_ratio = float(poisson_ratio)
        self.stiffness = bending_stiffness(float(youngs_modulus), self.poisson_ratio, float(thickness))
        self.batch_size, self.resolution = batch_size, resolution
        coords = grid_points(torch.linspace(-1.0, 1.0, resolution, dtype=torch.float64))
        ref = navier_deflection(coords.numpy(), self.stiffness, load, self.load_magnitude, terms)
        self.register_buffer("coords", coords.float(), persistent=False)
        self.register_buffer("reference", torch.as_tensor(ref), persistent=False)  # float64 [R*R]

    # --- physics ---------------------------------------------------------------------------
    def pressure(self, x: Tensor) -> Tensor:
        """The load ``q`` at ``x`` ``[N, 2]`` -> ``[N]``."""
        if self.load == "uniform":
            return torch.full_like(x[:, 0], self.load_magnitude)
        xi = (x + 1.0) / SIDE
        return self.load_magnitude * torch.sin(math.pi * xi[:, 0]) * torch.sin(math.pi * xi[:, 1])

    def deflection_jet(self, jet: Jet, x: Tensor) -> Jet:
        """The jet of ``w``: ``B · u`` from the field's jet of ``u`` (hard ``w = 0`` on the edges),
        or ``u`` itself with ``bc="soft"``."""
        return boundary_factor(x.to(jet.value.dtype)) * jet if self.bc == "hard" else jet

    def bending_energy_density(self, w: Jet) -> Tensor:
        """``D/2 [(Δw)² - 2(1 - ν)(w_xx w_yy - w_xy²)]`` ``[N]`` for a deflection jet."""
        h = w.hess[:, 0]
        lap = h[:, 0, 0] + h[:, 1, 1]
        gauss = h[:, 0, 0] * h[:, 1, 1] - h[:, 0, 1] * h[:, 1, 0]
        return 0.5 * self.stiffness * (lap * lap - 2.0 * (1.0 - self.poisson_ratio) * gauss)

    # --- training ----------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator) -> Batch:
        """Stratified points; with ``bc="soft"`` also ``min(boundary_points, n // 2)`` on the edges."""
        n = int(n)
        if self.bc == "hard":
            return Batch(x=stratified(n, generator).float().to(self.device))
        n_b = min(self.boundary_points, n // 2)
        x = torch.cat([stratified(n - n_b, generator).float(), edge_points(n_b, generator)])
        is_b = torch.arange(n) >= n - n_b
        return Batch(x=x.to(self.device), data={"is_boundary": is_b.to(self.device)})

    def loss(self, jet: Jet, batch: Batch) -> Dict[str, Tensor]:
        """Total potential energy; with ``bc="soft"`` plus ``bc_weight · mean w²`` on the edges."""
        x = batch.x.to(jet.value.dtype)
        w = self.deflection_jet(jet, x)
        inside = ~batch.flag("is_boundary")
        bending = AREA * masked_mean(self.bending_energy_density(w), inside)
        work = AREA * masked_mean(self.pressure(x) * w.value[:, 0], inside)
        terms = {"loss": bending - work, "energy_bending": bending, "work_load": work}
        if self.bc == "soft":
            terms["loss_boundary"] = masked_mean(w.value[:, 0] ** 2, ~inside)
            terms["loss"] = terms["loss"] + self.bc_weight * terms["loss_boundary"]
        return terms

    def linear_system(self, batch: Batch) -> LinearSystem:
        """The energy as squares minus a linear term (a Ritz system): the density is
        D/2 [ν(Δw)² + (1 − ν)(w_xx² + w_yy²) + 2(1 − ν) w_xy²], four squared rows over w's Hessian,
        and the load's work is the linear term. ``w = B·u`` is expanded by the product rule into
        the field's jet entries; with ``bc="soft"`` the edge points get a row √(λ/n_b)·w instead."""
        x = batch.x.double()
        n, dev = x.shape[0], x.device
        edge = batch.flag("is_boundary")
        to_w = self._deflection_map(x)  # [N, 7 w-entries, 7 u-entries]
        d, nu = self.stiffness, self.poisson_ratio
        rows = torch.zeros(4, 7, dtype=torch.float64, device=dev)  # rows over w's entries
        rows[0, 3] = rows[0, 6] = math.sqrt(d * nu / 2)
        rows[1, 3] = rows[3, 6] = math.sqrt(d * (1 - nu) / 2)
        rows[2, 4] = math.sqrt(d * (1 - nu))
        inside = (~edge).double() * math.sqrt(AREA / max(int((~edge).sum()), 1))
        coef = torch.einsum("ew,nwa->nea", rows, to_w) * inside[:, None, None]
        if self.bc == "soft":
            bnd = torch.zeros(n, 1, 7, dtype=torch.float64, device=dev)
            bnd[edge, 0, 0] = math.sqrt(self.bc_weight / max(int(edge.sum()), 1))
            coef = torch.cat([coef, bnd], 1)
        weight = 0.5 * AREA / max(int((~edge).sum()), 1) * self.pressure(x) * (~edge).double()
        linear = (weight[:, None] * to_w[:, 0, :])[:, None, :]  # ½ ∫ q w, over u's entries
        return LinearSystem(x, coef[:, :, None, :], torch.zeros(n, coef.shape[1], dtype=torch.float64, device=dev),
                            linear)

    def _deflection_map(self, x: Tensor) -> Tensor:
        """``[N, 7, 7]``: w's jet entries (value, ∂x, ∂y, ∂xx, ∂xy, ∂yx, ∂yy) from u's."""
        n = x.shape[0]
        m = torch.zeros(n, 7, 7, dtype=x.dtype, device=x.device)
        if self.bc == "soft":
            m[:] = torch.eye(7, dtype=x.dtype, device=x.device)
            return m
        b = boundary_factor(x)
        v, g, h = b.value[:, 0], b.grad[:, 0], b.hess[:, 0]
        for e in range(7):
            m[:, e, e] = v
        m[:, 1, 0], m[:, 2, 0] = g[:, 0], g[:, 1]
        m[:, 3, 1], m[:, 3, 0] = 2 * g[:, 0], h[:, 0, 0]
        for e in (4, 5):
            m[:, e, 1], m[:, e, 2], m[:, e, 0] = g[:, 1], g[:, 0], h[:, 0, 1]
        m[:, 6, 2], m[:, 6, 0] = 2 * g[:, 1], h[:, 1, 1]
        return m

    # --- judging -----------------------------------------------------------------------------
    def prediction(self, field: FieldLike) -> np.ndarray:
        """``w`` on the evaluation grid, float64 ``[resolution²]``. A classical solver (``solver=fem``)
        imposes the support itself and gives ``w``; a field gives ``u`` of ``w = B·u`` (``bc="hard"``)."""
        u = self.predict(field, self.coords)[:, 0]
        if self.bc == "soft" or isinstance(field, Interpolant):
            return u.numpy()
        return (boundary_factor(self.coords.double()).value[:, 0] * u).numpy()

    def _metrics(self, pred: np.ndarray) -> Dict[str, float]:
        ref = self.reference.cpu().numpy()
        top = float(np.abs(ref).max())
        return {
            "rel_l2": float(np.linalg.norm(pred - ref) / np.linalg.norm(ref)),
            "max_deflection_error": float(abs(np.abs(pred).max() - top) / top),
        }

    def evaluate(self, field: FieldLike) -> Dict[str, float]:
        return self._metrics(self.prediction(field))

    def pictures(self, field: FieldLike) -> Dict[str, Figure]:
        R = self.resolution
        pred = self.prediction(field)
        ref = self.reference.cpu().numpy()
        m = self._metrics(pred)
        fig = Figure(figsize=(13, 4))
        axes = fig.subplots(1, 3)
        top = float(np.abs(ref).max())
        for ax, arr, title, cmap, kw in (
            (axes[0], pred, f"deflection w ({self.load} load)", "viridis", {"vmin": 0, "vmax": top}),
            (axes[1], ref, "Navier series", "viridis", {"vmin": 0, "vmax": top}),
            (axes[2], np.abs(pred - ref), f"|error|, rel L2 {m['rel_l2']:.3g}", "inferno", {}),
        ):
            im = ax.imshow(arr.reshape(R, R).T, origin="lower", extent=(-1, 1, -1, 1), cmap=cmap, **kw)
            ax.set_title(title)
            fig.colorbar(im, ax=ax)
        fig.tight_layout()
        return {"plate": fig}
