"""Quasi-static cloth: a Kirchhoff–Love thin shell at its energy minimum (the ∂∞-Grid paper's experiment, after NeuralClothSim).

Conventions
-----------
* Reference: the flat square ``X(ξ) = (ξ1, ξ2, 0)``, ``ξ ∈ [-1, 1]²``; the field is the
  displacement ``u(ξ)`` (3 channels), the deformed surface ``φ = X + u``. Gravity pulls along -y.
* Membrane: Green strain ``ε = (a - I) / 2`` with ``a_αβ = ∂αφ · ∂βφ``; energy density
  ``D_m / 2 [ν (tr ε)² + (1 - ν) tr ε²]``, ``D_m = E t / (1 - ν²)``.
* Bending: curvature ``b_αβ = ∂αβφ · n`` (the reference is flat); density
  ``D_b / 2 [ν (tr b)² + (1 - ν) tr b²]``, ``D_b = D_m t² / 12``.
* Gravity: potential ``ρ g φ_y`` per unit reference area (``ρ`` = mass per area).
* Loss: the total energy, area 4 times the mean over stratified points (``det ā = 1``).
* Boundary conditions, imposed exactly (the ∂∞-Grid paper, ICLR 2026): ``u = B d + Σ_c g_c h_c`` where ``d`` is the
  field, ``g_c = exp(-dist_c² / σ)`` is 1 on the constrained corner or edge ``c`` and ``h_c`` its
  prescribed displacement, and ``B = Π_c (1 - g_c)`` vanishes there.
  ``corners_pulled``: the top corners move ±0.4 along x (the paper's demo); ``corner_fixed``:
  the top-left corner is fixed; ``edges_fixed``: the left and top edges are fixed.
"""
from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import LightSource
from matplotlib.figure import Figure
from torch import Tensor

from dinf.errors import check, check_choice, check_int
from dinf.jet import Jet
from dinf.pdes.capabilities import EnergyProblem
from dinf.pdes.base import Batch, FieldLike, Problem, field_device, grid_points, stratified
from dinf.pdes.plate import check_material

# name -> constraints: (centre, axes the distance is measured along, prescribed displacement)
BOUNDARIES: Dict[str, List[Tuple[Tuple[float, float], Tuple[int, ...], Tuple[float, float, float]]]] = {
    "corners_pulled": [((-1.0, 1.0), (0, 1), (0.4, 0.0, 0.0)), ((1.0, 1.0), (0, 1), (-0.4, 0.0, 0.0))],
    "corner_fixed": [((-1.0, 1.0), (0, 1), (0.0, 0.0, 0.0))],
    "edges_fixed": [((-1.0, 0.0), (0,), (0.0, 0.0, 0.0)), ((0.0, 1.0), (1,), (0.0, 0.0, 0.0))],
}
AREA = 4.0
SYM = 6  # symmetric jet entries per channel at order 2 in 2D: value, ∂1, ∂2, ∂11, ∂12, ∂22
PAIRS = ((0, 0), (0, 1), (1, 1))  # the second derivatives among them


def bump(x: Tensor, centre: Sequence[float], axes: Sequence[int], sigma: float) -> Jet:
    """``exp(-Σ_{a ∈ axes} (x_a - c_a)² / σ)`` with gradient and Hessian, one channel."""
    mask = torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
    mask[list(axes)] = 1.0
    r = (x - torch.tensor(centre, dtype=x.dtype, device=x.device)) * mask  # [N, d]
    g = torch.exp(-(r * r).sum(-1) / sigma)  # [N]
    grad = -2.0 / sigma * r * g[:, None]
    eye = torch.diag(mask)
    hess = g[:, None, None] * (4.0 / sigma**2 * r[:, :, None] * r[:, None, :] - 2.0 / sigma * eye)
    return Jet(g[:, None], grad[:, None], hess[:, None])


class Cloth(Problem, EnergyProblem):
    """A square of cloth under gravity with corners or edges held (``boundary``)."""

    in_dim = 2
    out_dim = 3
    jet_order = 2
    metric_modes = {"energy": "min", "energy_membrane": "min", "energy_bending": "min", "energy_gravity": "min"}

    def __init__(
        self,
        boundary: str = "corners_pulled",
        youngs_modulus: float = 5000.0,
        poisson_ratio: float = 0.25,
        thickness: float = 0.0012,
        mass_per_area: float = 0.144,
        gravity: float = 9.8,
        sigma: float = 0.01,
        batch_size: int = 4096,
        resolution: int = 64,
        targets: Mapping[str, List[float]] | None = None,
        in_dim: int | None = None,
        out_dim: int | None = None,
    ):
        super().__init__(targets, in_dim, out_dim)
        check_choice("boundary", boundary, BOUNDARIES)
        check_material(youngs_modulus, poisson_ratio, thickness)
        check(mass_per_area >= 0, "mass_per_area", f"must be >= 0, got {mass_per_area!r}")
        check(sigma > 0, "sigma", f"must be > 0, got {sigma!r}")
        check_int("batch_size", batch_size, 1)
        check_int("resolution", resolution, 2)
        self.boundary, self.sigma = boundary, float(sigma)
        self.poisson_ratio = float(poisson_ratio)
        self.membrane_stiffness = youngs_modulus * thickness / (1.0 - poisson_ratio**2)
        self.bending_stiffness = self.membrane_stiffness * thickness**2 / 12.0
        self.weight = float(mass_per_area) * float(gravity)
        self.batch_size, self.resolution = batch_size, resolution
        self._fixed: Optional[tuple] = None  # (points, their constraint jets): see _constraints
        h = 2.0 / resolution  # cell centres: a deterministic quadrature for the reported energy
        self.register_buffer("quadrature", grid_points(-1.0 + h * (torch.arange(resolution) + 0.5)).float(),
                             persistent=False)

    # --- kinematics and energy ---------------------------------------------------------------
    def displacement_jet(self, jet: Jet, x: Tensor) -> Jet:
        """``u = B d + Σ_c g_c h_c`` from the field's jet ``d``: the boundary conditions, exactly."""
        free, held, _ = self._constraints(x.to(jet.value.dtype))
        return free * jet + held

    def _constraints(self, x: Tensor) -> Tuple[Jet, Jet, Optional[Tensor]]:
        """``B = Π_c (1 - g_c)`` and ``Σ_c g_c h_c`` as jets at ``x``, and (``None`` until
        ``energy_derivatives`` asks) ``T``. Newton evaluates at the same points again and again:
        the last points' values are kept."""
        if self._fixed is not None and self._fixed[0] is x:
            return self._fixed[1]
        free = None
        held = None
        for centre, axes, disp in BOUNDARIES[self.boundary]:
            g = bump(x, centre, axes, self.sigma)
            free = (1.0 - g) if free is None else free * (1.0 - g)
            h = torch.tensor(disp, dtype=x.dtype, device=x.device)
            term = Jet(g.value * h, g.grad * h[:, None], g.hess * h[:, None, None])
            held = term if held is None else held + term
        self._fixed = (x, (free, held, None))
        return free, held, None

    def energy_densities(self, u: Jet) -> Dict[str, Tensor]:
        """Membrane, bending and gravity energy per unit reference area ``[N]`` for a displacement jet."""
        eye3 = torch.eye(3, 2, dtype=u.value.dtype, device=u.value.device)  # ∂X/∂ξ
        dphi = u.grad + eye3  # [N, 3, 2]: columns ∂1φ, ∂2φ
        a = dphi.transpose(1, 2) @ dphi  # [N, 2, 2]
        eps = 0.5 * (a - torch.eye(2, dtype=a.dtype, device=a.device))
        nu = self.poisson_ratio

        def quadratic(s: Tensor) -> Tensor:  # ν (tr s)² + (1 - ν) tr s², s symmetric
            tr = s[:, 0, 0] + s[:, 1, 1]
            return nu * tr * tr + (1.0 - nu) * (s * s).sum((-1, -2))

        normal = torch.linalg.cross(dphi[:, :, 0], dphi[:, :, 1])
        normal = normal / normal.norm(dim=-1, keepdim=True)
        b = torch.einsum("nkab,nk->nab", u.hess, normal)  # ∂αβφ = ∂αβu: X is linear
        return {
            "membrane": 0.5 * self.membrane_stiffness * quadratic(eps),
            "bending": 0.5 * self.bending_stiffness * quadratic(b),
            "gravity": self.weight * u.value[:, 1],
        }

    closed_form_derivatives = True
    energy_measure = AREA  # the loss is energy_measure · mean(energy_density): what Newton minimises

    def energy_density(self, jet: Jet, x: Tensor) -> Tensor:
        """The total energy per unit reference area ``[N]`` at points ``x`` for the field's jet."""
        x = x.to(jet.value.dtype)
        dens = self.energy_densities(self.displacement_jet(jet, x))
        return dens["membrane"] + dens["bending"] + dens["gravity"] + self.weight * x[:, 1]

    def energy_derivatives(self, jet: Jet, x: Tensor, project: bool = False,
                           weight: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """The gradient ``[N, C, S]`` and Hessian ``[N, C, S, C, S]`` of ``weight ·`` the energy
        density in the field's symmetric jet entries (value, ∂1, ∂2, ∂11, ∂12, ∂22: ``S`` = 6;
        ∂12 stands for both mixed entries), in closed form: what Newton needs, for the cost of a
        few energy evaluations instead of one backward pass per entry.

        ``u = B d + held`` is affine in the field's jet ``d`` and acts alike on each channel, so
        the derivatives in ``u``'s entries (membrane: Saint Venant–Kirchhoff in ``F = ∂φ``;
        bending: ``b_αβ = ∂αβu · n`` with ``n``'s first and second derivatives in ``F``; gravity:
        linear) are taken back to ``d`` by that map ``T`` ``[N, S, S]``. ``project``: a positive
        semi-definite Hessian, term by term: the membrane's ``[6, 6]`` block with its negative
        eigenvalues set to zero, the bending's Gauss–Newton part ``Jbᵀ Cb Jb`` (what is left out,
        ``Σ Mb_αβ ∇²b_αβ``, is of the order of the bending moments)."""
        x = x.to(jet.value.dtype)
        free, held, T = self._constraints(x)
        if T is None:
            T = _constraint_map(free)
            self._fixed = (x, (free, held, T))
        n_pts = x.shape[0]
        g_u, H_u = self._derivatives_in_u(free * jet + held, project)  # [N, 3, S], [N, 3, 5, 3, 5]
        Tw = T if weight is None else T * weight.to(T.dtype)[:, None, None]
        g = torch.einsum("nkl,nik->nil", Tw, g_u)
        # H = Tᵀ H_u T over u's entries 1..5 (its value entry has none: gravity is linear).
        X = _bmm(H_u.reshape(n_pts, 45, 5), Tw[:, 1:]).reshape(n_pts, 3, 5, 3 * SYM)  # (i, k, j, o)
        X = X.transpose(1, 2).reshape(n_pts, 5, 3 * 3 * SYM)
        H = _bmm(T[:, 1:].transpose(1, 2), X).reshape(n_pts, SYM, 3, 3, SYM).transpose(1, 2)
        return g, H

    def _derivatives_in_u(self, u: Jet, project: bool) -> Tuple[Tensor, Tensor]:
        """Gradient ``[N, 3, S]`` of the energy density in the displacement's symmetric jet
        entries, and Hessian ``[N, 3, 5, 3, 5]`` in all of them but the value (``F``'s two
        columns, then ``h``'s three distinct entries)."""
        n_pts, dt, dev = u.value.shape[0], u.value.dtype, u.value.device
        nu, Dm, Db = self.poisson_ratio, self.membrane_stiffness, self.bending_stiffness
        I2 = torch.eye(2, dtype=dt, device=dev)
        I3 = torch.eye(3, dtype=dt, device=dev)
        # Membrane: W = ½ ε:S, ε = (FᵀF − I)/2, S = Dm (ν tr ε I + (1 − ν) ε); ∂W/∂F = F S.
        F = u.grad + torch.eye(3, 2, dtype=dt, device=dev)  # [N, 3, 2]
        eps = 0.5 * (F.transpose(1, 2) @ F - I2)
        S = Dm * (nu * _trace(eps)[:, None, None] * I2 + (1.0 - nu) * eps)
        FFt = F @ F.transpose(1, 2)
        HF = (torch.einsum("ij,nab->niajb", I3, S)
              + Dm * nu * torch.einsum("nia,njb->niajb", F, F)
              + 0.5 * Dm * (1.0 - nu) * (torch.einsum("nib,nja->niajb", F, F)
                                         + torch.einsum("ab,nij->niajb", I2, FFt))).reshape(n_pts, 6, 6)
        if project:  # eigendecompositions only where a Cholesky factorisation fails (compression)
            _, info = torch.linalg.cholesky_ex(HF)
            bad = torch.nonzero(info != 0)[:, 0]
            lam, Q = torch.linalg.eigh(HF[bad])
            HF[bad] = _bmm(Q * lam.clamp(min=0.0)[:, None, :], Q.transpose(1, 2))
        # Bending: W = ½ b:Mb, b_αβ = h_αβ · n, Mb = Db (ν tr b I + (1 − ν) b), n = m/|m|, m = φ1 × φ2.
        h = u.hess  # [N, 3, 2, 2]
        lc = _levi_civita(dt, dev)
        m = torch.linalg.cross(F[:, :, 0], F[:, :, 1])
        r = m.norm(dim=-1)
        n = m / r[:, None]
        P = I3 - n[:, :, None] * n[:, None, :]
        dm = torch.stack([torch.einsum("ijk,nk->nij", lc, F[:, :, 1]),
                          torch.einsum("ijk,nj->nik", lc, F[:, :, 0])], -1)  # ∂m_i/∂F_jγ [N, 3, 3, 2]
        dn = torch.einsum("nia,najg->nijg", P, dm) / r[:, None, None, None]  # ∂n_i/∂F_jγ
        b = torch.einsum("niab,ni->nab", h, n)
        Mb = Db * (nu * _trace(b)[:, None, None] * I2 + (1.0 - nu) * b)
        Ms = torch.stack([Mb[:, 0, 0], Mb[:, 0, 1] + Mb[:, 1, 0], Mb[:, 1, 1]], 1)  # ∂W/∂b in the merged entries
        q = torch.einsum("nab,niab->ni", Mb, h)
        g = torch.cat([torch.zeros(n_pts, 3, 1, dtype=dt, device=dev), F @ S + torch.einsum("ni,nijg->njg", q, dn),
                       n[:, :, None] * Ms[:, None, :]], 2)
        g[:, 1, 0] = self.weight  # gravity: ρg u_y
        # Gauss–Newton part Jbᵀ Cb Jb, Jb = ∂b/∂(F, h) [N, αβ, 3, 5], Cb = Db (ν 1 1ᵀ on the
        # diagonal entries b_11, b_22 + (1 − ν) I).
        Jb = torch.zeros(n_pts, 4, 3, 5, dtype=dt, device=dev)
        Jb[:, :, :, :2] = torch.einsum("niab,nijg->nabjg", h, dn).reshape(n_pts, 4, 3, 2)
        for ab, k in enumerate((0, 1, 1, 2)):  # b_αβ reads the merged entry of (α, β)
            Jb[:, ab, :, 2 + k] = n
        J = Jb.reshape(n_pts, 4, 15)
        trace = (J[:, 0] + J[:, 3])[:, :, None]
        H = Db * ((1.0 - nu) * _bmm(J.transpose(1, 2), J) + nu * _bmm(trace, trace.transpose(1, 2)))
        H = H.reshape(n_pts, 3, 5, 3, 5)
        H[:, :, :2, :, :2] += HF.reshape(n_pts, 3, 2, 3, 2)
        if project:
            return g, H
        # Σ Mb_αβ ∇²b_αβ: h–F through ∂n, F–F through ∂²n (contracted with q).
        hF = Ms[:, None, :, None, None] * dn[:, :, None]  # [N, i, merged αβ, j, γ]
        H[:, :, 2:, :, :2] += hF
        H[:, :, :2, :, 2:] += hF.permute(0, 3, 4, 1, 2)
        Pq = torch.einsum("nab,nb->na", P, q)
        qn = (q * n).sum(-1)
        Q2 = -(n[:, :, None] * Pq[:, None, :] + Pq[:, :, None] * n[:, None, :]
               + qn[:, None, None] * P) / (r * r)[:, None, None]  # Σ_i q_i ∂²n_i/∂m_a∂m_b
        FF = torch.einsum("nab,najg,nbkd->njgkd", Q2, dm, dm)
        cross = torch.einsum("na,ajk->njk", Pq / r[:, None], lc)  # Σ_a (Pq/r)_a ∂²m_a/∂φ1_j∂φ2_k
        FF[:, :, 0, :, 1] += cross
        FF[:, :, 1, :, 0] += cross.transpose(1, 2)
        H[:, :, :2, :, :2] += FF
        return g, H

    def _energies(self, jet: Jet, x: Tensor) -> Dict[str, Tensor]:
        dens = self.energy_densities(self.displacement_jet(jet, x))
        # The reference's own height ξ2 adds a constant to the gravity energy; it is kept so
        # that the total is the energy of the hanging cloth, not of its displacement.
        dens["gravity"] = dens["gravity"] + self.weight * x[:, 1].to(jet.value.dtype)
        parts = {k: AREA * v.mean() for k, v in dens.items()}
        parts["total"] = parts["membrane"] + parts["bending"] + parts["gravity"]
        return parts

    # --- training ----------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator) -> Batch:
        return Batch(x=stratified(int(n), generator).float().to(self.device))

    def loss(self, jet: Jet, batch: Batch) -> Dict[str, Tensor]:
        e = self._energies(jet, batch.x)
        return {"loss": e["total"], "energy_membrane": e["membrane"], "energy_bending": e["bending"],
                "energy_gravity": e["gravity"]}

    # --- judging -----------------------------------------------------------------------------
    def evaluate(self, field: FieldLike) -> Dict[str, float]:
        x = self.quadrature.to(field_device(field, self.device))
        e = {k: float(v.detach()) for k, v in self._energies(field.jet(x, 2), x).items()}
        return {"energy": e["total"], "energy_membrane": e["membrane"], "energy_bending": e["bending"],
                "energy_gravity": e["gravity"]}

    def surface(self, field: FieldLike, n: int = 65) -> np.ndarray:
        """The deformed surface ``φ`` on an ``n × n`` grid of the reference square, ``[n, n, 3]``."""
        x = grid_points(torch.linspace(-1.0, 1.0, n, dtype=torch.float64)).float()
        dev = field_device(field, x.device)
        jet = field.jet(x.to(dev), 2)
        u = self.displacement_jet(Jet(jet.value.detach(), jet.grad.detach(), jet.hess.detach()), x.to(dev))
        ref = torch.cat([x, torch.zeros(x.shape[0], 1)], 1).double()
        return (ref + u.value.detach().double().cpu()).reshape(n, n, 3).numpy()

    def pictures(self, field: FieldLike) -> Dict[str, Figure]:
        phi = self.surface(field)
        fig = Figure(figsize=(7, 7))
        ax = fig.add_subplot(projection="3d")
        X, Y, Z = phi[..., 0], phi[..., 2], phi[..., 1]  # plot with y (gravity) upwards
        shade = LightSource(azdeg=315, altdeg=35).shade(Y, cmap=colormaps["PuBu"], blend_mode="soft")
        ax.plot_surface(X, Y, Z, facecolors=shade, rstride=1, cstride=1, linewidth=0, antialiased=False)
        ax.set_box_aspect((np.ptp(X), max(np.ptp(Y), 0.3 * np.ptp(X)), np.ptp(Z)))
        ax.view_init(elev=15, azim=-70)
        ax.set_xlabel("x")
        ax.set_ylabel("z")
        ax.set_zlabel("y")
        ax.set_yticks([])  # depth: the folds show in the shading
        ax.set_title(f"cloth ({self.boundary})")
        return {"cloth": fig}

    def save(self, field: FieldLike, output_dir: str) -> List[str]:
        """Write the deformed mesh as ``cloth.obj``; returns the paths written."""
        phi = self.surface(field)
        n = phi.shape[0]
        path = os.path.join(output_dir, "cloth.obj")
        idx = np.arange(n * n).reshape(n, n) + 1  # OBJ indices start at 1
        with open(path, "w") as f:
            f.write("# DInf-Grid cloth: deformed reference square\n")
            f.writelines(f"v {p[0]:.6f} {p[1]:.6f} {p[2]:.6f}\n" for p in phi.reshape(-1, 3))
            for i in range(n - 1):
                for j in range(n - 1):
                    a, b, c, d = idx[i, j], idx[i + 1, j], idx[i + 1, j + 1], idx[i, j + 1]
                    f.write(f"f {a} {b} {c}\nf {a} {c} {d}\n")
        return [path]



def _constraint_map(free: Jet) -> Tensor:
    """``T`` ``[N, S, S]``: the symmetric jet of ``B d`` from that of ``d`` (product rule)."""
    B, Bg, Bh = free.value[:, 0], free.grad[:, 0], free.hess[:, 0]  # [N], [N, 2], [N, 2, 2]
    T = torch.zeros(B.shape[0], SYM, SYM, dtype=B.dtype, device=B.device)
    T[:, range(SYM), range(SYM)] = B[:, None]
    T[:, 1:3, 0] = Bg  # ∂α(Bd) = B ∂αd + ∂αB d
    for k, (a, b) in enumerate(PAIRS):  # ∂αβ(Bd) = B ∂αβd + ∂αB ∂βd + ∂βB ∂αd + ∂αβB d
        T[:, 3 + k, 0] = Bh[:, a, b]
        T[:, 3 + k, 1 + b] += Bg[:, a]
        T[:, 3 + k, 1 + a] += Bg[:, b]
    return T


def _bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched products of small matrices: numpy's on the CPU (4× torch's for ``[N, 15, 4]``)."""
    if a.is_cuda:
        return a @ b
    return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))


def _trace(s: Tensor) -> Tensor:
    return s[:, 0, 0] + s[:, 1, 1]


def _levi_civita(dtype: torch.dtype, device: torch.device) -> Tensor:
    e = torch.zeros(3, 3, 3, dtype=dtype, device=device)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        e[i, j, k], e[i, k, j] = 1.0, -1.0
    return e
