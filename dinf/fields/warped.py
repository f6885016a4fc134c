"""A field with cells graded toward a focus: a smooth monotone map per axis ahead of the grid.

``u(x) = inner(φ(x))`` with ``φ`` mapping each focused axis of the box onto itself,
``φ(x) = lo + (ξ + 1) L / 2``, ``ξ = 2 (asinh(β (s − c)) − A) / (B − A) − 1`` in the unit
coordinate ``s`` of the axis (``A``, ``B`` the asinh at ``s = ∓1``). ``φ'`` peaks at the focus
``c``: the inner grid's uniform cells, pulled back through ``φ``, are ``ratio`` times smaller at the
focus than at the far end of the axis. ``φ`` is analytic, so the field stays C∞.

The jet follows by the chain rule (per-axis maps, so no cross terms beyond the diagonal):
``∂_a u = φ'_a g_a``, ``∂_a∂_b u = φ'_a φ'_b g_ab + δ_ab φ''_a g_a``, with ``g`` the inner jet
at ``φ(x)``. The basis transforms the same way, so least squares and Gauss–Newton see the warped
field as any other. ``spacing`` gives ``φ⁻¹``: points spread evenly in the inner field's
coordinates and pulled back through it land evenly per cell (``EquationProblem.sample``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from dinf.errors import ConfigError
from dinf.fields.base import Field, WrappedField
from dinf.jet import Jet


class AxisFocus:
    """The graded map of one axis ``[lo, hi]`` with its finest cells at ``at``: cells there are
    ``ratio`` times smaller than at the far end."""

    def __init__(self, lo: float, hi: float, at: float, ratio: float, key: str = "grid.focus"):
        if not lo <= at <= hi:
            raise ConfigError(f"{key}.at", f"must lie in the axis [{lo}, {hi}], got {at}")
        if not ratio > 1:
            raise ConfigError(f"{key}.ratio", f"must be > 1 (the cell-size ratio), got {ratio}")
        self.lo, self.length = float(lo), float(hi - lo)
        self.c = 2.0 * (at - lo) / self.length - 1.0
        self.beta = math.sqrt(ratio * ratio - 1.0) / (1.0 + abs(self.c))
        self.a = math.asinh(self.beta * (-1.0 - self.c))
        self.b = math.asinh(self.beta * (1.0 - self.c))

    def __call__(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``φ(x)``, ``φ'(x)``, ``φ''(x)``."""
        q = self.beta * (2.0 * (x - self.lo) / self.length - 1.0 - self.c)
        root = torch.sqrt(1.0 + q * q)
        xi = 2.0 * (torch.asinh(q) - self.a) / (self.b - self.a) - 1.0
        d1 = 2.0 * self.beta / ((self.b - self.a) * root)
        d2 = -d1 * q * self.beta / (root * root) * (2.0 / self.length)
        return self.lo + (xi + 1.0) * self.length / 2.0, d1, d2

    def inverse(self, y: Tensor) -> Tensor:
        """``φ⁻¹(y)``: evenly spread ``y`` become points evenly spread over the graded cells."""
        xi = 2.0 * (y - self.lo) / self.length - 1.0
        s = self.c + torch.sinh((xi + 1.0) * (self.b - self.a) / 2.0 + self.a) / self.beta
        return self.lo + (s + 1.0) * self.length / 2.0


def focus_axes(focus: Mapping[str, Any], coords: Sequence[str], bounds: Sequence[Sequence[float]],
               key: str = "grid.focus") -> Dict[int, AxisFocus]:
    """``{axis: AxisFocus}`` from ``{coordinate: {at, ratio}}`` (a problem's coordinate names)."""
    axes: Dict[int, AxisFocus] = {}
    for name, spec in focus.items():
        if name not in coords:
            raise ConfigError(key, f"{name!r} is not a coordinate of the problem ({', '.join(coords)})")
        if not isinstance(spec, Mapping) or set(spec) - {"at", "ratio"} or "ratio" not in spec:
            raise ConfigError(f"{key}.{name}", f"give {{at: <coordinate>, ratio: <cell-size ratio>}}, got {spec!r}")
        a = list(coords).index(name)
        lo, hi = (float(v) for v in bounds[a])
        axes[a] = AxisFocus(lo, hi, float(spec.get("at", (lo + hi) / 2)), float(spec["ratio"]), f"{key}.{name}")
    return axes


class WarpedField(WrappedField):
    """``inner`` seen through the graded maps ``axes`` (``{axis: AxisFocus}``); every other
    attribute (grids, levels, decoder, …) is the inner field's."""

    separable = False  # the pixel-grid operator reads unwarped coordinates

    def __init__(self, inner: Field, axes: Mapping[int, AxisFocus]):
        super().__init__(inner)
        self.axes = dict(axes)

    @property
    def max_order(self) -> Optional[int]:
        """The chain rule here stops at the second derivative."""
        inner = self.inner.max_order
        return 2 if inner is None else min(2, inner)

    def spacing(self) -> Dict[int, Callable[[Tensor], Tensor]]:
        """Per axis, the map taking evenly spread coordinates to evenly-per-cell ones."""
        return {a: f.inverse for a, f in self.axes.items()}

    def even(self) -> Dict[int, Callable[[Tensor], Tensor]]:
        """Per axis, ``φ``: the problem's coordinates to the even ones (``spacing`` undone)."""
        return {a: (lambda x, f=f: f(x)[0]) for a, f in self.axes.items()}

    def cell_edges(self, cells: Sequence[int], bounds: Sequence[Sequence[float]]) -> List[np.ndarray]:
        """Per axis, the physical edges of ``cells`` uniform inner cells over ``bounds``: ``φ⁻¹``
        of the uniform edges on a graded axis."""
        edges = []
        for a, (n, (lo, hi)) in enumerate(zip(cells, bounds)):
            uniform = torch.linspace(float(lo), float(hi), int(n) + 1, dtype=torch.float64)
            edges.append((self.axes[a].inverse(uniform) if a in self.axes else uniform).numpy())
        return edges

    def _warp(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        y, d1, d2 = x.clone(), torch.ones_like(x), torch.zeros_like(x)
        for a, f in self.axes.items():
            y[:, a], d1[:, a], d2[:, a] = f(x[:, a])
        return y, d1, d2

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(self._warp(x)[0])

    def jet(self, x: Tensor, order: int = 2) -> Jet:
        y, d1, d2 = self._warp(x)
        j = self.inner.jet(y, order)
        if j.grad is None:
            return j
        d1, d2 = d1.to(j.grad.dtype), d2.to(j.grad.dtype)
        grad = j.grad * d1[:, None, :]
        hess = None
        if j.hess is not None:
            hess = j.hess * (d1[:, :, None] * d1[:, None, :])[:, None]
            hess = hess + torch.diag_embed(j.grad * d2[:, None, :])
        return Jet(j.value, grad, hess)

    def basis(self, x: Tensor, level: int, order: int) -> Tuple[Tensor, Tensor]:
        """The inner basis at ``φ(x)``, its weight jets taken back to ``x`` by the chain rule."""
        y, d1, d2 = self._warp(x)
        cols, w = self.inner.basis(y, level, order)  # w: [N, A, M]
        return cols, self._chained(w, d1, d2, order)

    def level_rows(self, x: Tensor, level: int, order: int) -> Tuple[Optional[Tensor], Tensor, Tensor]:
        """The inner field's ``level_rows`` at ``φ(x)`` (a refined grid's: the points a level
        reaches), their weight jets taken back to ``x``."""
        y, d1, d2 = self._warp(x)
        rows, cols, w = self.inner.level_rows(y, level, order)
        if rows is not None:
            d1, d2 = d1[rows], d2[rows]
        return rows, cols, self._chained(w, d1, d2, order)

    def _chained(self, w: Tensor, d1: Tensor, d2: Tensor, order: int) -> Tensor:
        """Weight jets ``[N, A, M]`` at ``φ(x)`` as jets in ``x`` (the chain rule, per-axis maps)."""
        if order == 0:
            return w
        d = self.in_dim
        d1, d2 = d1.to(w.dtype), d2.to(w.dtype)
        rows = [w[:, :1], w[:, 1:1 + d] * d1[:, :, None]]
        if order >= 2:
            hess = w[:, 1 + d:].reshape(w.shape[0], d, d, -1) * (d1[:, :, None] * d1[:, None, :])[..., None]
            diag = torch.arange(d)
            hess[:, diag, diag] += w[:, 1:1 + d] * d2[:, :, None]
            rows.append(hess.reshape(w.shape[0], d * d, -1))
        return torch.cat(rows, 1)


def edges_of(field: Any, bounds: Sequence[Sequence[float]]) -> Optional[Callable[[List[int]], List[np.ndarray]]]:
    """``cells -> edges``: a graded field's cells per axis to their edges over ``bounds``
    (``WarpedField.cell_edges``); None for a field with even cells."""
    graded = getattr(field, "cell_edges", None)
    return (lambda cells: graded(cells, bounds)) if callable(graded) else None


def sample_for(field: Any, problem: Any, n: int, generator: torch.Generator) -> Any:
    """``problem.sample(n, generator)``, spread evenly over a graded field's cells when ``field``
    has a ``spacing`` (a ``WarpedField``), with more points in a refined grid's finer cells
    (``RefinedField.refined_lattices``: ``n`` counts those of the grid's finest cells)."""
    spacing = getattr(field, "spacing", None)
    kwargs: Dict[str, Any] = {"spacing": spacing()} if callable(spacing) else {}
    if getattr(field, "refined", 0):  # a RefinedField with finer levels (its cells even behind a grading)
        kwargs["refined"] = field.refined_lattices(n)
        if callable(spacing):
            kwargs["even"] = field.even()
    return problem.sample(n, generator, **kwargs)
