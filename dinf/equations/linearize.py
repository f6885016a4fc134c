"""Rows of a residual linearised around a jet: the Gauss–Newton step's least-squares system.

Near a jet ``J₀``, ``r(J) ≈ r(J₀) + Σ_k ∂r/∂J_k(J₀) · (J_k − J₀_k)``: rows ``coef · J − rhs`` with
``coef_k = ∂r/∂J_k(J₀)`` and ``rhs = coef · J₀ − r(J₀)``, the same form as an affine residual's
rows, so the linear solver's machinery takes them unchanged. A residual's value at a point depends
only on the jet at that point, so one backward pass per real part gives every point's derivatives.
This works alike for text residuals and Python ones (any function autograd can follow).

A text residual's rows come from its compiled parts and symbolic derivatives instead
(``Residual.linearized_rows``: no graph, no backward pass); ``autograd_rows`` is the reference
they are tested against, and what Python residuals (and a derivative with no torch form) use.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Tuple

import torch
from torch import Tensor

from dinf.equations.residual import Residual, jet_width
from dinf.jet import Jet


def linearized_rows(residual: Any, jet: Jet, point_data: Mapping[str, Tensor], dim: int, order: int
                    ) -> Tuple[Tensor, Tensor]:
    """``coef`` ``[N, P, C, A]`` and ``rhs`` ``[N, P]`` of ``residual`` linearised at ``jet``
    (``A`` the jet entries up to ``order``: ``Jet.entries``)."""
    if isinstance(residual, Residual):
        rows = residual.linearized_rows(jet, point_data, dim, order)
        if rows is not None:
            return rows
    return autograd_rows(residual.evaluate, jet, point_data, dim, order)


def autograd_rows(evaluate: Callable[[Jet, Mapping[str, Tensor]], Tensor], jet: Jet,
                  point_data: Mapping[str, Tensor], dim: int, order: int) -> Tuple[Tensor, Tensor]:
    """``linearized_rows`` by autograd through ``evaluate(jet, point_data)`` ``[N, P]``."""
    width = jet_width(order, dim)
    with torch.enable_grad():
        value = jet.value.detach().clone().requires_grad_(True)
        grad = jet.grad.detach().clone().requires_grad_(True) if jet.grad is not None and order >= 1 else None
        hess = jet.hess.detach().clone().requires_grad_(True) if jet.hess is not None and order >= 2 else None
        higher = None
        if jet.higher is not None and order >= 3:
            higher = jet.truncated(order).higher.detach().clone().requires_grad_(True)
        leaves = [t for t in (value, grad, hess, higher) if t is not None]
        r = evaluate(Jet(value, grad, hess, higher), point_data)  # [N, P]
        n, parts, channels = value.shape[0], r.shape[1], value.shape[1]
        coef = value.new_zeros(n, parts, channels, width)
        for p in range(parts):
            if not r.requires_grad:  # no jet entry in this residual: a constant row
                break
            gs = torch.autograd.grad(r[:, p].sum(), leaves, retain_graph=p + 1 < parts, allow_unused=True)
            pieces = []
            for g, leaf in zip(gs, leaves):
                g = torch.zeros_like(leaf) if g is None else g
                pieces.append(g.reshape(n, channels, -1))
            coef[:, p] = torch.cat(pieces, -1)[..., :width]
    r = r.detach()
    rhs = torch.einsum("npca,nca->np", coef, _entries(jet, width)) - r
    return coef, rhs


def _entries(jet: Jet, width: int) -> Tensor:
    """``[N, C, width]``: a jet's entries (``Jet.entries``), detached."""
    out = jet.entries().detach()
    if out.shape[-1] < width:
        raise ValueError(f"the system needs {width} jet entries, the jet has {out.shape[-1]}")
    return out[..., :width]
