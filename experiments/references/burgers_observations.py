"""Observations for Burgers identification (Raissi, Perdikaris & Karniadakis 2019, §4.1.1):
2 000 seeded random points of (x, t) ∈ [−1, 1] × [0, 1] and the exact Cole–Hopf u there
(ν = 0.01/π, ``dinf.pdes.exact.burgers_cole_hopf``), written to
``data/references/burgers_observations.csv`` (columns x, t, u). Raissi draws the points from the
256 × 100 grid of his data file; these are drawn uniformly. His "1 % noise" is Gaussian with
σ = 0.01 · std(u) over the observations: printed here, and set in ``conf/pde/burgers_inverse.yaml``.

    python experiments/references/burgers_observations.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dinf.pdes.exact import burgers_cole_hopf  # noqa: E402

OUT = ROOT / "data" / "references" / "burgers_observations.csv"


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, 2000)
    t = rng.uniform(0.0, 1.0, 2000)
    u = burgers_cole_hopf(x, t, nu=0.01 / np.pi)
    np.savetxt(OUT, np.stack([x, t, u], 1), delimiter=",", header="x,t,u", comments="", fmt="%.17g")
    print(f"{OUT.relative_to(ROOT)}: {len(u)} observations; std(u) = {u.std():.6g}, 1 % noise: sigma = {0.01 * u.std():.6g}")


if __name__ == "__main__":
    main()
