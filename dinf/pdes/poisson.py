"""Poisson image reconstruction: recover an image from its gradient or its Laplacian.

Conventions
-----------
* The image is grey, normalised to ``[-1, 1]`` (grey ``g`` in ``[0, 1]`` becomes ``2g - 1``).
* Array axis 0 is coordinate ``x[:, 0]``, axis 1 is ``x[:, 1]``. Pixel centres sit at
  ``torch.linspace(-1, 1, R)`` along each axis, so the spacing is ``h = 2 / (R - 1)`` and
  ``coords[i * R + j] = (lin[i], lin[j])``.
* Targets are in the physical units of those coordinates, so the exact solution is the
  normalised image itself: gradient ``sobel(img, axis=a) / (8h)``, Laplacian
  ``laplace(img) / h**2`` (5-point stencil), both with scipy's default ``reflect`` boundary.
* The solution is fixed only up to a constant (gradient) or a harmonic function (Laplacian),
  so metrics first fit a gain and offset of the prediction to the ground truth in ``[0, 1]``.
* Sobel targets are not the image's derivative: the filter also smooths by ``[1 2 1]/4`` across
  its axis. Matching the field's derivative to them caps the PSNR of *any* field (33.3 dB at
  256², ``experiments/gradient_ceiling.py``). ``sobel_smoothing=True`` compares the field's
  derivative after the same smoothing (the derivative at the neighbouring pixel centres,
  clamped at the edges as scipy's ``reflect``): a measurement model that matches how the
  targets were made.
"""
from __future__ import annotations

import math
import os
from typing import Dict, List, Mapping, Tuple

import numpy as np
import scipy.ndimage as ndi
import torch
from matplotlib.figure import Figure
from skimage import color, data, io, metrics, transform, util
from torch import Tensor

from dinf.errors import ConfigError, check, check_choice, check_int
from dinf.jet import Jet
from dinf.linear_system import LinearSystem
from dinf.pdes.capabilities import LinearProblem
from dinf.pdes.base import BCS, Batch, FieldLike, Problem, boundary_factor, grid_points, masked_mean
from dinf.pdes.image_boundary import CoonsPatch

# The Sobel filter's smoothing of ∂ₐu across axis a, as (stencil column, weight): the centre and
# its neighbours along the other axis (``PoissonImage._stencil_batch``'s column order).
SOBEL_TAPS = (((0, 0.5), (1, 0.25), (2, 0.25)), ((0, 0.5), (3, 0.25), (4, 0.25)))


def fit_gain_offset(pred: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, float, float]:
    """Least-squares ``a, b`` minimising ``|a*pred + b - gt|``; returns ``(clip(a*pred+b, 0, 1), a, b)``."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if not np.all(np.isfinite(p)):
        # A diverged field has no meaningful fit; NaN keeps it from posing as a flat image.
        return np.full_like(p, np.nan), float("nan"), float("nan")
    pc = p - p.mean()
    var = float((pc * pc).mean())
    a = float((pc * (g - g.mean())).mean() / var) if var > 0 else 0.0
    b = float(g.mean() - a * p.mean())
    return np.clip(a * p + b, 0.0, 1.0), a, b


def load_grey(image: str) -> np.ndarray:
    """The named image as float64 grey in ``[0, 1]`` ("cameraman" or a file path)."""
    if image == "cameraman":
        raw = data.camera()
    else:
        path = os.path.expanduser(image)
        if not os.path.isfile(path):
            raise ConfigError("image", f"file not found: {path}")
        try:
            raw = io.imread(path)
        except Exception as e:  # imageio/PIL raise many types for corrupt files
            raise ConfigError("image", f"cannot read {path}: {e}") from e
    arr = np.asarray(raw)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = color.rgb2gray(util.img_as_float(arr[..., :3]))
    elif arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ConfigError("image", f"cannot read {image}: unsupported shape {arr.shape}")
    return np.clip(util.img_as_float(arr).astype(np.float64), 0.0, 1.0)


class PoissonImage(Problem, LinearProblem):
    """Fit a field whose gradient (or Laplacian) matches that of an image."""

    in_dim = 2
    out_dim = 1
    metric_modes = {"psnr": "max", "ssim": "max"}

    def __init__(
        self,
        image: str = "cameraman",
        resolution: int = 256,
        supervision: str = "gradient",
        batch_size: int = 65536,
        bc: str = "none",
        bc_weight: float = 1.0,
        sobel_smoothing: bool = False,
        targets: Mapping[str, List[float]] | None = None,
        in_dim: int | None = None,
        out_dim: int | None = None,
    ):
        super().__init__(targets, in_dim, out_dim)
        check_int("resolution", resolution, 8)
        check_int("batch_size", batch_size, 1)
        self.supervision = check_choice("supervision", supervision, ("gradient", "laplacian"))
        self.bc = check_choice("bc", bc, ("none",) + BCS)
        check(bc_weight >= 0, "bc_weight", f"must be >= 0, got {bc_weight!r}")
        self.bc_weight = float(bc_weight)
        self.smoothing = bool(sobel_smoothing)
        check(not self.smoothing or supervision == "gradient", "sobel_smoothing",
              "models the Sobel filter of gradient targets (supervision=gradient)")
        check(not self.smoothing or self.bc != "soft", "sobel_smoothing", "works with bc=none|hard, not soft")
        self.jet_order = 1 if supervision == "gradient" else 2
        self.resolution = R = resolution
        self.batch_size = batch_size
        self.image_name = image

        grey = transform.resize(load_grey(image), (R, R), anti_aliasing=True)
        img = 2.0 * np.clip(grey, 0.0, 1.0) - 1.0
        h = 2.0 / (R - 1)
        if supervision == "gradient":
            tgt = np.stack([ndi.sobel(img, axis=a) / (8 * h) for a in (0, 1)], -1).reshape(-1, 2)
        else:
            tgt = (ndi.laplace(img) / h**2).reshape(-1, 1)
        lin = torch.linspace(-1.0, 1.0, R)
        coords = grid_points(lin)
        self.register_buffer("image", torch.as_tensor(img, dtype=torch.float32), persistent=False)
        self.register_buffer("coords", coords.float(), persistent=False)
        self.register_buffer("target", torch.as_tensor(tgt, dtype=torch.float32), persistent=False)
        ij = torch.arange(R)
        edge = (ij == 0) | (ij == R - 1)
        self.register_buffer("is_edge", (edge[:, None] | edge[None, :]).reshape(-1), persistent=False)
        self.coons = CoonsPatch(img) if self.bc == "hard" else None

    def sample(self, n: int, generator: torch.Generator) -> Batch:
        """``n`` distinct pixel centres (all of them, shuffled, when ``n >= R*R``); with
        ``bc="soft"`` every edge pixel besides, each step."""
        idx = torch.randperm(self.coords.shape[0], generator=generator, device="cpu")[: int(n)]
        idx = idx.to(self.coords.device)
        if self.smoothing:
            return self._stencil_batch(idx)
        data = {}
        if self.bc == "soft":  # only the soft term reads the edge flags and values
            idx = torch.unique(torch.cat([idx, torch.nonzero(self.is_edge)[:, 0]]))
            data = {"is_boundary": self.is_edge[idx], "value": self.image.reshape(-1)[idx]}
        return Batch(x=self.coords[idx], data={"target": self.target[idx], **data})

    def _stencil_batch(self, idx: Tensor) -> Batch:
        """The sampled pixels and their four neighbours, each pixel once; ``stencil`` ``[n, 5]``
        indexes the batch: centre, x1 − h, x1 + h, x0 − h, x0 + h (clamped at the edges)."""
        R = self.resolution
        i, j = idx // R, idx % R
        lo, hi = 0, R - 1
        st = torch.stack([idx, i * R + (j - 1).clamp(lo, hi), i * R + (j + 1).clamp(lo, hi),
                          (i - 1).clamp(lo, hi) * R + j, (i + 1).clamp(lo, hi) * R + j], 1)
        pixels, stencil = torch.unique(st, return_inverse=True)
        return Batch(x=self.coords[pixels], data={"target": self.target[idx], "stencil": stencil})

    @staticmethod
    def _smoothed(grad: Tensor, stencil: Tensor) -> Tensor:
        """``[n, 2]``: ∂ₐu smoothed by [1 2 1]/4 across axis a, as the Sobel filter does."""
        return torch.stack([sum(wt * grad[stencil[:, col], a] for col, wt in SOBEL_TAPS[a]) for a in range(2)], -1)

    def image_jet(self, jet: Jet, x: Tensor) -> Jet:
        """The image's jet from the field's: the field itself, or ``h + B·u`` with ``bc="hard"``
        (``h`` takes the boundary values, ``B`` vanishes on the edges)."""
        if self.coons is None:
            return jet
        x = x.to(jet.value.dtype)
        return self.coons.jet(x) + boundary_factor(x) * jet

    def loss(self, jet: Jet, batch: Batch) -> Dict[str, Tensor]:
        tgt = batch.data["target"]
        u = self.image_jet(jet, batch.x)
        if self.supervision == "gradient":
            pred = u.grad[:, 0, :]
            if self.smoothing:
                pred = self._smoothed(pred, batch.data["stencil"])
            mse = ((pred - tgt) ** 2).mean()
        else:
            mse = ((u.laplacian()[:, 0] - tgt[:, 0]) ** 2).mean()
        terms = {"loss": mse, f"loss_{self.supervision}": mse}
        if self.bc == "soft":
            edge = batch.flag("is_boundary")
            terms["loss_boundary"] = masked_mean((u.value[:, 0] - batch.data["value"]) ** 2, edge)
            terms["loss"] = mse + self.bc_weight * terms["loss_boundary"]
        return terms

    def linear_system(self, batch: Batch) -> LinearSystem:
        """The loss as least-squares rows: ``u_x, u_y`` = target, or ``Δu`` = target; with
        ``bc="hard"`` for ``u = h + B·d`` (product rule, ``h``'s part moved to the right side),
        with ``bc="soft"`` plus a row ``u = image`` on edge pixels."""
        x, tgt = batch.x.double(), batch.data["target"].double()
        n, d = x.shape
        ones = dict(dtype=torch.float64, device=x.device)
        b = boundary_factor(x) if self.bc == "hard" else Jet(torch.ones(n, 1, **ones), torch.zeros(n, 1, d, **ones),
                                                               torch.zeros(n, 1, d, d, **ones))
        bv, bg, bh = b.value[:, 0], b.grad[:, 0], b.hess[:, 0]
        if self.supervision == "gradient":  # ∂ₐ(B u) = B ∂ₐu + ∂ₐB u
            coef = torch.zeros(n, d, 1, 1 + d, dtype=torch.float64, device=x.device)
            for a in range(d):
                coef[:, a, 0, 0] = bg[:, a]
                coef[:, a, 0, 1 + a] = bv
            if self.smoothing:
                return self._smoothed_system(x, coef, tgt, batch.data["stencil"])
            rhs = tgt - (self.coons.jet(x).grad[:, 0] if self.coons is not None else 0.0)
        else:  # Δ(B u) = B Δu + 2 ∇B·∇u + ΔB u
            coef = torch.zeros(n, 1, 1, 1 + d + d * d, dtype=torch.float64, device=x.device)
            coef[:, 0, 0, 0] = bh.diagonal(dim1=-2, dim2=-1).sum(-1)
            for a in range(d):
                coef[:, 0, 0, 1 + a] = 2.0 * bg[:, a]
                coef[:, 0, 0, 1 + d + a * (d + 1)] = bv
            rhs = tgt[:, :1] - (self.coons.jet(x).laplacian() if self.coons is not None else 0.0)
        rows = LinearSystem(x, coef, rhs)
        rows = rows.scaled(torch.full((n,), 1.0 / math.sqrt(rows.rhs.numel()), dtype=torch.float64, device=x.device))
        if self.bc != "soft":
            return rows
        edge = batch.flag("is_boundary")
        extra = torch.zeros(n, 1, 1, coef.shape[-1], dtype=torch.float64, device=x.device)
        extra[edge, 0, 0, 0] = math.sqrt(self.bc_weight / max(int(edge.sum()), 1))
        value = batch.data["value"].double()[:, None] * extra[:, 0, 0, :1]
        return LinearSystem(x, torch.cat([rows.coef, extra], 1), torch.cat([rows.rhs, value], 1))

    def _smoothed_system(self, x: Tensor, coef: Tensor, tgt: Tensor, stencil: Tensor) -> LinearSystem:
        """Rows of the smoothed gradients: ``mix`` combines each stencil's pointwise rows."""
        n, d = stencil.shape[0], 2
        w = 1.0 / math.sqrt(n * d)  # the loss is a mean over n rows of 2 equations
        rows = torch.arange(n, device=x.device)
        parts = []  # (row, column, weight) of [n·2, N·2], point-major
        for a in range(d):
            for col, wt in SOBEL_TAPS[a]:
                parts.append((rows * d + a, stencil[:, col] * d + a, torch.full((n,), wt * w, dtype=torch.float64)))
        r, c, v = (torch.cat(p) for p in zip(*parts))
        mix = torch.sparse_coo_tensor(torch.stack([r, c]), v.to(x.device), (n * d, x.shape[0] * d),
                                      check_invariants=False).coalesce()
        rhs = tgt * w
        if self.coons is not None:  # h's smoothed gradient moves to the right side
            dh = self.coons.jet(x).grad[:, 0].reshape(-1, 1)
            rhs = rhs - torch.sparse.mm(mix, dh).reshape(n, d)
        return LinearSystem(x, coef, rhs, mix=mix)

    def reconstruct(self, field: FieldLike) -> np.ndarray:
        """The field at all pixel centres, gain/offset-fitted to the image, ``[R, R]`` in ``[0, 1]``."""
        R = self.resolution
        pred = self.predict(field, self.coords)[:, 0]
        if self.coons is not None:
            x = self.coords.double().cpu()
            pred = self.coons.jet(x).value[:, 0] + boundary_factor(x).value[:, 0] * pred
        pred = pred.reshape(R, R).numpy()
        rec, _, _ = fit_gain_offset(pred, self.ground_truth())
        return rec

    def ground_truth(self) -> np.ndarray:
        """The image in ``[0, 1]``, float64 ``[R, R]``."""
        return (self.image.detach().cpu().numpy().astype(np.float64) + 1.0) / 2.0

    def _metrics(self, rec: np.ndarray) -> Dict[str, float]:
        gt = self.ground_truth()
        if not np.all(np.isfinite(rec)):
            return {"psnr": float("nan"), "ssim": float("nan")}
        mse = float(np.mean((rec - gt) ** 2))
        psnr = 10.0 * np.log10(1.0 / mse) if mse > 0 else float("inf")
        ssim = metrics.structural_similarity(rec, gt, data_range=1.0)
        return {"psnr": float(psnr), "ssim": float(ssim)}

    def evaluate(self, field: FieldLike) -> Dict[str, float]:
        return self._metrics(self.reconstruct(field))

    def pictures(self, field: FieldLike) -> Dict[str, Figure]:
        rec = self.reconstruct(field)
        gt = self.ground_truth()
        m = self._metrics(rec)
        fig = Figure(figsize=(12, 4))
        axes = fig.subplots(1, 3)
        axes[0].imshow(rec, cmap="gray", vmin=0, vmax=1)
        axes[0].set_title(f"reconstruction ({self.supervision}), PSNR {m['psnr']:.2f} dB")
        axes[1].imshow(gt, cmap="gray", vmin=0, vmax=1)
        axes[1].set_title("ground truth")
        im = axes[2].imshow(np.abs(rec - gt), cmap="inferno")
        axes[2].set_title(f"|error|, SSIM {m['ssim']:.3f}")
        fig.colorbar(im, ax=axes[2])
        for ax in axes:
            ax.set_axis_off()
        fig.tight_layout()
        return {"poisson": fig}
