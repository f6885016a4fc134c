"""A moving grid's map of one axis (r-adaptivity): cells small where a monitor is large.

``φ(x) = lo + L F(x)``, ``F(x) = ∫_lo^x M / ∫_lo^hi M``, with the monitor

    M(s) = 1 + Σ_j c_j exp(−(s − s_j)² / (2σ²)),   c_j ≥ 0,

a sum of Gaussian bumps on a floor. ``F`` has a closed form (error functions), ``φ' = L M / Z > 0``
everywhere, so ``φ`` is monotone and analytic: the field seen through it stays C∞, and its
uniform inner cells, pulled back through ``φ``, have the size ``h(x) ∝ 1 / M(x)`` (de Boor's
equidistribution: each cell holds the same share of ∫ M). The ratio of the largest cell to the
smallest is ``max M / min M``.

``AxisMonitorMap.equidistribute`` builds one from a density sampled on cells (an error
indicator's share per unit length), smoothed over ``smoothing`` cells so neighbouring cells
differ little, its exponent and its floor set so that the cell sizes vary at most ``ratio``-fold.
The map has the interface of ``dinf.fields.warped.AxisFocus`` (``φ, φ', φ''`` and ``inverse``),
so ``WarpedField`` takes either.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from dinf.errors import check

SQRT2 = math.sqrt(2.0)
REACH = 8.0  # bump widths beyond which a bump is left out of a point's sums (AxisMonitorMap._near)


class AxisMonitorMap:
    """``φ`` of one axis ``[lo, hi]`` from Gaussian bumps ``c`` at ``centres`` of width ``sigma``
    on the floor 1 (module docstring)."""

    def __init__(self, lo: float, hi: float, centres: Sequence[float], c: Sequence[float], sigma: float):
        check(hi > lo, "grid.adapt", f"an axis needs hi > lo, got [{lo}, {hi}]")
        check(sigma > 0, "grid.adapt", f"the monitor's width must be > 0, got {sigma}")
        self.lo, self.hi, self.length = float(lo), float(hi), float(hi - lo)
        order = np.argsort(np.asarray(centres, dtype=np.float64), kind="stable")  # sorted: each point's bumps are a run
        self.s = torch.as_tensor(np.asarray(centres, dtype=np.float64)[order])
        self.c = torch.as_tensor(np.asarray(c, dtype=np.float64)[order])
        check(bool((self.c >= 0).all()), "grid.adapt", "the monitor's bumps must be ≥ 0")
        self.sigma = float(sigma)
        # Σ_{j<k} c_j: the bumps wholly left of a point add c_j to its erf sum, those right of it −c_j.
        self._prefix = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(self.c, 0)])
        self._at_lo = float((torch.erf((self.lo - self.s) / (self.sigma * SQRT2)) * self.c).sum())
        self.z = float(self._integral(torch.tensor([self.hi], dtype=torch.float64))[0])
        self._table = None  # (y, x) for the inverse

    def _near(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per point, the bumps within ``REACH`` widths: their offsets ``x − s_j`` and weights
        ``[N, K]`` (zero beyond the run), and the run's first and last-plus-one bump. A bump
        farther away changes ``M`` by < exp(−REACH²/2) = 1e-14 of its weight, and its erf is ±1
        to round-off, so the sums over all bumps cost a point K terms, not thousands."""
        reach = REACH * self.sigma
        first = torch.searchsorted(self.s, x - reach)
        last = torch.searchsorted(self.s, x + reach)
        k = int((last - first).max()) if x.numel() else 0
        idx = first[:, None] + torch.arange(max(k, 1))
        inside = idx < last[:, None]
        idx = idx.clamp(max=max(len(self.s) - 1, 0))
        c = torch.where(inside, self.c[idx], torch.zeros((), dtype=torch.float64))
        return x[:, None] - self.s[idx], c, first, last

    def _integral(self, x: Tensor) -> Tensor:
        """``∫_lo^x M``."""
        x = x.double()
        if len(self.s) == 0:
            return x - self.lo
        scale = self.sigma * math.sqrt(math.pi / 2.0)
        d, c, first, last = self._near(x)
        total = self._prefix[-1]
        erf_sum = (torch.erf(d / (self.sigma * SQRT2)) * c).sum(1) + self._prefix[first] - (total - self._prefix[last])
        return (x - self.lo) + scale * (erf_sum - self._at_lo)

    def monitor(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``M(x)`` and ``M'(x)``."""
        x = x.double()
        if len(self.s) == 0:
            return torch.ones_like(x), torch.zeros_like(x)
        d, c, _, _ = self._near(x)
        g = torch.exp(-0.5 * (d / self.sigma) ** 2) * c
        return 1.0 + g.sum(1), -(g * d).sum(1) / self.sigma ** 2

    def __call__(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``φ(x)``, ``φ'(x)``, ``φ''(x)`` in ``x``'s dtype."""
        m, dm = self.monitor(x)
        y = self.lo + self.length * self._integral(x) / self.z
        k = self.length / self.z
        return y.to(x.dtype), (k * m).to(x.dtype), (k * dm).to(x.dtype)

    def inverse(self, y: Tensor) -> Tensor:
        """``φ⁻¹(y)`` (a fine table of ``φ`` and linear interpolation, polished by two Newton
        steps): evenly spread ``y`` become points evenly spread over the map's cells."""
        if self._table is None:
            xs = torch.linspace(self.lo, self.hi, 8193, dtype=torch.float64)
            self._table = (self(xs)[0], xs)
        ys, xs = self._table
        yd = y.double().clamp(self.lo, self.hi)
        i = torch.searchsorted(ys, yd).clamp(1, len(ys) - 1)
        t = (yd - ys[i - 1]) / (ys[i] - ys[i - 1]).clamp_min(1e-300)
        x = xs[i - 1] + t * (xs[i] - xs[i - 1])
        for _ in range(2):
            f, d1, _ = self(x)
            x = (x - (f - yd) / d1).clamp(self.lo, self.hi)
        return x.to(y.dtype)

    def cell_edges(self, cells: int) -> np.ndarray:
        """The physical edges of ``cells`` uniform inner cells: ``φ⁻¹`` of the uniform edges."""
        return self.inverse(torch.linspace(self.lo, self.hi, cells + 1, dtype=torch.float64)).numpy()

    @classmethod
    def equidistribute(cls, edges: Sequence[float], density: Sequence[float], ratio: float = 8.0,
                       smoothing: float = 2.0, power: float = 0.5, floor: float = 1.0) -> "AxisMonitorMap":
        """The map whose cells are small where ``density`` (one value per cell between ``edges``,
        ≥ 0) is large: ``M ∝ floor + smooth(density)^power`` (``power`` 1/2: an indicator's
        squared share per unit length, whose square root is the error's), the Gaussians
        ``smoothing`` cells wide, the floor at least ``floor`` times its mean (de Boor's 1: half the
        cells spread uniformly) and raised until ``max M / min M ≤ ratio``."""
        edges = np.asarray(edges, dtype=np.float64)
        density = np.clip(np.asarray(density, dtype=np.float64), 0.0, None)
        check(len(edges) == len(density) + 1 and len(density) >= 1, "grid.adapt",
              f"need one density per cell ({len(edges) - 1} cells), got {len(density)}")
        check(ratio >= 1, "grid.adapt.ratio", f"the largest to smallest cell must be ≥ 1, got {ratio}")
        lo, hi = float(edges[0]), float(edges[-1])
        widths = np.diff(edges)
        centres = 0.5 * (edges[:-1] + edges[1:])
        sigma = smoothing * float(np.median(widths))
        t = density ** power
        if not np.isfinite(t).all() or t.max() <= 0 or ratio == 1:
            return cls(lo, hi, centres, np.zeros_like(centres), sigma)
        # A kernel estimate of t: Σ t_j w_j G_σ(s − s_j), G_σ the unit-mass Gaussian, each bump
        # mirrored in both ends so that the estimate does not fall off there (a uniform density
        # would otherwise widen the end cells by a quarter).
        # Cells pooled into bins of at most σ/4 (their mass at its centre of mass): the estimate
        # changes by O((σ/4)²/σ²) of its curvature, and a point's sums shrink from every cell within
        # REACH·σ to a few dozen bumps.
        bins = np.floor((centres - lo) / (sigma / 4)).astype(np.int64)
        _, bins = np.unique(bins, return_inverse=True)
        weight = t * widths
        pooled = np.bincount(bins, weights=weight)
        where = np.bincount(bins, weights=weight * centres) / np.where(pooled > 0, pooled, 1.0)
        where = np.where(pooled > 0, where, np.bincount(bins, weights=centres) / np.bincount(bins))
        mass = np.tile(pooled / (sigma * math.sqrt(2.0 * math.pi)), 3)
        centres = np.concatenate([where, 2.0 * lo - where, 2.0 * hi - where])
        probe = cls(lo, hi, centres, mass, sigma)
        xs = torch.linspace(lo, hi, 2049, dtype=torch.float64)
        smooth = probe.monitor(xs)[0].numpy() - 1.0
        low, high = float(smooth.min()), float(smooth.max())
        # M = 1 + smooth / α: the ratio (α + high) / (α + low) ≤ ratio needs α ≥ (high − ratio·low) /
        # (ratio − 1); α ≥ mean(smooth) (de Boor's floor) keeps at least half the cells spread uniformly,
        # so a mildly varying density leaves the grid nearly uniform.
        alpha = max((high - ratio * low) / (ratio - 1.0), floor * float(smooth.mean()), 1e-300)
        return cls(lo, hi, centres, mass / alpha, sigma)
