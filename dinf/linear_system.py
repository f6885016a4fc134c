"""Problems that are linear in the field state their loss as rows of a least-squares system.

A row is ``Σ_{c,a} coef[n, e, c, a] · J_a(u_c)(x_n) - rhs[n, e]`` where ``J_a`` runs over the
jet's entries (value, then the d gradient entries, then the d·d Hessian entries, row-major), and
the problem's loss is the sum of the squared rows, minus twice an optional linear functional
``Σ_{n,c,a} linear[n, c, a] · J_a(u_c)(x_n)``: an energy ``½ a(u, u) − ℓ(u)`` with a sum-of-squares
``a`` (the plate) is of that form. Solvers (``dinf.solvers.least_squares``) combine this with a field's basis;
problems never see the field.

A problem whose measurements combine several points (a filter applied to the derivatives, as a
Sobel filter smooths across its axis) adds ``mix``: a sparse ``[R·E, N·E]`` matrix taking the
pointwise rows (flattened point-major) to the ``R`` measured rows; ``rhs`` is then ``[R, E]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from dinf.jet import Jet


@dataclass
class LinearSystem:
    """``coef`` ``[N, E, C, A]`` and ``rhs`` ``[N, E]`` at points ``x`` ``[N, d]``; ``linear``
    ``[N, C, A]`` (optional) is the linear functional subtracted twice from the squares."""

    x: Tensor
    coef: Tensor
    rhs: Tensor
    linear: Optional[Tensor] = None
    mix: Optional[Tensor] = None  # sparse [R·E, N·E]: measured rows from pointwise ones

    def scaled(self, weights: Tensor) -> "LinearSystem":
        """Rows multiplied by per-point ``weights`` ``[N]`` (the linear term is left alone)."""
        if self.mix is not None:
            raise ValueError("scaled() weighs points; a mixed system weighs its rows in mix")
        return LinearSystem(self.x, self.coef * weights[:, None, None, None], self.rhs * weights[:, None], self.linear)

    def pointwise(self, jet: Jet) -> Tensor:
        """``coef · J`` ``[N, E]``: the rows before ``mix`` and without the right side."""
        return torch.einsum("neca,nca->ne", self.coef.to(jet.value.dtype), jet_entries(jet, self.coef.shape[-1]))

    def residual(self, jet: Jet) -> Tensor:
        """The rows ``[R, E]`` (``R = N`` without ``mix``) for a jet of the field at ``x``."""
        rows = self.pointwise(jet)
        if self.mix is not None:
            mix = self.mix.to(rows.dtype)
            rows = torch.sparse.mm(mix, rows.reshape(-1, 1)).reshape(-1, rows.shape[1])
        return rows - self.rhs.to(rows.dtype)

    def loss(self, jet: Jet) -> Tensor:
        """``Σ rows² − 2 ℓ(u)``: what the problem's loss is for this jet."""
        total = (self.residual(jet) ** 2).sum()
        if self.linear is not None:
            entries = jet_entries(jet, self.linear.shape[-1])
            total = total - 2.0 * (self.linear.to(entries.dtype) * entries).sum()
        return total


@dataclass
class SeparableTerm:
    """One term ``f(x₀) g(x₁) ∂₀^m₀ ∂₁^m₁ u`` of a 2D residual whose coefficients factor per axis
    (``orders`` = (m₀, m₁); ``factors`` map 1D coordinates ``[P]`` to complex coefficients)."""

    orders: Tuple[int, int]
    factors: Tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]


@dataclass
class SeparableSystem:
    """A complex residual ``Σ_t f_t(x₀) g_t(x₁) ∂^t u + s(x)`` of one complex unknown
    ``u = u_0 + i u_1`` on ``[-1, 1]²``: its loss is the mean of ``|residual|²`` over the square.
    ``source`` maps points ``[N, 2]`` (float64) to complex ``s`` ``[N]``. A solver that knows the
    field's per-axis basis builds the normal equations from 1D factors (``dinf.solvers.separable``)."""

    terms: List[SeparableTerm]
    source: Callable[[Tensor], Tensor]


def jet_entries(jet: Jet, count: int) -> Tensor:
    """``[N, C, count]``: a jet's entries (``Jet.entries``: value, gradient, Hessian, higher
    derivatives), as far as ``count`` reaches."""
    out = jet.entries()
    if out.shape[-1] < count:
        raise ValueError(f"the system needs {count} jet entries, the jet has {out.shape[-1]}")
    return out[..., :count]


def complex_rows(k: Tensor) -> Tensor:
    """Real rows ``[N, 2, 2, A]`` of a complex operator ``Σ_a k_a ∂_a u`` ``(k: [N, A])`` acting on
    ``u = u_0 + i u_1``: equation 0 is the real part, equation 1 the imaginary part."""
    re, im = k.real, k.imag
    return torch.stack([torch.stack([re, -im], 1), torch.stack([im, re], 1)], 1)


def mix_matrix(system: LinearSystem) -> Optional[sp.csr_matrix]:
    """``system.mix`` as a float64 scipy CSR matrix (None without one)."""
    if system.mix is None:
        return None
    m = system.mix.detach().coalesce().cpu()
    idx = m.indices().numpy()
    vals = m.values().double().numpy()
    return sp.csr_matrix((vals, (idx[0], idx[1])), shape=tuple(m.shape), dtype=np.float64)
