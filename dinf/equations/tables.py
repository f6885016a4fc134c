"""Coefficients given as tables of numbers rather than formulas.

A ``Table`` maps points (some of the problem's coordinates) to numbers. Three kinds:

* ``Blocks``: piecewise constant on a tensor grid of blocks (PINNacle's Poisson2d-MS coefficient
  on 5 × 5 blocks). A point on a border between blocks takes the upper block's value (as PINNacle
  assigns it); the last border belongs to the last block.
* ``Gridded``: values at the nodes of a tensor grid, interpolated (linear, cubic, nearest:
  scipy's ``RegularGridInterpolator``); points outside the grid take the nearest border value.
* ``Scattered``: values at scattered points, interpolated linearly over their Delaunay
  triangulation (scipy's ``LinearNDInterpolator``), the nearest value outside their hull.

In an equation a table is a sympy function of its coordinates (``table_function``), so every
path that evaluates expressions at points (residual rows for least squares, the tree walk,
compiled residuals, the classical solvers' coefficients) computes it from the coordinates alone.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, List, Sequence, Tuple, Type

import numpy as np
import sympy as sp
import torch
from torch import Tensor


class Table(ABC):
    """Numbers as a function of the coordinates ``axes`` (names)."""

    def __init__(self, axes: Sequence[str]):
        self.axes: List[str] = list(axes)

    @abstractmethod
    def lookup(self, coords: Sequence[Tensor]) -> Tensor:
        """Values ``[N]`` at points given per axis (``len(axes)`` tensors ``[N]``)."""

    def __call__(self, *coords: Tensor) -> Tensor:
        like = coords[0]
        out = self.lookup([torch.as_tensor(c) for c in coords])
        return out.to(dtype=like.dtype, device=like.device)


class Blocks(Table):
    """``values[i, j, …]`` on the block ``[edges[0][i], edges[0][i+1]) × [edges[1][j], …)``."""

    def __init__(self, axes: Sequence[str], edges: Sequence[Sequence[float]], values: np.ndarray):
        super().__init__(axes)
        self.edges = [torch.as_tensor(np.asarray(e, dtype=np.float64)) for e in edges]
        self.values = torch.as_tensor(np.asarray(values, dtype=np.float64))
        assert self.values.shape == tuple(len(e) - 1 for e in self.edges), (self.values.shape, [len(e) for e in edges])

    def index(self, coords: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Each point's block, per axis (borders: the upper block; beyond the ends: the end blocks)."""
        out = []
        for c, e in zip(coords, self.edges):
            inner = e[1:-1].to(dtype=torch.float64, device=c.device)
            out.append(torch.bucketize(c.detach().to(torch.float64).contiguous(), inner, right=True))
        return tuple(out)

    def lookup(self, coords: Sequence[Tensor]) -> Tensor:
        idx = self.index(coords)
        return self.values.to(idx[0].device)[idx]


class Gridded(Table):
    """Values on the tensor grid ``nodes[0] × nodes[1] × …``, interpolated by ``method``."""

    def __init__(self, axes: Sequence[str], nodes: Sequence[Sequence[float]], values: np.ndarray,
                 method: str = "linear"):
        super().__init__(axes)
        from scipy.interpolate import RegularGridInterpolator

        self.nodes = [np.asarray(n, dtype=np.float64) for n in nodes]
        self.lo = np.array([n[0] for n in self.nodes])
        self.hi = np.array([n[-1] for n in self.nodes])
        self._interp = RegularGridInterpolator(self.nodes, np.asarray(values, dtype=np.float64), method=method)

    def lookup(self, coords: Sequence[Tensor]) -> Tensor:
        pts = np.stack([c.detach().cpu().double().numpy() for c in coords], -1)
        pts = np.clip(pts, self.lo, self.hi)  # outside: the nearest border's value
        return torch.as_tensor(self._interp(pts))


class Scattered(Table):
    """Values at scattered ``points`` ``[M, k]``: linear over their Delaunay triangulation, the
    nearest point's value outside their convex hull (in one axis: ``np.interp``)."""

    def __init__(self, axes: Sequence[str], points: np.ndarray, values: np.ndarray):
        super().__init__(axes)
        from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

        self.points = np.asarray(points, dtype=np.float64).reshape(len(values), -1)
        self.values = np.asarray(values, dtype=np.float64)
        if self.points.shape[1] == 1:
            order = np.argsort(self.points[:, 0])
            self._x, self._v = self.points[order, 0], self.values[order]
        else:
            self._linear = LinearNDInterpolator(self.points, self.values)
            self._nearest = NearestNDInterpolator(self.points, self.values)

    def lookup(self, coords: Sequence[Tensor]) -> Tensor:
        pts = np.stack([c.detach().cpu().double().numpy() for c in coords], -1)
        if self.points.shape[1] == 1:
            return torch.as_tensor(np.interp(pts[:, 0], self._x, self._v))
        out = self._linear(pts)
        outside = np.isnan(out)
        if outside.any():
            out[outside] = self._nearest(pts[outside])
        return torch.as_tensor(out)


class TableFunction(sp.Function):
    """A table as a sympy function of its coordinates; each table gets its own subclass (made by
    ``table_function``) that holds it as ``table``. Its derivatives are not defined: a table is a
    coefficient, not something a residual differentiates."""

    table: Table

    def fdiff(self, argindex: int = 1):  # noqa: D401 - sympy's hook
        raise ValueError(f"the table {type(self).__name__!r} has no derivatives; use it as a coefficient")


_CLASSES: Dict[int, Type[TableFunction]] = {}


def table_function(name: str, table: Table) -> Type[TableFunction]:
    """The sympy function class of ``table``, named ``name`` (one class per table object, so two
    problems' tables of the same name are different functions)."""
    key = id(table)
    cls = _CLASSES.get(key)
    if cls is None or cls.table is not table:
        cls = type(name, (TableFunction,), {"table": table, "nargs": len(table.axes)})
        _CLASSES[key] = cls
    return cls


def applied(name: str, table: Table) -> sp.Expr:
    """The table applied to its coordinates' symbols: what a name in an expression reads as."""
    fn = table_function(name, table)
    return fn(*[sp.Symbol(a, real=True) for a in table.axes])


__all__ = ["Table", "Blocks", "Gridded", "Scattered", "TableFunction", "table_function", "applied"]
