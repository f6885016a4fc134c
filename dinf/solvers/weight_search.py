"""Searches for a regularisation weight (``dinf.pdes.regularization``): the discrepancy principle's,
the least predictive risk's and the L-curve's corner. Each proposal costs a solve, warm-started from the previous one.

**Discrepancy.**
The mean squared data misfit ``m(α)`` of the solution at weight α grows with α. The search
brackets the α with ``m(α) = target·σ²`` by factors of ``step`` (×10), then narrows the bracket by
the secant in ``(log α, log m)`` (m is close to a power of α there), falling back to bisection
in log α when the secant would land near an end: a tolerance of 5 % typically takes 3–6 solves.

**Risk.** The unbiased predictive risk estimate ``U(α) = m(α)/σ² + 2p(α)/n − 1`` (p the degrees of
freedom the fit spends, ``tr H``) estimates the mean squared error of the fitted values against
the noise-free data, in units of σ², from the data alone. The search steps by decades until the
least ``U`` seen has a larger one on each side, then tries the vertex of the parabola through
those three in log α, and ends at the least ``U`` seen (solving there again when it was not the
last tried).

**L-curve.** Where σ is not known: the curve of (log fit, log penalty) over α, the fit the
objective without the regularisation terms and the penalty those terms over α, bends from a
steep branch (small α: the penalty falls fast while the fit barely moves) to a flat one (large
α: the reverse). The search solves at the first α and at α·10^±k for k up to ``span`` (the
smaller weights first, each warm-started from the one before), takes the interior point of
greatest curvature (Menger's, through it and its neighbours), and solves there again.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple


class DiscrepancySearch:
    """Proposes the next weight from the ``(α, m/σ²)`` pairs seen; ``None`` once one is reached."""

    def __init__(self, tolerance: float, step: float = 10.0, limit: int = 16):
        self.tolerance, self.step, self.limit = tolerance, math.log(step), limit
        self.seen: List[Tuple[float, float]] = []  # (log α, log m − log target)

    def propose(self, alpha: float, ratio: float, target: float) -> Optional[float]:
        """The next α after the solve at ``alpha`` gave a misfit of ``ratio``·σ² where ``target``·σ²
        is wanted; ``None`` when it is met within the tolerance, or after ``limit`` solves (the last
        α stays)."""
        gap = math.log(max(ratio, 1e-300)) - math.log(target)
        self.seen.append((math.log(alpha), gap))
        if abs(math.exp(gap) - 1.0) <= self.tolerance or len(self.seen) >= self.limit:
            return None
        low = [p for p in self.seen if p[1] < 0]   # too little misfit: α too small
        high = [p for p in self.seen if p[1] > 0]  # too much: α too large
        if not high:
            return math.exp(max(p[0] for p in low) + self.step)
        if not low:
            return math.exp(min(p[0] for p in high) - self.step)
        a, fa = max(low)   # the bracket's ends nearest each other
        b, fb = min(high)
        x = a - fa * (b - a) / (fb - fa)
        if not a + 0.1 * (b - a) <= x <= b - 0.1 * (b - a):
            x = 0.5 * (a + b)
        return math.exp(x)

    @property
    def solves(self) -> int:
        return len(self.seen)


class RiskSearch:
    """Proposes the next weight from the ``(α, U)`` pairs seen; ``None`` once the solve just made
    is at the least ``U``."""

    def __init__(self, step: float = 10.0, limit: int = 10):
        self.step, self.limit = math.log(step), limit
        self.seen: List[Tuple[float, float]] = []  # (log α, U)
        self.vertex_tried = False

    def propose(self, alpha: float, risk: float) -> Optional[float]:
        """The next α after the solve at ``alpha`` gave ``risk``; ``None`` when it is the least."""
        here = math.log(alpha)
        self.seen.append((here, risk))
        pts = sorted(self.seen)
        best = min(range(len(pts)), key=lambda i: pts[i][1])
        done = self.vertex_tried or len(self.seen) >= self.limit
        if not done and best == 0:
            return math.exp(pts[0][0] - self.step)
        if not done and best == len(pts) - 1:
            return math.exp(pts[-1][0] + self.step)
        if not done:
            (a, fa), (b, fb), (c, fc) = pts[best - 1], pts[best], pts[best + 1]
            denom = (b - a) * (fb - fc) - (b - c) * (fb - fa)
            x = b if denom == 0 else b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / denom
            self.vertex_tried = True
            if min(abs(x - p[0]) for p in pts) > 0.05 * self.step:
                return math.exp(min(max(x, a), c))
        least = pts[best][0]
        return None if abs(least - here) < 1e-12 else math.exp(least)

    @property
    def solves(self) -> int:
        return len(self.seen)


class LCurveSearch:
    """Proposes the next weight from the ``(α, fit, penalty)`` triples seen; ``None`` once the
    solve just made is at the corner."""

    def __init__(self, span: int = 3, step: float = 10.0):
        self.step = math.log(step)
        self.offsets = [0] + [-k for k in range(1, span + 1)] + list(range(1, span + 1))
        self.seen: List[Tuple[float, float, float]] = []  # (log α, log fit, log penalty)
        self.base: Optional[float] = None
        self.chosen = False

    def propose(self, alpha: float, fit: float, penalty: float) -> Optional[float]:
        """The next α after the solve at ``alpha`` gave ``fit`` and ``penalty``; ``None`` when it
        is the corner."""
        here = math.log(alpha)
        self.base = here if self.base is None else self.base
        self.seen.append((here, math.log(max(fit, 1e-300)), math.log(max(penalty, 1e-300))))
        if self.chosen:
            return None
        if len(self.seen) < len(self.offsets):
            return math.exp(self.base + self.offsets[len(self.seen)] * self.step)
        self.chosen = True
        corner = self.corner()
        return None if abs(corner - here) < 1e-12 else math.exp(corner)

    def corner(self) -> float:
        """log α of the interior point of greatest signed curvature of (log fit, log penalty),
        the points in order of α (the greatest even where none bends toward a corner)."""
        pts = sorted(self.seen)
        best, where = -math.inf, pts[0][0]
        for (_, x0, y0), (a, x1, y1), (_, x2, y2) in zip(pts, pts[1:], pts[2:]):
            cross = (x1 - x0) * (y2 - y1) - (y1 - y0) * (x2 - x1)
            lengths = math.hypot(x1 - x0, y1 - y0) * math.hypot(x2 - x1, y2 - y1) * math.hypot(x2 - x0, y2 - y0)
            kappa = 2.0 * cross / lengths if lengths > 0 else 0.0
            if kappa > best:
                best, where = kappa, a
        return where

    @property
    def solves(self) -> int:
        return len(self.seen)
