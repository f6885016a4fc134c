"""The exact solution of PINNacle's Wave2d-MS (``Wave2D_LongTime``) as posed.

PINNacle poses ``u_tt = u_xx + 2 u_yy`` on ``(x, y) ∈ [0, 1]²``, ``t ∈ [0, 100]``, with
``u = g`` on the boundary of the square and ``u = g`` at ``t = 0``, where

    g(x, y, t) = sin(πx) sinh(πy) cos(πt) + sinh(3πx) sin(2πy) cos(πt)      (wave2d_ms_pinnacle)

and scores against ``g``. But ``g`` is not a solution: ``g_tt - g_xx - 2 g_yy = -2π² g`` (both
terms satisfy ``g_xx + 2 g_yy = +π² g`` while ``g_tt = -π² g``). PINNacle gives no initial rate;
``g_t(·, 0) = 0``, so ``u_t(·, 0) = 0`` is posed here. This module evaluates the solution ``u`` of
that initial-boundary-value problem.

Derivation
----------
*Particular part.* ``w(x, y) cos(πt)`` solves the equation iff ``w_xx + 2 w_yy + π² w = 0``, and
meets the boundary data iff ``w = g(·, ·, 0)`` on the boundary (``g`` is ``cos(πt)`` times its
``t = 0`` values), i.e. ``w = sinh(π) sin(πx)`` at ``y = 1``, ``sinh(3π) sin(2πy)`` at ``x = 1``,
0 on the other two sides. Separation gives

    w = sinh(π) y sin(πx) + sinh(3π) sin(2πy) sinh(√7 πx) / sinh(√7 π)

(``A(y) sin(πx)`` needs ``A'' = 0``; ``B(x) sin(2πy)`` needs ``B'' = 7π² B``). It is unique:
``-(m² + 2n²)π² + π² ≠ 0`` for ``m, n ≥ 1``.

*Free part.* ``v = u - w cos(πt)`` solves the equation with ``v = 0`` on the boundary,
``v_t(·, 0) = 0`` and ``v(·, 0) = d₀ = g(·, ·, 0) - w = sin(πx) f(y) + sin(2πy) h(x)``, where

    f(y) = sinh(πy) - sinh(π) y,     h(x) = sinh(3πx) - sinh(3π) sinh(√7 πx) / sinh(√7 π).

So ``v = Σ C_mn sin(mπx) sin(nπy) cos(ω_mn t)``, ``ω_mn = π √(m² + 2n²)``, and only ``m = 1`` (from
``f``) and ``n = 2`` (from ``h``) occur. With ``∫₀¹ sinh(ay) sin(nπy) dy = (-1)^{n+1} nπ sinh(a) /
(a² + n²π²)`` and ``∫₀¹ y sin(nπy) dy = (-1)^{n+1} / (nπ)``:

    u = w cos(πt) + sin(πx) B_y(y, t) + sin(2πy) B_x(x, t),
    B_y = Σ_n c_1n sin(nπy) cos(π √(1 + 2n²) t),   c_1n = 2 (-1)^n sinh(π) / (π n (1 + n²)),
    B_x = Σ_m c_m2 sin(mπx) cos(π √(m² + 8) t),    c_m2 = 4 (-1)^m m sinh(3π) / (π (9 + m²)(7 + m²)).

(Verified symbolically with sympy; ``C_12`` receives both contributions, which the sum of the two
series does.) ``B_x`` and ``B_y`` are each a 1-D Klein–Gordon solution ``B_tt = c² B_ss - k² B``
(``c = 1, k² = 8π²`` for ``B_x``; ``c = √2, k² = π²`` for ``B_y``), Dirichlet at ``s = 0, 1``, with
initial value ``h`` resp. ``f`` and zero rate.

Why the series is slow, and what is done about it
-------------------------------------------------
The data are incompatible at second order (the boundary asks ``u_tt = -π² g`` at ``t = 0``, the
equation gives ``+π² g``): ``h''(1) = 2π² sinh(3π) ≠ 0``, ``f''(1) = π² sinh(π) ≠ 0``. So the odd
2-periodic extensions ``H``, ``F`` of ``h``, ``f`` have jumps in their second derivative at odd
integers, ``u`` is only C¹ across the characteristics ``x ± t ∈ 2ℤ + 1`` and
``y ± √2 t ∈ 2ℤ + 1``, and the coefficients decay like ``1/m³``: a plain truncation after ``M``
terms errs by up to ``4 sinh(3π) / (2π M²)``, ~80 000 terms for 1e-10 of ``max|u|`` (this is
``terms=M``, kept for checks). The default evaluation is exact to ~1e-10 instead:

* Write ``cos(πμ_m t) = cos(πc m t) + [cos(πμ_m t) - cos(πc m t)]`` (``μ_m = c m + δ_m``, the
  dispersion ``δ_m = μ_m - c m ≈ L/m``). The first part sums in closed form by d'Alembert,
  ``½ [H(s + ct) + H(s - ct)]``; the second has coefficients ``≤ α π L t / m⁴``.
* That remainder is summed directly for ``m ≤ M₀`` (``M₀``, a power of two ≥ 16, grows with
  ``max|t|`` so that ``z = π |t| δ_{M₀+1} / 2 ≤ 5``: ``M₀ = 128`` for ``B_x`` at ``t ≤ 100``) and
  for ``M₀ < m ≤ M_max`` through ``e^{iπδ_m t} = e^{iz} Σ_{j≤J} (iz)^j s_m^j / j!``
  (``s_m = 2δ_m / δ_{M₀+1} - 1 ∈ (-1, 1]``; ``J`` from the Taylor remainder): each
  ``G_j(θ) = Σ_m a_m s_m^j e^{imπθ}`` is a fixed trigonometric polynomial, tabulated once by FFT
  on ``4 M_max`` points (oversampled 4x) and read by 6-point Lagrange interpolation at
  ``θ = ct ± s``.
* The modes beyond ``M_max`` are bounded by ``α π L |t| / (3 M_max³)``; ``M_max`` (a power of
  two) is chosen from that bound.

Accuracy: :func:`wave2d_ms_error_bound` bounds ``|u_exact - u_evaluated|`` (both series: the modes
beyond the tables, the Taylor remainder, every tabulated mode's Lagrange remainder) by
2.4e-11 × ``sinh(3π)`` for ``|t| ≤ 100`` (``M_max = 2^15`` for ``B_x``, ``2^11`` for ``B_y``) and
stays below 1e-10 for larger ``t`` (``M_max`` grows, capped at ``2^17``; a RuntimeWarning says when
the bound exceeds the target). ``max|u| = sinh(3π) = 6195.8`` (``|g(1, 1/4, 0)|``, also the maximum
on a 41² × 1001 grid over ``t ∈ [0, 100]``). Checked (tests/test_wave2d_ms_exact.py): against a
brute-force ``2^19``-term sum of the plain series (its own tail ≤ 2.3e-12 × ``sinh(3π)``), ~1e-11
× ``sinh(3π)`` at random points and on wavefronts up to ``t = 100``; the coefficients against
``scipy.integrate.quad`` of the projections of ``d₀``; the PDE by 4th-order central differences
(residual ≤ 1e-8 of ``9π² sinh(3π)``) at points away from the characteristics; the boundary values
(``g`` to rounding, ~1e-16 relative) and the initial value (``g(·, ·, 0)``) and rate (0).

Late in time the solution is not just C¹ across a characteristic: behind each front the
Klein–Gordon dispersion leaves a chirp whose local wavenumber is about ``2π √(t/d)`` at distance
``d`` (modes ``m`` travel at group speed ``m / √(m² + 8)``): at ``t = 100``, ``d = 0.03`` it is
~360, so finite differences there need ``h ≲ 1e-3``, and the plain series' error near fronts decays
only like ``1/M²`` (at ``M = 1000`` it is a quarter of the worst-case bound).

``u_t`` (:func:`wave2d_ms_series_u_t`) uses the same split; its remainder decays only like
``α π² c L t / m³``, so the closed-form part also takes the next term, ``-π² c L t`` times the
d'Alembert sum, leaving ``≤ α (π³ c L² t² / 2 + π L) / m⁴``: the bound is 1.4e-8 × ``π sinh(3π)``
for ``|t| ≤ 100`` (``u_t(·, 0) = 0`` to rounding).

Cost: the tables are built once per ``(series, M₀, M_max)`` and cached (~50 MB for ``B_x`` at
``|t| ≤ 100``, ~0.3 s). 200 k scattered points take ~2 s of one core; a grid passed as
broadcastable arrays (e.g. shapes ``(41, 1, 1), (1, 41, 1), (1, 1, 1001)``) is evaluated on its
``(x, t)`` and ``(y, t)`` planes only (41 × 41 × 1001: ~0.6 s), and flat arrays are
de-duplicated to their distinct ``(x, t)`` and ``(y, t)`` pairs (the same grid flattened: ~1.3 s).
Only numpy is used.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Callable, Dict, NamedTuple, Optional

import numpy as np

PI = math.pi
SINH_PI = math.sinh(PI)
SINH_3PI = math.sinh(3.0 * PI)
K7 = math.sqrt(7.0) * PI
SINH_K7 = math.sinh(K7)
U_SCALE = SINH_3PI  # max|u| (= |g(1, 1/4, 0)|); accuracy targets are relative to it
TARGET_REL = 1e-10  # the default evaluation's bound on |error| / U_SCALE (u)
TARGET_REL_UT = 2e-8  # the same for u_t, relative to π U_SCALE

_Z_CAP = 5.0  # the largest Taylor argument z = π |t| δ_{M0+1} / 2 (chooses M0)
_P = 6  # Lagrange stencil points
_OFFS = np.arange(-(_P // 2) + 1, _P // 2 + 1)  # -2 .. 3
_DEN = np.array([np.prod([float(k - j) for j in _OFFS if j != k]) for k in _OFFS])
_OVERSAMPLE = 4  # table points per 2 / M_max
_M0_MIN = 16
_MMAX_MIN, _MMAX_CAP = 1 << 10, 1 << 17
_CHUNK = 1024
_DEDUP_MIN = 4096  # evaluate unique (s, t) pairs only from this many points on


def _sign(m: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(m) % 2 == 0, 1.0, -1.0)


class _Series(NamedTuple):
    """One of the two 1-D Klein–Gordon series ``Σ a_m sin(mπs) cos(π μ_m t)``."""
    name: str
    coef: Callable[[np.ndarray], np.ndarray]  # a_m
    freq: Callable[[np.ndarray], np.ndarray]  # μ_m = ω_m / π
    delta: Callable[[np.ndarray], np.ndarray]  # δ_m = μ_m - c m, computed without cancellation
    c: float  # wave speed in s
    alpha: float  # |a_m| ≤ α / m³
    L: float  # δ_m ≤ L / m, m δ_m → L
    kappa: float  # |L - m δ_m| ≤ κ / m²
    h: Callable[[np.ndarray], np.ndarray]  # the initial profile on [0, 1]
    dh: Callable[[np.ndarray], np.ndarray]  # its derivative


def wave2d_ms_cm2(m) -> np.ndarray:
    """``c_m2 = 4 (-1)^m m sinh(3π) / (π (9 + m²)(7 + m²))``: ``B_x``'s coefficients (``m ≥ 1``)."""
    m = np.asarray(m, dtype=np.float64)
    return 4.0 * _sign(m) * m * SINH_3PI / (PI * (9.0 + m * m) * (7.0 + m * m))


def wave2d_ms_c1n(n) -> np.ndarray:
    """``c_1n = 2 (-1)^n sinh(π) / (π n (1 + n²))``: ``B_y``'s coefficients (``n ≥ 1``)."""
    n = np.asarray(n, dtype=np.float64)
    return 2.0 * _sign(n) * SINH_PI / (PI * n * (1.0 + n * n))


_SQRT2 = math.sqrt(2.0)

_SERIES: Dict[str, _Series] = {
    "x": _Series(
        name="x", coef=wave2d_ms_cm2,
        freq=lambda m: np.sqrt(m * m + 8.0),
        delta=lambda m: 8.0 / (np.sqrt(m * m + 8.0) + m),
        c=1.0, alpha=4.0 * SINH_3PI / PI, L=4.0, kappa=8.0,
        h=lambda s: np.sinh(3 * PI * s) - SINH_3PI * np.sinh(K7 * s) / SINH_K7,
        dh=lambda s: 3 * PI * np.cosh(3 * PI * s) - SINH_3PI * K7 * np.cosh(K7 * s) / SINH_K7),
    "y": _Series(
        name="y", coef=wave2d_ms_c1n,
        freq=lambda n: np.sqrt(2.0 * n * n + 1.0),
        delta=lambda n: 1.0 / (np.sqrt(2.0 * n * n + 1.0) + _SQRT2 * n),
        c=_SQRT2, alpha=2.0 * SINH_PI / PI, L=1.0 / (2.0 * _SQRT2), kappa=1.0 / (16.0 * _SQRT2),
        h=lambda s: np.sinh(PI * s) - SINH_PI * s,
        dh=lambda s: PI * np.cosh(PI * s) - SINH_PI),
}


# --------------------------------------------------------------------------------------------
# PINNacle's formula and the particular part
# --------------------------------------------------------------------------------------------

def wave2d_ms_pinnacle(x, y, t) -> np.ndarray:
    """PINNacle's ``g(x, y, t) = [sin(πx) sinh(πy) + sinh(3πx) sin(2πy)] cos(πt)`` (not a
    solution: its residual is ``-2π² g``; it is the boundary and initial data)."""
    x, y, t = (np.asarray(a, dtype=np.float64) for a in (x, y, t))
    return (np.sin(PI * x) * np.sinh(PI * y) + np.sinh(3 * PI * x) * np.sin(2 * PI * y)) * np.cos(PI * t)


def wave2d_ms_particular(x, y) -> np.ndarray:
    """``w(x, y) = sinh(π) y sin(πx) + sinh(3π) sin(2πy) sinh(√7πx) / sinh(√7π)``; ``u`` is
    ``w cos(πt)`` plus the free oscillations."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return SINH_PI * y * np.sin(PI * x) + SINH_3PI * np.sin(2 * PI * y) * np.sinh(K7 * x) / SINH_K7


# --------------------------------------------------------------------------------------------
# error bounds and the evaluation plan
# --------------------------------------------------------------------------------------------

def _taylor_rem(z: float, j: int) -> float:
    """``Σ_{k>j} z^k / k!`` bounded geometrically (``z < j + 2``)."""
    term = 1.0
    for k in range(j + 1):
        term *= z / (k + 1)
    return term / (1.0 - z / (j + 2)) if z < j + 2 else math.inf


def _tail(ser: _Series, mmax: int, tmax: float, deriv: bool) -> float:
    """Bound on the remainder's modes beyond ``mmax`` (see the module docstring)."""
    if not deriv:
        return ser.alpha * PI * ser.L * tmax / (3.0 * mmax ** 3)
    c, L = ser.c, ser.L
    return (ser.alpha * (PI ** 3 * c * L * L * tmax ** 2 / 2 + PI * L) / (3.0 * mmax ** 3)
            + ser.alpha * PI ** 2 * c * tmax * ser.kappa / (4.0 * mmax ** 4))


def _mode_bound(ser: _Series, m: np.ndarray, tmax: float, deriv: bool) -> np.ndarray:
    """Bound on the remainder's coefficient of mode ``m`` (what the tables hold, combined)."""
    a = ser.alpha / m ** 3
    if not deriv:
        return a * np.minimum(2.0, PI * ser.L * tmax / m)
    c, L = ser.c, ser.L
    fine = (PI ** 3 * c * L * L * tmax ** 2 / 2 + PI * L) / m + PI ** 2 * c * tmax * ser.kappa / m ** 2
    crude = PI * (2 * c * m + ser.L / m) + PI ** 2 * c * tmax * L
    return a * np.minimum(fine, crude)


_OMEGA = max(abs(np.prod(f - _OFFS)) for f in np.linspace(0.0, 1.0, 1001))  # max |Π (f - k)|


class _Plan(NamedTuple):
    m0: int  # modes summed directly
    mmax: int  # modes tabulated up to
    jt: int  # Taylor terms the tables hold (the most any |t| with this m0 needs)
    j: int  # Taylor terms used for this max|t|
    z: float  # the largest Taylor argument
    bound: float  # absolute error bound for |t| ≤ tmax


def _z(ser: _Series, m0: int, tmax: float) -> float:
    return PI * tmax * float(ser.delta(np.float64(m0 + 1))) / 2.0


def _plan(ser: _Series, tmax: float, deriv: bool, warn: bool = True) -> _Plan:
    m0 = _M0_MIN
    while _z(ser, m0, tmax) > _Z_CAP:
        m0 *= 2
    target = (TARGET_REL_UT * PI if deriv else TARGET_REL) * U_SCALE
    mmax = max(_MMAX_MIN, 4 * m0)
    while _tail(ser, mmax, tmax, deriv) > (0.5 if deriv else 0.25) * target and mmax < _MMAX_CAP:
        mmax *= 2
    m = np.arange(m0 + 1, mmax + 1, dtype=np.float64)
    n_tab = _OVERSAMPLE * mmax
    modes = _mode_bound(ser, m, tmax, deriv)
    interp = math.sqrt(2.0) * float(np.sum(modes * (2 * PI * m / n_tab) ** _P)) / math.factorial(_P) * _OMEGA
    weight = float(np.sum(ser.alpha / m ** 3 * (PI * ser.freq(m) if deriv else 1.0)))  # Σ |table column|

    def taylor_terms(z: float) -> int:
        j = 0
        while _taylor_rem(z, j) * weight > 0.01 * target:
            j += 1
        return j

    z = _z(ser, m0, tmax)
    j = taylor_terms(z)
    bound = _tail(ser, mmax, tmax, deriv) + interp + _taylor_rem(z, j) * weight
    if warn and bound > target:
        warnings.warn(f"wave2d_ms: |t| up to {tmax:g} gives an error bound {bound / U_SCALE:.2e} x sinh(3pi) "
                      f"for the {ser.name}-series{' (u_t)' if deriv else ''}", RuntimeWarning, stacklevel=6)
    return _Plan(m0, mmax, max(j, taylor_terms(_Z_CAP)), j, z, bound)


def wave2d_ms_error_bound(t_max: float = 100.0, derivative: bool = False) -> float:
    """Bound on ``|u - wave2d_ms_series(...)|`` (``derivative``: on ``u_t``'s error) for
    ``|t| ≤ t_max``, absolute (divide by :data:`U_SCALE`), summed over both series, before
    rounding: the modes beyond the tables, the Taylor remainder, and every tabulated mode's
    Lagrange-interpolation remainder."""
    return sum(_plan(s, abs(float(t_max)), derivative, warn=False).bound for s in _SERIES.values())


@lru_cache(maxsize=8)
def _tables(name: str, m0: int, mmax: int, jt: int, deriv: bool) -> np.ndarray:
    """``[N, cols]`` complex: trigonometric polynomials ``Σ_{M0<m≤Mmax} col_m e^{imπθ}`` at
    ``θ_l = 2 l / N`` (``N = 4 Mmax``); columns ``a s^j`` (u), or ``a c m``, ``a`` and ``a μ s^j``
    (u_t), ``j = 0..jt``."""
    ser = _SERIES[name]
    m = np.arange(m0 + 1, mmax + 1, dtype=np.float64)
    a = ser.coef(m)
    s = 2.0 * ser.delta(m) / float(ser.delta(np.float64(m0 + 1))) - 1.0
    base = a * ser.freq(m) if deriv else a
    cols = ([a * ser.c * m, a] if deriv else []) + [base * s ** j for j in range(jt + 1)]
    n_tab = _OVERSAMPLE * mmax
    out = np.empty((n_tab, len(cols)), dtype=np.complex128)
    spec = np.zeros(n_tab, dtype=np.complex128)
    for k, col in enumerate(cols):
        spec[m0 + 1:mmax + 1] = col
        out[:, k] = np.fft.ifft(spec) * n_tab  # Σ_m col_m e^{2πi m l / N}
    return out


def _interpolate(table: np.ndarray, theta: np.ndarray, ncols: int) -> np.ndarray:
    """``[P, ncols]``: the table's first ``ncols`` columns at ``theta`` (period 2), Lagrange on
    ``_P`` points."""
    n_tab = table.shape[0]
    tau = np.mod(theta, 2.0) * (n_tab / 2.0)
    base = np.floor(tau)
    f = tau - base
    idx = (base.astype(np.int64)[:, None] + _OFFS[None, :]) % n_tab
    w = np.empty(idx.shape)
    for a, k in enumerate(_OFFS):
        wk = np.full(f.shape, 1.0 / _DEN[a])
        for j in _OFFS:
            if j != k:
                wk *= f - j
        w[:, a] = wk
    rows = np.take(table.view(np.float64), idx, axis=0)  # [P, _P, 2 cols]: re, im (whole rows: fast)
    return np.einsum("pk,pkj->pj", w, rows[:, :, :2 * ncols]).view(np.complex128)


def _odd_ext(ser: _Series, theta: np.ndarray, deriv: bool) -> np.ndarray:
    """The odd 2-periodic extension ``H`` of the profile (``deriv``: ``H'``, even)."""
    r = np.mod(theta + 1.0, 2.0) - 1.0
    if deriv:
        return ser.dh(np.abs(r))
    return np.sign(r) * ser.h(np.abs(r))


# --------------------------------------------------------------------------------------------
# the 1-D series B(s, t) and ∂_t B
# --------------------------------------------------------------------------------------------

def _profile_plain(ser: _Series, s: np.ndarray, t: np.ndarray, deriv: bool, terms: int) -> np.ndarray:
    """The plain truncated series, in blocks of ≤ 2^20 (point, mode) pairs."""
    out = np.zeros(s.shape, dtype=np.float64)
    for lo in range(1, terms + 1, 1 << 16):
        m = np.arange(lo, min(terms, lo + (1 << 16) - 1) + 1, dtype=np.float64)
        a, om = ser.coef(m), PI * ser.freq(m)
        step = max(1, (1 << 20) // m.size)
        for p in range(0, s.size, step):
            q = slice(p, p + step)
            sm = np.sin(PI * s[q, None] * m[None, :])
            if deriv:
                out[q] += (sm * np.sin(t[q, None] * om[None, :])) @ (-a * om)
            else:
                out[q] += (sm * np.cos(t[q, None] * om[None, :])) @ a
    return out


def _profile(ser: _Series, s: np.ndarray, t: np.ndarray, deriv: bool, terms: Optional[int]) -> np.ndarray:
    """``B(s, t)`` (or ``∂_t B``) for flat float64 arrays of equal length."""
    if s.size == 0:
        return np.zeros(s.shape)
    if terms is not None:
        return _profile_plain(ser, s, t, deriv, terms)
    c, L = ser.c, ser.L
    plan = _plan(ser, float(np.max(np.abs(t))), deriv)
    table = _tables(ser.name, plan.m0, plan.mmax, plan.jt, deriv)
    # closed form: d'Alembert (and, for u_t, -π² c L t times it)
    hp, hm = _odd_ext(ser, s + c * t, False), _odd_ext(ser, s - c * t, False)
    out = 0.5 * (hp + hm)
    if deriv:
        out = 0.5 * c * (_odd_ext(ser, s + c * t, True) - _odd_ext(ser, s - c * t, True)) - PI ** 2 * c * L * t * out
    # the remainder, m ≤ M0: directly (sin(mπs), e^{iπcmt} by running products)
    m = np.arange(1, plan.m0 + 1, dtype=np.float64)
    a, mu = ser.coef(m), ser.freq(m)
    D = float(ser.delta(np.float64(plan.m0 + 1)))
    js = np.arange(plan.j + 1)
    fact = np.array([1.0 / math.factorial(j) for j in js])
    first = 2 if deriv else 0  # u_t's tables start with a c m and a
    for p in range(0, s.size, _CHUNK):
        q = slice(p, p + _CHUNK)
        sq, tq = s[q], t[q]
        shape = (sq.size, plan.m0)
        sm = np.cumprod(np.broadcast_to(np.exp(1j * PI * sq)[:, None], shape), axis=1).imag
        ec = np.cumprod(np.broadcast_to(np.exp(1j * PI * c * tq)[:, None], shape), axis=1)
        arg = tq[:, None] * (PI * mu)[None, :]
        if deriv:
            body = np.sin(arg)
            body *= -PI * mu
            body += (PI * c * m)[None, :] * ec.imag + (PI ** 2 * c * L) * tq[:, None] * ec.real
        else:
            body = np.cos(arg)
            body -= ec.real
        body *= sm
        out[q] += body @ a
        # M0 < m ≤ Mmax: the tables
        z = 0.5 * PI * D * tq
        coeff = np.exp(1j * z)[:, None] * (1j * z[:, None]) ** js[None, :] * fact[None, :]
        vals = []
        for theta in (sq + c * tq, c * tq - sq):
            V = _interpolate(table, theta, first + plan.j + 1)
            F = np.einsum("pj,pj->p", coeff, V[:, first:])
            if deriv:
                F = 1j * PI * (F - V[:, 0]) + (PI ** 2 * c * L) * tq * V[:, 1]
            else:
                F -= V[:, 0]
            vals.append(F)
        out[q] += 0.5 * (vals[0] - vals[1]).imag
    return out


def _on_pairs(ser: _Series, s: np.ndarray, t: np.ndarray, deriv: bool, terms: Optional[int]) -> np.ndarray:
    """``_profile`` on ``broadcast(s, t)``, evaluating each distinct ``(s, t)`` pair once."""
    sb, tb = np.broadcast_arrays(s, t)
    shape = sb.shape
    sf, tf = sb.reshape(-1), tb.reshape(-1)
    if sf.size >= _DEDUP_MIN:
        key = sf + 1j * tf
        uniq, inv = np.unique(key, return_inverse=True)
        if uniq.size < 0.75 * sf.size:
            return _profile(ser, np.ascontiguousarray(uniq.real), np.ascontiguousarray(uniq.imag), deriv,
                            terms)[inv.reshape(-1)].reshape(shape)
    return _profile(ser, np.ascontiguousarray(sf), np.ascontiguousarray(tf), deriv, terms).reshape(shape)


def _check_terms(terms: Optional[int]) -> Optional[int]:
    if terms is None:
        return None
    if int(terms) != terms or terms < 1:
        raise ValueError(f"terms must be a positive integer or None, got {terms!r}")
    return int(terms)


def _evaluate(x, y, t, terms: Optional[int], deriv: bool) -> np.ndarray:
    terms = _check_terms(terms)
    x, y, t = (np.asarray(a, dtype=np.float64) for a in (x, y, t))
    shape = np.broadcast_shapes(x.shape, y.shape, t.shape)
    bx = _on_pairs(_SERIES["x"], x, t, deriv, terms)  # shape broadcast(x, t)
    by = _on_pairs(_SERIES["y"], y, t, deriv, terms)  # shape broadcast(y, t)
    w = wave2d_ms_particular(x, y)
    time = -PI * np.sin(PI * t) if deriv else np.cos(PI * t)
    u = w * time + np.sin(PI * x) * by + np.sin(2 * PI * y) * bx
    return np.broadcast_to(u, shape).copy() if u.shape != shape else u


def wave2d_ms_series(x, y, t, terms: Optional[int] = None) -> np.ndarray:
    """The exact ``u(x, y, t)`` of Wave2d-MS as posed (``u = g`` on the boundary and at ``t = 0``,
    ``u_t(·, 0) = 0``); ``x, y, t`` broadcast, float64.

    ``terms=None``: d'Alembert + tabulated dispersive remainder, error ≤ 1e-10 × sinh(3π) for
    ``|t| ≤ 100`` (:func:`wave2d_ms_error_bound`). ``terms=M``: the plain series truncated after
    ``M`` modes in each of ``B_x``, ``B_y`` (error up to ``2 sinh(3π) / (π M²)``; for checks)."""
    return _evaluate(x, y, t, terms, deriv=False)


def wave2d_ms_series_u_t(x, y, t, terms: Optional[int] = None) -> np.ndarray:
    """``∂u/∂t`` of :func:`wave2d_ms_series` (error ≤ 2e-8 × π sinh(3π) for ``|t| ≤ 100``; 0 at
    ``t = 0`` to rounding). ``terms=M``: the plain truncated series (slow: its tail is ``~1/M``)."""
    return _evaluate(x, y, t, terms, deriv=True)
