"""The singular part of a 2D Helmholtz point source, so a field need only represent what is smooth.

The free-space field of ``Δu + k²u = −a δ`` is ``u = −(i/4) H0⁽²⁾(k r) a``. Since
``H0⁽²⁾ = J0 − i Y0`` and ``Y0(z) = (2/π) log(z) J0(z) + (an entire function)``, its only
singularity is ``u_s = c log(r) J0(k r)`` with ``c = −a / (2π)``, and ``u − u_s`` is smooth (real
analytic) at the source. ``u_s`` is cut off smoothly, ``u_s = c log(r) J0(k r) χ(r)`` with χ = 1 for
r ≤ r0 and 0 for r ≥ r1 (C∞ between, ``cutoff``), so it vanishes before the PML.

Because ``Δ(log r) = 2π δ`` and ``Δ J0(k r) + k² J0(k r) = 0``,

    (Δ + k²) u_s = 2πc δ + χ · (−2ck J1(k r) / r) + 2χ'(r) c (J0(k r) / r − k log(r) J1(k r))
                   + c log(r) J0(k r) (χ'' + χ'/r),

so the source term ``a δ`` cancels ``2πc δ`` and the remainder ``w = u − u_s`` satisfies
``(Δ + k²) w + S = 0`` with ``S`` the smooth terms above (``remainder``), inside the layer-free
region where χ lives. A Gaussian source of unit mass and variance σ acts outside its support as a
point source of strength ``a exp(−k²σ/2)`` (its Fourier transform at k), which is what ``a`` is
here: the smooth remainder then reproduces the Hankel reference exactly outside the Gaussian.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
from scipy import special
from torch import Tensor

_R_FLOOR = 1e-12  # r below this is the source point itself: u_s takes its value at this radius


def _bessel(fn, z: Tensor) -> Tensor:
    """scipy's J0 / J1 (1e-16; torch.special's are 4e-7 off in float64, which a PDE residual
    differentiated twice would show), on ``z``'s device."""
    return torch.as_tensor(fn(z.detach().cpu().numpy()), device=z.device)


def cutoff(r: Tensor, r0: float, r1: float) -> Tuple[Tensor, Tensor, Tensor]:
    """χ(r), χ'(r), χ''(r): 1 up to ``r0``, 0 from ``r1``, the C∞ step ψ(1−u) / (ψ(1−u) + ψ(u)) with
    ψ(t) = exp(−1/t), u = (r − r0) / (r1 − r0), in between (derivatives by autograd, float64)."""
    rr = r.detach().double().requires_grad_(True)
    with torch.enable_grad():
        u = ((rr - r0) / (r1 - r0)).clamp(1e-6, 1 - 1e-6)  # outside [r0, r1] χ is flat: its derivatives 0
        a, b = torch.exp(-1.0 / (1.0 - u)), torch.exp(-1.0 / u)
        chi = a / (a + b)
        (d1,) = torch.autograd.grad(chi.sum(), rr, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), rr)
    inside, outside = r <= r0, r >= r1
    chi = torch.where(inside, 1.0, torch.where(outside, 0.0, chi.detach()))
    flat = inside | outside
    zero = torch.zeros_like(chi)
    return chi.to(r.dtype), torch.where(flat, zero, d1.detach()).to(r.dtype), torch.where(flat, zero, d2).to(r.dtype)


class SingularPart:
    """``u_s = c log(r) J0(k r) χ(r)`` of a point source of complex strength ``amplitude`` at
    ``center`` (module doc), cut off between radii ``r0 < r1``."""

    def __init__(self, wavenumber: float, center: Sequence[float], amplitude: complex, r0: float, r1: float):
        if not 0 < r0 < r1:
            raise ValueError(f"need 0 < r0 < r1, got {r0}, {r1}")
        self.k, self.center, self.r0, self.r1 = float(wavenumber), tuple(float(c) for c in center), float(r0), float(r1)
        self.c = -complex(amplitude) / (2.0 * math.pi)

    def _radius(self, x: Tensor) -> Tensor:
        d = x.double() - torch.tensor(self.center, dtype=torch.float64, device=x.device)
        return torch.sqrt((d * d).sum(-1)).clamp_min(_R_FLOOR)

    def value(self, x: Tensor) -> Tensor:
        """Complex ``u_s`` ``[N]`` at ``x`` ``[N, 2]`` (float64)."""
        r = self._radius(x)
        chi = cutoff(r, self.r0, self.r1)[0]
        return self.c * torch.log(r) * _bessel(special.j0, self.k * r) * chi

    def remainder(self, x: Tensor) -> Tensor:
        """Complex ``S`` ``[N]``: the point source plus ``(Δ + k²) u_s``, its delta cancelled (module doc)."""
        r = self._radius(x)
        k, c = self.k, self.c
        kr = k * r
        j0, j1 = _bessel(special.j0, kr), _bessel(special.j1, kr)
        # J1(kr)/r → k/2 as r → 0: the series' first term below where the quotient loses digits.
        j1_r = torch.where(kr < 1e-6, torch.full_like(r, 0.5 * k), j1 / r)
        chi, d1, d2 = cutoff(r, self.r0, self.r1)
        log_r = torch.log(r)
        # χ' and χ'' vanish near the source (r ≤ r0), so the 1/r there is never large.
        s = chi * (-2.0 * k * j1_r) + 2.0 * d1 * (j0 / r - k * log_r * j1) + log_r * j0 * (d2 + d1 / r)
        return c * s
