"""Helmholtz: the complex wave field of a point source, with a perfectly matched layer (the ∂∞-Grid paper).

Conventions
-----------
* Domain ``[-1, 1]²``; the field has two channels, ``u = value[:, 0] + i value[:, 1]``.
* Perfectly matched layer of width ``L`` on every side. Per axis, the depth into the layer is
  ``d = max(|x| - (1 - L), 0)``, ``s(d) = k a0 (d / L)²`` and ``e = 1 - i s / k`` (so ``e = 1``
  in the interior). The residual is

      ∂x(A ∂x u) + ∂y(B ∂y u) + C k² u + f,   A = e_y / e_x,  B = e_x / e_y,  C = e_x e_y,

  expanded as ``A u_xx + (∂x A) u_x + B u_yy + (∂y B) u_y + C k² u + f`` with
  ``∂x A = -e_y e_x' / e_x²``, ``e_x' = -i (2 a0 d / L²) sign(x)`` (closed form, complex torch).
* Source ``f = (amp_r + i amp_i) · exp(-r² / (2σ)) / (2πσ)``: a unit-mass Gaussian of variance σ.
* With ``e = 1 - i s / k`` the outgoing wave is ``H0⁽²⁾`` (it decays in the layer), and the
  reference is the free-space solution ``u = -(i/4) H0⁽²⁾(k r) · (amp_r + i amp_i)``, which solves
  ``Δu + k² u + f = 0`` for a point source (``f → amp · δ``), times ``exp(-k² σ / 2)``, which
  makes it exact outside the Gaussian source. It is compared inside ``[-0.5, 0.5]²`` on a
  ``resolution²`` grid of cell centres.
* Sampling: with ``source_weight > 0``, ``n // 8`` points are drawn from ``N(source_center, σ I)``
  and the rest stratified over the domain; the two groups give separate loss terms,
  ``loss = loss_residual + source_weight · loss_source``, as in the reference code. With
  ``source_weight = 0`` (our default) all points are stratified and the loss is the plain
  integral of ``|residual|²``. A grid cannot resolve the σ = 1e-4 source, so the source term
  keeps a large residual whatever the field does, and weighting it up trades the whole wave
  field for a slightly better fit there (measured: docs/results/helmholtz.md).
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from scipy import special
from torch import Tensor

from dinf.errors import ConfigError, check, check_int
from dinf.jet import Jet
from dinf.linear_system import LinearSystem, SeparableSystem, SeparableTerm, complex_rows, jet_entries
from dinf.pdes.capabilities import LinearProblem, SeparableProblem
from dinf.pdes.base import Batch, FieldLike, Problem, grid_points, masked_mean, stratified
from dinf.pdes.point_source import SingularPart

SOURCE_FRACTION = 8  # one point in this many is drawn around the source
# gaussian: the residual carries the σ-wide Gaussian source (the paper's setting); singular: the
# field is u minus the point source's log singularity, and the residual its smooth remainder.
SOURCE_MODELS = ("gaussian", "singular")
_R_FLOOR = 1e-6


def _pair(value: object, key: str) -> Tuple[float, float]:
    try:
        a, b = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(key, f"must be a pair of numbers, got {value!r}") from None
    return a, b


def cell_centres(lo: float, hi: float, n: int) -> Tensor:
    """``[n*n, 2]`` cell centres of an ``n × n`` grid over ``[lo, hi]²``, axis 0 = ``x[:, 0]``."""
    h = (hi - lo) / n
    return grid_points(lo + h * (torch.arange(n, dtype=torch.float64) + 0.5))


def pml_coefficients(x: Tensor, pml_width: float, pml_strength: float) -> Dict[str, Tensor]:
    """Complex ``A, B, C, dA_dx, dB_dy`` (each ``[N]``) and ``e`` (``[N, 2]``) at points ``x``.

    The wavenumber cancels: only ``s / k = a0 (d / L)²`` enters.
    """
    L, a0 = float(pml_width), float(pml_strength)
    depth = (x.abs() - (1.0 - L)).clamp(min=0.0)  # [N, 2]
    sk = a0 * (depth / L) ** 2  # s / k
    dsk = 2.0 * a0 * depth / L**2 * torch.sign(x)  # d(s/k)/dx_axis
    zero = torch.zeros_like(sk)
    e = torch.complex(torch.ones_like(sk), -sk)  # 1 - i s/k
    de = torch.complex(zero, -dsk)  # e' along its own axis
    ex, ey = e[:, 0], e[:, 1]
    return {
        "e": e,
        "A": ey / ex,
        "B": ex / ey,
        "C": ex * ey,
        "dA_dx": -ey * de[:, 0] / ex**2,
        "dB_dy": -ex * de[:, 1] / ey**2,
    }


def hankel_reference(x: np.ndarray, wavenumber: float, center: Sequence[float],
                     amplitude: Sequence[float], source_sigma: float = 0.0) -> np.ndarray:
    """Free-space solution ``-(i/4) H0⁽²⁾(k r) (amp_r + i amp_i) exp(-k² σ / 2)`` at ``x`` ``[N, 2]``.

    The last factor is exact outside a Gaussian source of variance ``σ``: a radial source acts
    outside its support as a point source of strength f̂(k), and a unit-mass Gaussian has
    f̂(k) = exp(-k² σ / 2) (0.98 at k = 20, σ = 1e-4; ``σ = 0`` is the point source).
    """
    r = np.hypot(x[:, 0] - center[0], x[:, 1] - center[1])
    r = np.maximum(r, _R_FLOOR)
    amp = complex(amplitude[0], amplitude[1]) * math.exp(-0.5 * wavenumber**2 * source_sigma)
    return -0.25j * special.hankel2(0, wavenumber * r) * amp


class HelmholtzPML(Problem, LinearProblem, SeparableProblem):
    """Point source in ``[-1, 1]²`` with a PML; reference: the free-space Hankel solution."""

    in_dim = 2
    out_dim = 2
    jet_order = 2
    metric_modes = {"rel_l2_core": "min", "rel_l2": "min", "mae_real": "min", "mae_imag": "min"}

    def __init__(
        self,
        wavenumber: float = 20.0,
        source_center: Sequence[float] = (0.0, 0.0),
        source_sigma: float = 1e-4,
        source_amplitude: Sequence[float] = (1.0, 1.0),
        pml_width: float = 0.5,
        pml_strength: float = 5.0,
        batch_size: int = 16384,
        resolution: int = 128,
        source_weight: float = 0.0,
        core: float = 0.05,
        source_model: str = "gaussian",
        singular_radii: Sequence[float] | None = None,
        targets: Mapping[str, List[float]] | None = None,
        in_dim: int | None = None,
        out_dim: int | None = None,
    ):
        super().__init__(targets, in_dim, out_dim)
        check(wavenumber > 0, "wavenumber", f"must be > 0, got {wavenumber!r}")
        check(0 < pml_width < 1, "pml_width",
              f"must be in (0, 1) (a layer as wide as the half-domain leaves no interior), got {pml_width!r}")
        check(pml_strength >= 0, "pml_strength", f"must be >= 0, got {pml_strength!r}")
        check(source_sigma > 0, "source_sigma", f"must be > 0, got {source_sigma!r}")
        check(source_weight >= 0, "source_weight", f"must be >= 0, got {source_weight!r}")
        check(core >= 0, "core", f"must be >= 0, got {core!r}")
        check(source_model in SOURCE_MODELS, "source_model", f"must be one of {SOURCE_MODELS}, got {source_model!r}")
        check(source_model == "gaussian" or source_weight == 0, "source_weight",
              f"a separate source term needs source_model=gaussian (got {source_model}); set source_weight=0")
        check_int("batch_size", batch_size, 1)
        check_int("resolution", resolution, 8)
        center = _pair(source_center, "source_center")
        inner = 1.0 - pml_width
        check(all(abs(c) <= inner for c in center), "source_center",
              f"{list(center)} is not in the interior [-{inner:g}, {inner:g}]² (pml_width={pml_width:g})")
        self.wavenumber = float(wavenumber)
        self.source_center = center
        self.source_sigma = float(source_sigma)
        self.source_amplitude = _pair(source_amplitude, "source_amplitude")
        self.pml_width, self.pml_strength = float(pml_width), float(pml_strength)
        self.batch_size, self.resolution = batch_size, resolution
        self.source_weight, self.core = float(source_weight), float(core)
        self.source_model = source_model
        self.singular = None
        if source_model == "singular":
            # χ lives inside the layer-free square around the source: 1 up to r0, 0 from r1.
            room = inner - max(abs(c) for c in center)
            r0, r1 = _pair(singular_radii, "singular_radii") if singular_radii is not None else (0.2 * room, 0.8 * room)
            check(0 < r0 < r1 <= room, "singular_radii",
                  f"need 0 < r0 < r1 <= {room:g} (the source's distance to the layer), got {[r0, r1]}")
            strength = complex(*self.source_amplitude) * math.exp(-0.5 * self.wavenumber**2 * self.source_sigma)
            self.singular = SingularPart(self.wavenumber, center, strength, r0, r1)

        coords = cell_centres(-0.5, 0.5, resolution)
        ref = hankel_reference(coords.numpy(), self.wavenumber, center, self.source_amplitude, self.source_sigma)
        ref_t = torch.as_tensor(np.stack([ref.real, ref.imag], -1))
        dist = torch.as_tensor(np.hypot(coords[:, 0].numpy() - center[0], coords[:, 1].numpy() - center[1]))
        self.register_buffer("coords", coords.float(), persistent=False)
        self.register_buffer("reference", ref_t.float(), persistent=False)  # [R*R, 2]
        self.register_buffer("outside_core", dist >= self.core, persistent=False)

    # --- physics ---------------------------------------------------------------------------
    def source(self, x: Tensor) -> Tensor:
        """Complex ``f`` at ``x`` ``[N, 2]`` -> ``[N]``."""
        c = torch.tensor(self.source_center, dtype=x.dtype, device=x.device)
        r2 = ((x - c) ** 2).sum(-1)
        s = self.source_sigma
        g = torch.exp(-r2 / (2 * s)) / (2 * math.pi * s)
        return torch.complex(self.source_amplitude[0] * g, self.source_amplitude[1] * g)

    def coefficients(self, x: Tensor) -> Dict[str, Tensor]:
        return pml_coefficients(x, self.pml_width, self.pml_strength)

    def operator(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Complex ``k`` ``[N, 7]`` over the jet entries (u, u_x, u_y, u_xx, u_xy, u_yx, u_yy) and
        the source ``f`` ``[N]``: the residual is ``Σ_a k_a ∂_a u + f``. With
        ``source_model=singular`` the field is ``u − u_s`` and ``f`` the smooth remainder
        (``dinf.pdes.point_source``)."""
        c = self.coefficients(x)
        zero = torch.zeros_like(c["A"])
        k = torch.stack([c["C"] * self.wavenumber**2, c["dA_dx"], c["dB_dy"], c["A"], zero, zero, c["B"]], 1)
        return k, self.forcing(x).to(k.dtype)

    def forcing(self, x: Tensor) -> Tensor:
        """Complex ``f`` ``[N]`` of the residual: the Gaussian source, or with
        ``source_model=singular`` the smooth remainder of the singular part it leaves out."""
        return self.source(x) if self.singular is None else self.singular.remainder(x)

    def separable_system(self) -> SeparableSystem:
        """The residual as per-axis factors: the layer's stretch e is one function per axis, so
        ``A = e_y/e_x``, ``B = e_x/e_y``, ``C = e_x e_y`` and their derivatives factor."""
        L, a0, k2 = self.pml_width, self.pml_strength, self.wavenumber**2

        def e(x: np.ndarray) -> np.ndarray:
            return 1.0 - 1j * a0 * (np.maximum(np.abs(x) - (1.0 - L), 0.0) / L) ** 2

        def de(x: np.ndarray) -> np.ndarray:
            return -1j * 2.0 * a0 * np.maximum(np.abs(x) - (1.0 - L), 0.0) / L**2 * np.sign(x)

        terms = [
            SeparableTerm((0, 0), (lambda x: k2 * e(x), e)),
            SeparableTerm((2, 0), (lambda x: 1.0 / e(x), e)),
            SeparableTerm((1, 0), (lambda x: -de(x) / e(x) ** 2, e)),
            SeparableTerm((0, 2), (e, lambda y: 1.0 / e(y))),
            SeparableTerm((0, 1), (e, lambda y: -de(y) / e(y) ** 2)),
        ]
        return SeparableSystem(terms, lambda x: self.forcing(x.double()))

    def predict(self, field: FieldLike, x: Tensor, chunk: int = 65536) -> Tensor:
        """The field's two channels, plus the singular part it leaves out (``source_model=singular``)."""
        out = super().predict(field, x, chunk)
        if self.singular is not None:
            us = self.singular.value(x.double().cpu())
            out = out + torch.stack([us.real, us.imag], 1)
        return out

    def residual(self, jet: Jet, x: Tensor) -> Tensor:
        """Complex residual ``[N]`` of the PML equation for a jet of order 2 at ``x``."""
        if jet.hess is None:
            raise ValueError("HelmholtzPML needs a jet of order 2")
        k, f = self.operator(x.to(jet.value.dtype))
        e = jet_entries(jet, 7)
        return (k * torch.complex(e[:, 0], e[:, 1])).sum(-1) + f

    def linear_system(self, batch: Batch) -> LinearSystem:
        """The loss as least-squares rows (real and imaginary part per point)."""
        x = batch.x.double()
        k, f = self.operator(x)
        is_src = batch.flag("is_source")
        n_src = int(is_src.sum())
        w = torch.full_like(x[:, 0], 1.0 / math.sqrt(max(x.shape[0] - n_src, 1)))
        w[is_src] = math.sqrt(self.source_weight / max(n_src, 1))
        return LinearSystem(x, complex_rows(k), -torch.stack([f.real, f.imag], 1)).scaled(w)

    # --- training ----------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator) -> Batch:
        """``n`` points: ``n // 8`` from ``N(source_center, σ I)`` if the source term is weighted,
        the rest stratified."""
        n = int(n)
        n_src = n // SOURCE_FRACTION if self.source_weight > 0 else 0
        n_uni = n - n_src
        src = torch.tensor(self.source_center) + math.sqrt(self.source_sigma) * torch.randn(
            n_src, 2, generator=generator)
        x = torch.cat([stratified(n_uni, generator).float(), src.clamp(-1.0, 1.0)])
        is_source = torch.cat([torch.zeros(n_uni, dtype=torch.bool), torch.ones(n_src, dtype=torch.bool)])
        dev = self.device
        return Batch(x=x.to(dev), data={"is_source": is_source.to(dev)})

    def loss(self, jet: Jet, batch: Batch) -> Dict[str, Tensor]:
        res2 = self.residual(jet, batch.x).abs() ** 2
        mask = batch.flag("is_source")
        l_res = masked_mean(res2, ~mask)
        l_src = masked_mean(res2, mask)
        total = l_res + self.source_weight * l_src
        return {"loss": total, "loss_residual": l_res, "loss_source": l_src}

    # --- judging -----------------------------------------------------------------------------
    def _complex(self, field: FieldLike, x: Tensor) -> np.ndarray:
        p = self.predict(field, x).numpy()
        return p[:, 0] + 1j * p[:, 1]

    def _reference_np(self) -> np.ndarray:
        r = self.reference.detach().cpu().double().numpy()
        return r[:, 0] + 1j * r[:, 1]

    def _metrics(self, pred: np.ndarray) -> Dict[str, float]:
        ref = self._reference_np()
        err = pred - ref
        keep = self.outside_core.cpu().numpy()

        def rel(mask: np.ndarray) -> float:
            return float(np.linalg.norm(err[mask]) / np.linalg.norm(ref[mask]))

        return {
            "mae_real": float(np.mean(np.abs(err.real))),
            "mae_imag": float(np.mean(np.abs(err.imag))),
            "rel_l2": rel(np.ones_like(keep)),
            "rel_l2_core": rel(keep),
        }

    def evaluate(self, field: FieldLike) -> Dict[str, float]:
        return self._metrics(self._complex(field, self.coords))

    def pictures(self, field: FieldLike) -> Dict[str, Figure]:
        R = self.resolution
        whole = self._complex(field, cell_centres(-1.0, 1.0, R).float()).reshape(R, R)
        pred = self._complex(field, self.coords)
        m = self._metrics(pred)
        ref = self._reference_np().reshape(R, R)
        err = np.abs(pred.reshape(R, R) - ref)
        vmax = float(np.abs(ref[self.outside_core.cpu().numpy().reshape(R, R)]).max())
        fig = Figure(figsize=(14, 8.5))
        axes = fig.subplots(2, 3)
        big, small = (-1, 1, -1, 1), (-0.5, 0.5, -0.5, 0.5)
        panels = [
            (axes[0, 0], whole.real, big, "prediction (real)", "RdBu_r", True),
            (axes[1, 0], whole.imag, big, "prediction (imag)", "RdBu_r", True),
            (axes[0, 1], ref.real, small, "reference (real)", "RdBu_r", True),
            (axes[1, 1], ref.imag, small, "reference (imag)", "RdBu_r", True),
            (axes[0, 2], err, small, f"|error| (log scale)\nrel L2 {m['rel_l2']:.3g}, "
                                     f"r ≥ {self.core:g}: {m['rel_l2_core']:.3g}", "inferno", False),
        ]
        inner = 1.0 - self.pml_width
        for ax, arr, ext, title, cmap, sym in panels:
            # The error spans decades (the source core dominates it): show it on a log scale.
            kw = {"vmin": -vmax, "vmax": vmax} if sym else {"norm": _log_norm(arr)}
            im = ax.imshow(arr.T, origin="lower", extent=ext, cmap=cmap, **kw)
            ax.set_title(title)
            fig.colorbar(im, ax=ax)
            if ext == big:
                ax.plot([-inner, inner, inner, -inner, -inner], [-inner, -inner, inner, inner, -inner],
                        "k--", lw=1)
        axes[1, 2].set_axis_off()
        axes[1, 2].text(0.0, 0.5, f"k = {self.wavenumber:g}\n"
                        + "\n".join(f"{k}: {v:.4g}" for k, v in m.items()), fontsize=12, va="center")
        fig.tight_layout()
        return {"helmholtz": fig}


def _log_norm(err: np.ndarray) -> LogNorm:
    top = float(err.max()) if np.isfinite(err).all() and err.max() > 0 else 1.0
    return LogNorm(vmin=top * 1e-4, vmax=top, clip=True)
