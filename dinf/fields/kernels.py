"""Radial basis kernels and the jets of normalised RBF interpolation weights.

Weights live in grid-index units: for a query t (index space) and neighbour nodes p_k,
w_k = φ(|t - p_k|) / Σ_j φ(|t - p_j|). Derivatives are taken with respect to t; the caller
scales them to x. Kernels are written as ψ(q) = φ(sqrt(q)) with q = r², which keeps every
derivative smooth at r = 0.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor

# ψ(q), ψ'(q), ψ''(q) for s = ε² q; each returns the three as a tuple.
PsiFn = Callable[[Tensor, float], Tuple[Tensor, Tensor, Tensor]]


def _gaussian(q: Tensor, eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    e2 = eps * eps
    p = torch.exp(-e2 * q)
    return p, -e2 * p, e2 * e2 * p


def _inverse_quadratic(q: Tensor, eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    e2 = eps * eps
    inv = 1.0 / (1.0 + e2 * q)
    return inv, -e2 * inv * inv, 2.0 * e2 * e2 * inv * inv * inv


def _inverse_multiquadric(q: Tensor, eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    e2 = eps * eps
    inv = 1.0 / (1.0 + e2 * q)
    p = torch.sqrt(inv)
    return p, -0.5 * e2 * p * inv, 0.75 * e2 * e2 * p * inv * inv


def _multiquadric(q: Tensor, eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    # Grows with r: after normalisation the far neighbours weigh more than the near ones.
    e2 = eps * eps
    p = torch.sqrt(1.0 + e2 * q)
    return p, 0.5 * e2 / p, -0.25 * e2 * e2 / (p * p * p)


KERNELS: Dict[str, PsiFn] = {
    "gaussian": _gaussian,
    "inverse_quadratic": _inverse_quadratic,
    "inverse_multiquadric": _inverse_multiquadric,
    "multiquadric": _multiquadric,
}

# Kernels whose normalised tensor-product weights factor exactly into per-axis weights.
SEPARABLE = {"gaussian"}


# Below this 1 − s², exp(−c s⁴ / (1 − s²)) has underflowed (c ≤ 1 and float64: e^−745) and its
# log-derivatives overflow: the node's weight is set to exactly 0 instead.
WINDOW_FLOOR = 1e-3


def window_log(s: Tensor, c: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The bump window b(s) = exp(−c s⁴ / (1 − s²)) on |s| < 1 (0 beyond), s = r / ρ, as
    ``inside`` (a mask where b > 0) and ℓ = log b, dℓ/ds, d²ℓ/ds² there (0 elsewhere).

    b and every derivative vanish at |s| → 1, so a node entering or leaving the (2ρ)-wide
    neighbourhood at a cell border does so with weight 0 to all orders: the field is C∞ across
    borders, not only inside cells. Near s = 0, b = 1 − c s⁴ + …: the window leaves the Gaussian's
    width (its curvature at r = 0, ε) as it is and trims its tail.
    """
    u = 1.0 - s * s
    inside = u > WINDOW_FLOOR * c
    safe = torch.where(inside, u, torch.ones_like(u))  # no inf (nor NaN gradients) outside
    zero = torch.zeros_like(s)
    s2 = s * s
    ell = torch.where(inside, -c * s2 * s2 / safe, zero)
    d1 = torch.where(inside, -2.0 * c * s * s2 * (2.0 - s2) / (safe * safe), zero)
    d2 = torch.where(inside, -2.0 * c * s2 * (6.0 - 3.0 * s2 + s2 * s2) / (safe * safe * safe), zero)
    return inside, ell, d1, d2


def window_log_higher(s: Tensor, c: float, n: int, inside: Tensor) -> Tensor:
    """dⁿℓ/dsⁿ of the bump's log ℓ = −c s⁴ / (1 − s²) for n ≥ 3, 0 outside: with
    s⁴ / (1 − s²) = −s² − 1 + ½ (1/(1 − s) + 1/(1 + s)), the polynomial part is gone by n = 3 and
    dⁿℓ/dsⁿ = −c n!/2 · ((1 − s)^−(n+1) + (−1)ⁿ (1 + s)^−(n+1)), with no cancellation."""
    one = torch.ones_like(s)
    sm, sp = torch.where(inside, 1.0 - s, one), torch.where(inside, 1.0 + s, one)
    val = -0.5 * c * math.factorial(n) * (sm ** (-(n + 1)) + (-1) ** n * sp ** (-(n + 1)))
    return torch.where(inside, val, torch.zeros_like(s))


def gaussian_weights_1d(r: Tensor, eps: float, order: int, window: float = 0.0, rho: int = 0) -> Tensor:
    """Normalised 1D Gaussian weights and their t-derivatives, to any order.

    r: ``[..., K]`` signed distances t - p_k. Returns ``[..., order + 1, K]``:
    w, w' = w (g - ḡ), w'' = w ((g - ḡ)² - Var_w g + g' - mean_w g'), with g = (log φ)' and ḡ,
    Var_w the w-weighted mean and variance of g. For the plain Gaussian g = -2ε² r and g' is
    constant, so its terms cancel. ``window`` c > 0 multiplies φ by the bump ``window_log``
    of s = r / ρ (``rho``: the neighbourhood half-width, K = 2ρ).

    Orders n ≥ 3 follow from w = φ / Σφ: with the log-derivatives centred on their w-means,
    aⱼ = (log φ)⁽ʲ⁾ − mean_w (log φ)⁽ʲ⁾ (the centring adds a polynomial in t to every node's
    logit alike, which leaves w unchanged), Bₙ the complete Bell polynomial of a₁ … aₙ (φ⁽ⁿ⁾ / φ
    after the centring) and σⱼ = mean_w Bⱼ, the quotient rule gives
    w⁽ⁿ⁾ = w Bₙ − Σⱼ₌₁ⁿ C(n, j) σⱼ w⁽ⁿ⁻ʲ⁾.
    """
    e2 = eps * eps
    logits = -e2 * r * r
    g = -2.0 * e2 * r
    dg_dr = None
    inside = None
    if window > 0:
        inside, ell, d1, d2 = window_log(r / rho, window)
        logits = torch.where(inside, logits + ell, torch.full_like(logits, -math.inf))
        g = torch.where(inside, g + d1 / rho, torch.zeros_like(g))
        dg_dr = torch.where(inside, d2 / (rho * rho), torch.zeros_like(g))  # g' - (-2ε²): the window's part
    # Shift by the max: the normalisation cancels it, and it keeps far queries finite.
    logits = logits - logits.amax(-1, keepdim=True)
    phi = torch.exp(logits)
    w = phi / phi.sum(-1, keepdim=True)
    out = [w]
    if order >= 1:
        dg = g - (w * g).sum(-1, keepdim=True)
        out.append(w * dg)
        if order >= 2:
            var = (w * dg * dg).sum(-1, keepdim=True)
            curv = dg * dg - var
            if dg_dr is not None:
                curv = curv + dg_dr - (w * dg_dr).sum(-1, keepdim=True)
            out.append(w * curv)
    if order > 2:
        a = [None, dg, torch.zeros_like(dg) if dg_dr is None else dg_dr - (w * dg_dr).sum(-1, keepdim=True)]
        for n in range(3, order + 1):  # the Gaussian's own log-derivatives end at the second
            if inside is None:
                a.append(torch.zeros_like(dg))
            else:
                dn = window_log_higher(r / rho, window, n, inside) / rho**n
                a.append(dn - (w * dn).sum(-1, keepdim=True))
        bell = [torch.ones_like(w)]
        for n in range(1, order + 1):
            bell.append(sum(math.comb(n - 1, j - 1) * a[j] * bell[n - j] for j in range(1, n + 1)))
        sigma = [None] + [(w * b).sum(-1, keepdim=True) for b in bell[1:]]
        for n in range(3, order + 1):
            out.append(w * bell[n] - sum(math.comb(n, j) * sigma[j] * out[n - j] for j in range(1, n + 1)))
    return torch.stack(out, -2)


def radial_weights(delta: Tensor, psi: PsiFn, eps: float, order: int) -> Tensor:
    """Normalised radial weights and their t-derivatives over a d-dimensional neighbourhood.

    delta: ``[N, K, d]`` offsets t - p_k. Returns ``[N, A, K]`` with A = 1 (value), then d
    gradient rows, then d·d Hessian rows (row-major), as far as ``order`` asks.
    """
    n, k, d = delta.shape
    q = (delta * delta).sum(-1)  # [N, K]
    phi, dphi, d2phi = psi(q, eps)
    s = phi.sum(-1, keepdim=True)  # [N, 1]
    w = phi / s
    rows = [w.unsqueeze(1)]
    if order >= 1:
        gphi = 2.0 * dphi.unsqueeze(-1) * delta  # [N, K, d]
        gs = gphi.sum(1, keepdim=True)  # [N, 1, d]
        gw = (gphi - w.unsqueeze(-1) * gs) / s.unsqueeze(-1)  # [N, K, d]
        rows.append(gw.transpose(1, 2))
        if order >= 2:
            eye = torch.eye(d, dtype=delta.dtype, device=delta.device)
            hphi = 4.0 * d2phi[..., None, None] * delta.unsqueeze(-1) * delta.unsqueeze(-2)
            hphi = hphi + 2.0 * dphi[..., None, None] * eye  # [N, K, d, d]
            hs = hphi.sum(1, keepdim=True)
            hw = (
                hphi
                - gw.unsqueeze(-1) * gs.unsqueeze(-2)
                - gs.unsqueeze(-1) * gw.unsqueeze(-2)
                - w[..., None, None] * hs
            ) / s[..., None, None]
            rows.append(hw.reshape(n, k, d * d).transpose(1, 2))
    if order > 2:
        raise NotImplementedError("closed-form jets are implemented up to order 2")
    return torch.cat(rows, 1)
