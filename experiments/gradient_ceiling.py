"""The best PSNR any field can reach from the Sobel-gradient targets, per measurement model.

Poisson-from-gradients fits a field's derivative to ``sobel(img) / (8h)``. The least-squares
optimum over *all* band-limited images has a closed form in Fourier space: extend the image
evenly across its edges (scipy's ``reflect``: the gradient along an axis is then odd across that
axis), and per frequency ``û = Σₐ conj(Kₐ) ĝₐ / Σₐ |Kₐ|²`` with ``Kₐ`` the symbol of the
measurement along axis a. Its PSNR (after the same gain/offset fit as the problem's metric) is
the ceiling of that model; no field, optimizer or grid size does better.

* ``derivative``: ``Kₐ = i ωₐ / h`` — the default loss, ``∂ₐu = target``;
* ``derivative + smoothing``: ``Kₐ = i ωₐ / h · (1 + cos ω_b) / 2`` — ``pde.sobel_smoothing=true``;
* ``sobel stencil``: ``Kₐ = i sin ωₐ / h · (1 + cos ω_b) / 2`` — the filter itself, a check of
  this computation (it recovers the image to the float32 rounding of the targets: > 90 dB).

    python experiments/gradient_ceiling.py                   # 256², the CPU default
    python experiments/gradient_ceiling.py --resolution 512  # the paper's size
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, uninstalled
from dinf.pdes.poisson import PoissonImage, fit_gain_offset  # noqa: E402


def _extend(a: np.ndarray, odd_axis: int | None) -> np.ndarray:
    """``[2R, 2R]`` mirror extension; the sign flips across ``odd_axis``."""
    s0 = -1.0 if odd_axis == 0 else 1.0
    s1 = -1.0 if odd_axis == 1 else 1.0
    a = np.concatenate([a, s0 * a[::-1]], 0)
    return np.concatenate([a, s1 * a[:, ::-1]], 1)


def ceilings(image: str = "cameraman", resolution: int = 256) -> Dict[str, float]:
    """PSNR (dB) of the least-squares optimum of each measurement model, on the problem's data."""
    problem = PoissonImage(image=image, resolution=resolution, supervision="gradient")
    R = resolution
    h = 2.0 / (R - 1)
    target = problem.target.double().numpy().reshape(R, R, 2)
    G = [np.fft.fft2(_extend(target[..., a], a)) for a in range(2)]
    w = 2.0 * np.pi * np.fft.fftfreq(2 * R)
    axis = [w[:, None] * np.ones((1, 2 * R)), w[None, :] * np.ones((2 * R, 1))]
    smooth = [(1.0 + np.cos(axis[1])) / 2.0, (1.0 + np.cos(axis[0])) / 2.0]  # across axis a
    models = {
        "derivative": [1j * axis[a] / h for a in range(2)],
        "derivative + smoothing": [1j * axis[a] / h * smooth[a] for a in range(2)],
        "sobel stencil": [1j * np.sin(axis[a]) / h * smooth[a] for a in range(2)],
    }
    gt = problem.ground_truth()
    out = {}
    for name, K in models.items():
        num = sum(np.conj(K[a]) * G[a] for a in range(2))
        den = sum(np.abs(K[a]) ** 2 for a in range(2))
        U = np.where(den > 1e-12, num / np.maximum(den, 1e-300), 0.0)  # the mean is free
        u = np.real(np.fft.ifft2(U))[:R, :R]
        rec, _, _ = fit_gain_offset(u, gt)
        mse = float(np.mean((rec - gt) ** 2))
        out[name] = 10.0 * np.log10(1.0 / mse) if mse > 0 else float("inf")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="cameraman")
    parser.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args()
    print(f"| measurement model ({args.image}, {args.resolution}²) | best PSNR of any field |")
    print("|---|---|")
    for name, psnr in ceilings(args.image, args.resolution).items():
        print(f"| {name} | {psnr:.2f} dB |")


if __name__ == "__main__":
    main()
