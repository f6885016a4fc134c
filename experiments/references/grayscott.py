"""An independent reference for PINNacle's Gray–Scott problem (``GrayScottEquation``,
``src/pde/chaotic.py``), whose reference file (``ref/grayscott.dat``) is not available: Fourier
pseudo-spectral in space, ETDRK4 in time.

Problem
    u_t = ε₁ Δu + b(1 − u) − u v², v_t = ε₂ Δv − d v + u v² on (x, y) ∈ [−1, 1]², t ∈ [0, 200],
    ε = (1e-5, 5e-6), b = 0.04, d = 0.1, u(x, y, 0) = 1 − exp(−80((x + 0.05)² + (y + 0.02)²)),
    v(x, y, 0) = exp(−80((x − 0.05)² + (y − 0.02)²)). PINNacle poses no boundary condition. The
    initial spots are below 1e-30 on the boundary and stay in the middle (below), so u = 1, v = 0
    there to round-off for all t: any boundary condition that holds at (1, 0) gives the same
    solution, and this one is periodic.

Method
    Space: u, v on the periodic n × n grid x_j = −1 + 2j/n (scipy's rfft2, wavenumbers π m), the
    linear part L = (−ε₁|k|² − b, −ε₂|k|² − d) diagonal per species, the rest N = (b − u v², u v²)
    evaluated on the grid (no dealiasing: the spectrum reaches round-off well inside the grid,
    see the space study). Time: ETDRK4 (Cox & Matthews) with Kassam & Trefethen's contour-integral
    coefficients. Operators, interpolant and ETDRK4: ``dinf/solvers/classical/fourier.py`` and
    ``etdrk4.py`` (numpy and scipy only, shared with ``solver=spectral``; nothing else of
    ``dinf``). Values at the evaluation points are the trigonometric interpolant (exact for the
    grid function; two small matrix products per field), so every resolution is compared at the
    same points: the 201 × 201 grid of [−1, 1]² (spacing 0.01, both edges included), t = 0, 10,
    …, 200. "pooled" is PINNacle's L2RE over u and v and all 21
    times, "v" the same for v alone (u ≈ 1 dominates the pooled norm), "t = 200" the last
    snapshot alone.

Command (2-core CPU shared with other jobs, 2026-12-06; 19 min in all, the n = 1024 solve 13 min)
    python experiments/references/grayscott.py   # --h 1 0.5 0.25 0.125 --time-n 512 --n 128 256 512 1024
writes ``data/references/grayscott.npz`` (columns x, y, t (float64), u, v (float32); 40 401 points
× 21 times = 848 421 rows, node-major; the n = 1024, h = 0.125 solve; 3.7 MB) and
``grayscott_refinement.npz`` beside it. ``data/references/grayscott.md`` has every table.

Measured (relative L2 difference to the finest of each study)::

    time (n = 512)    steps  time (s)  pooled      order   v alone     order   t = 200
      h = 1             200      26.8  6.07e-06            1.22e-04            9.46e-07
          0.5           400      51.5  2.73e-07    4.48    5.31e-06    4.52    6.70e-08
          0.25          800      77.1  1.53e-08    4.16    2.95e-07    4.17    4.18e-09
          0.125        1600     198.3  0 (finest)
    space (h = 0.125)
      n = 128                     5.5  3.97e-03            5.41e-02            7.00e-03
          256                    23.7  2.51e-05            4.89e-04            1.87e-05
          512                   198.3  2.30e-08            4.69e-07            5.84e-09
          1024                  762.6  0 (finest)

The reference's own error: about 1e-9 pooled (2e-8 for v alone) from the time step (the last
difference / 15), less from space (spectral: the differences fall 160× and 1100× per doubling);
storing u and v as float32 adds up to 6e-8 (half an ulp, relative). At t = 200 the pattern (a
crescent of v, opening towards −x) has |v| > 1e-3 only in x ∈ [−0.14, 0.29], y ∈ [−0.21, 0.26]
and |u − 1| + |v| > 1e-6 only in x ∈ [−0.38, 0.43], y ∈ [−0.36, 0.40]; on the boundary
|u − 1| ≤ 2.9e-15 and |v| ≤ 4.5e-16 (≤ 4e-15 at every output time).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import scipy.fft as sfft

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from dinf.solvers.classical.etdrk4 import ETDRK4  # noqa: E402
from dinf.solvers.classical.fourier import Sampler, gs_operators, gs_wavenumbers  # noqa: E402
from experiments.references.common import convergence  # noqa: E402

OUT = ROOT / "data" / "references" / "grayscott.npz"

EPS = (1e-5, 5e-6)
B, D = 0.04, 0.1
T_END = 200.0
OUT_TIMES = np.round(np.arange(21) * 10.0, 12)
EVAL = np.round(np.linspace(-1.0, 1.0, 201), 12)  # evaluation grid, each axis
WORKERS = 2


def initial(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    u = 1 - np.exp(-80 * ((x + 0.05) ** 2 + (y + 0.02) ** 2))
    v = np.exp(-80 * ((x - 0.05) ** 2 + (y - 0.02) ** 2))
    return u, v


def grid(n: int) -> np.ndarray:
    return -1 + 2 * np.arange(n) / n


def wavenumbers(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """k along the full axis (fft order) and along the rfft axis, for period 2."""
    return gs_wavenumbers(n, 2.0)


def operators(n: int, eps=EPS, b: float = B, d: float = D, c: float = 1.0):
    """``L`` ``[2, n, n/2 + 1]`` and the grid nonlinearity ``N(w) = rfft2(b − c u v², c u v²)``
    (``c`` = 1 is PINNacle's; 0 leaves diffusion, decay and the constant feed): the period-2
    grid's ``dinf.solvers.classical.fourier.gs_operators``. ``Sampler`` (imported from there)
    interpolates an rfft2 at a tensor grid of points."""
    return gs_operators(n, eps, b, d, c, period=2.0, workers=WORKERS)


def solve(n: int, h: float, eps=EPS, b: float = B, d: float = D, c: float = 1.0,
          init: Callable = initial, times: Sequence[float] = OUT_TIMES, px: np.ndarray = EVAL,
          py: Optional[np.ndarray] = None) -> Dict:
    """Gray–Scott on the n × n grid with step ``h``: ``u`` ``[len(times), 2, len(px), len(py)]``
    (u and v at the evaluation grid), and the seconds it took."""
    t0 = time.perf_counter()
    L, nonlinear = operators(n, eps, b, d, c)
    stepper = ETDRK4(L, h, nonlinear)
    X, Y = np.meshgrid(grid(n), grid(n), indexing="ij")
    w0 = sfft.rfft2(np.stack(np.broadcast_arrays(*init(X, Y))), workers=WORKERS)
    sample = Sampler(n, px, px if py is None else py)
    u = stepper.run(w0, times, sample)
    return dict(u=u, n=n, h=h, steps=int(round(max(times) / h)), time_s=time.perf_counter() - t0)


def studies(label: str, sizes: Sequence[float], runs: Sequence[Dict], name: str) -> Dict[str, np.ndarray]:
    """Self-convergence tables of ``runs`` (coarse to fine): u and v pooled over all times, v alone
    pooled, and t = 200 (u and v); arrays prefixed ``<name>_pooled_`` etc."""
    out = {}
    times, dofs = [r["time_s"] for r in runs], [r["n"] ** 2 for r in runs]
    parts = (("pooled", "u and v, pooled over t = 0 … 200", lambda a: a),
             ("v", "v alone, pooled over t = 0 … 200", lambda a: a[:, 1]),
             ("t200", "u and v at t = 200", lambda a: a[-1]))
    for part, title, pick in parts:
        print(f"\n{name} study, {title}:")
        table = convergence(sizes, [pick(r["u"]).ravel() for r in runs], times, dofs, label)
        out.update({f"{name}_{part}_{k}": v for k, v in table.items()})
    return out


def where(u: np.ndarray, px: np.ndarray = EVAL) -> Dict[str, float]:
    """For one snapshot ``[2, P, P]`` on the evaluation grid: the box that holds |v| > 1e-3 and
    |u − 1| + |v| > 1e-6, and the largest |u − 1| and |v| on the boundary x = ±1, y = ±1."""
    out = {}
    for key, mask in (("v1e-3", np.abs(u[1]) > 1e-3), ("any1e-6", np.abs(u[0] - 1) + np.abs(u[1]) > 1e-6)):
        i, j = np.nonzero(mask)
        out.update({f"{key}_xmin": px[i].min(), f"{key}_xmax": px[i].max(),
                    f"{key}_ymin": px[j].min(), f"{key}_ymax": px[j].max()})
    edge = np.zeros(u.shape[1:], bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    out["boundary_max_abs_u_minus_1"] = float(np.abs(u[0][edge] - 1).max())
    out["boundary_max_abs_v"] = float(np.abs(u[1][edge]).max())
    far = (np.abs(px)[:, None] > 0.5) | (np.abs(px)[None, :] > 0.5)
    out["outside_half_max_abs_u_minus_1"] = float(np.abs(u[0][far] - 1).max())
    out["outside_half_max_abs_v"] = float(np.abs(u[1][far]).max())
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--h", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.125],
                    help="step sizes of the time study (the smallest also runs the space study)")
    ap.add_argument("--time-n", type=int, default=512, help="grid size of the time study")
    ap.add_argument("--n", type=int, nargs="+", default=[128, 256, 512, 1024],
                    help="grid sizes of the space study (at the smallest step; --time-n among them)")
    ap.add_argument("--out", default=str(OUT), help="the reference file (.npz; '' writes nothing); the "
                    "refinement numbers go beside it, <stem>_refinement.npz")
    args = ap.parse_args(argv)
    hs, ns = sorted(args.h, reverse=True), sorted(args.n)
    if args.time_n not in ns:
        raise SystemExit("--time-n must be one of --n (its finest-step run belongs to both studies)")
    start = time.perf_counter()
    solve(32, 1.0, times=[0.0, 20.0])  # warm-up

    def run(n: int, h: float) -> Dict:
        r = solve(n, h)
        print(f"  n={n} h={h:g}: {r['steps']} steps, {r['time_s']:.1f} s", flush=True)
        return r

    time_runs = [run(args.time_n, h) for h in hs]
    space_runs = [time_runs[-1] if n == args.time_n else run(n, hs[-1]) for n in ns]
    meta = studies("h", hs, time_runs, "time")
    meta.update(time_n=np.array(args.time_n), time_steps=np.array([r["steps"] for r in time_runs]))
    meta.update(studies("dx", [2.0 / n for n in ns], space_runs, "space"))
    meta.update(space_n=np.array(ns), space_h=np.array(hs[-1]))
    best = space_runs[-1]
    print(f"\nreference: n={best['n']}, h={best['h']:g}")
    info = where(best["u"][-1])
    for k, v in info.items():
        print(f"  t = 200: {k} = {v:.3g}")
        meta[f"t200_{k}"] = np.array(v)
    bmax = max(max(where(s)["boundary_max_abs_u_minus_1"], where(s)["boundary_max_abs_v"]) for s in best["u"])
    print(f"  largest |u − 1| or |v| on the boundary over all 21 times: {bmax:.3g}")
    meta["boundary_max_all_times"] = np.array(bmax)
    total = time.perf_counter() - start
    print(f"\nall solves: {total:.1f} s")

    if args.out:
        out = Path(args.out)
        u = best["u"]  # [T, 2, P, P]
        T, P = u.shape[0], EVAL.size
        X, Y = np.meshgrid(EVAL, EVAL, indexing="ij")  # point m = i·P + j is (EVAL[i], EVAL[j])
        field = lambda s: np.ascontiguousarray(u[:, s].reshape(T, P * P).T).ravel().astype(np.float32)  # noqa: E731
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, x=np.repeat(X.ravel(), T), y=np.repeat(Y.ravel(), T), t=np.tile(OUT_TIMES, P * P),
                            u=field(0), v=field(1))  # node-major: row m·T + k is point m at t_k
        meta.update(total_time_s=np.array(total))
        side = out.with_name(out.stem + "_refinement.npz")
        np.savez(side, **{k: np.asarray(v) for k, v in meta.items()})
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {side}")


if __name__ == "__main__":
    main()
