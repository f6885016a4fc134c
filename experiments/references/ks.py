"""An independent reference for PINNacle's Kuramoto–Sivashinsky problem
(``KuramotoSivashinskyEquation``, ``src/pde/chaotic.py``), whose reference file
(``ref/Kuramoto_Sivashinsky.dat``) is not available: Fourier pseudo-spectral in x, ETDRK4 in time.

Problem
    u_t + α u u_x + β u_xx + γ u_xxxx = 0, x ∈ [0, 2π] periodic, t ∈ [0, 1], α = 100/16,
    β = 100/16², γ = 100/16⁴, u(x, 0) = cos x (1 + sin x). This is Kassam & Trefethen's (2005)
    KS example u_T = −u u_X − u_XX − u_XXXX on [0, 32π], u0 = cos(X/16)(1 + sin(X/16)), under
    X = 16x, T = 100t: our t ∈ [0, 1] is their T ∈ [0, 100].

Method
    Space: u = Σ_k v_k e^{ikx} on N equispaced points x_j = 2πj/N (numpy's rfft, k = 0 … N/2),
    v' = L v + N(v) with L(k) = βk² − γk⁴ and N(v) = −(α/2) i k FFT(u²) (u² on the grid, the
    Nyquist mode's ik set to 0); no dealiasing by default (``--dealias`` zeroes |k| ≥ N/3 of u²:
    the difference is at round-off, see below). Time: ETDRK4 (Cox & Matthews) exactly as Kassam &
    Trefethen write it, its coefficients by the contour integral (M = 64 points on circles of
    radius 1 around each hL). Operators and ETDRK4: ``dinf/solvers/classical/fourier.py`` and
    ``etdrk4.py`` (numpy only, shared with ``solver=spectral``; nothing else of ``dinf``).
    Solutions are compared on the file's 256 points (a finer grid subsampled, a coarser one
    Fourier-interpolated, which is exact for it) at t = 0, 0.01, …, 1; "pooled" is PINNacle's
    L2RE over all 101 times, "t = 1" the last snapshot alone, "t ≤ 0.1" the first 11 snapshots
    pooled.

Command (2-core CPU shared with other jobs, 2026-12-06; 49 s in all)
    python experiments/references/ks.py   # --steps 100 200 … 51200 --time-n 512 --space-n 64 128 256 512
writes ``data/references/ks.npz`` (columns x, t, u; 256 points × 101 times = 25 856 rows,
node-major; the N = 512, h = 1/51200 solve) and ``ks_refinement.npz`` beside it (the tables,
the round-off checks and the sensitivity curves). ``data/references/ks.md`` has every table.

Measured (relative L2 difference to the N = 512, h = 1/51200 solve)::

    time (N = 512)  pooled      order   t <= 0.1    order   t = 1       order
      h = 1/100     6.05e-01            1.61e-03            1.37e+00
          1/200     6.39e-02    3.24    1.02e-04    3.97    2.27e-01    2.60
          1/400     6.97e-03    3.20    8.00e-06    3.68    2.50e-02    3.18
          1/800     8.64e-04    3.01    1.12e-06    2.84    2.80e-03    3.16
          1/1600    9.00e-05    3.26    1.51e-07    2.89    2.69e-04    3.38
          1/3200    7.71e-06    3.55    1.64e-08    3.20    2.19e-05    3.62
          1/6400    5.74e-07    3.75    1.48e-09    3.48    1.57e-06    3.80
          1/12800   3.91e-08    3.88    1.13e-10    3.70    1.04e-07    3.91
          1/25600   2.10e-09    4.22    7.41e-12    3.94    5.77e-09    4.18
    space (h = 1/51200)
      N = 64        9.17e-01            2.27e-02            1.49e+00
          128       7.89e-05            1.54e-05            1.53e-04
          256       5.19e-11            9.27e-12            1.86e-11

ETDRK4 shows its (Cox–Matthews) order reduction at moderate steps (orders 2.8–3.3 around
h ~ 1e-3, 4 again below 1e-4). The reference's own error is about 1e-9 pooled and 3e-9 at t = 1:
truncation ≈ 1.4e-10 (the last difference / 15), and a round-off floor that grows with the
number of steps (e^{hL} rounded differently moves the solution by 6.9e-10 pooled, 3.2e-9 at
t = 1; N = 1024 and 2/3 dealiasing move it by 2.5e-12 and 5.6e-13). A 1e-10 change of u0 moves
u(1) by 8.9e-8 (1e-10 sin 3x) to 7.4e-7 (a random smooth one): growth rates 6.2 and 8.1 per
unit t.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from dinf.solvers.classical.etdrk4 import ETDRK4  # noqa: E402
from dinf.solvers.classical.fourier import ks_operators, resample  # noqa: E402
from experiments.references.common import convergence  # noqa: E402

OUT = ROOT / "data" / "references" / "ks.npz"

ALPHA, BETA, GAMMA = 100 / 16, 100 / 16**2, 100 / 16**4
T_END = 1.0
OUT_TIMES = np.round(np.arange(101) * 0.01, 12)
P_OUT = 256  # evaluation points x_j = 2πj/256, j = 0 … 255 (2π itself left out: it is x = 0)
EARLY = 11  # snapshots t ≤ 0.1


def initial(x: np.ndarray) -> np.ndarray:
    return np.cos(x) * (1 + np.sin(x))


def grid(n: int) -> np.ndarray:
    return 2 * np.pi * np.arange(n) / n


def operators(n: int, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
              dealias: bool = False):
    """``L`` (rfft modes of an n-point grid) and the nonlinear term ``N(v) = −(α/2) i k FFT(u²)``
    (``dinf.solvers.classical.fourier.ks_operators`` with this problem's coefficients)."""
    return ks_operators(n, alpha, beta, gamma, dealias=dealias)


def sample(v: np.ndarray, n: int, p: int = P_OUT) -> np.ndarray:
    """The trigonometric polynomial with rfft coefficients ``v`` (n points) at the p points 2πj/p
    (``fourier.resample``: a subsample when p divides n, else zero padding)."""
    return resample(v, n, p)


def solve(n: int, steps_per_unit: int, u0: Optional[Callable[[np.ndarray], np.ndarray]] = None,
          dealias: bool = False, alpha: float = ALPHA, times: Sequence[float] = OUT_TIMES,
          p: int = P_OUT, e_squared: bool = False) -> Dict:
    """KS on n points with h = 1/``steps_per_unit`` from ``u0`` (default cos x (1 + sin x)):
    values ``[len(times), p]`` at the p output points, and the seconds it took. ``e_squared``:
    e^{hL} computed as (e^{hL/2})², which changes it by an ulp here and there (a round-off check)."""
    t0 = time.perf_counter()
    L, nonlinear = operators(n, alpha=alpha, dealias=dealias)
    stepper = ETDRK4(L, 1.0 / steps_per_unit, nonlinear)
    if e_squared:
        stepper.E = stepper.E2 * stepper.E2
    x = grid(n)
    v0 = np.fft.rfft((u0 or initial)(x))
    u = stepper.run(v0, times, lambda v: sample(v, n, p))
    return dict(u=u, n=n, steps_per_unit=steps_per_unit, time_s=time.perf_counter() - t0)


def random_perturbation(size: float = 1e-10, kmax: int = 8, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth random function: modes 1 … kmax with normal coefficients (seeded), scaled so that
    its maximum magnitude (on a 4096-point grid) is ``size``."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(kmax), rng.standard_normal(kmax)
    k = np.arange(1, kmax + 1)

    def f(x):
        return (np.cos(np.multiply.outer(x, k)) @ a + np.sin(np.multiply.outer(x, k)) @ b)

    scale = size / np.abs(f(grid(4096))).max()
    return lambda x: scale * f(x)


def snapshot_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """‖a(t) − b(t)‖ / ‖b(t)‖ per snapshot (rows)."""
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def studies(label: str, sizes: Sequence[float], runs: Sequence[Dict], name: str) -> Dict[str, np.ndarray]:
    """Three self-convergence tables of ``runs`` (coarse to fine): pooled over all times, t ≤ 0.1
    pooled, and t = 1 alone; their arrays prefixed ``<name>_pooled_`` etc."""
    out = {}
    times = [r["time_s"] for r in runs]
    dofs = [r["n"] for r in runs]
    for part, pick in (("pooled", slice(None)), ("early", slice(0, EARLY)), ("t1", slice(-1, None))):
        print(f"\n{name} study, {dict(pooled='pooled over t = 0 … 1', early='pooled over t ≤ 0.1', t1='t = 1')[part]}:")
        table = convergence(sizes, [r["u"][pick].ravel() for r in runs], times, dofs, label)
        out.update({f"{name}_{part}_{k}": v for k, v in table.items()})
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200],
                    help="steps per unit time of the time study (h = 1/steps; the finest also runs the space study)")
    ap.add_argument("--time-n", type=int, default=512, help="grid points of the time study")
    ap.add_argument("--space-n", type=int, nargs="+", default=[64, 128, 256, 512],
                    help="grid points of the space study (at the finest step; the largest is --time-n's run)")
    ap.add_argument("--out", default=str(OUT), help="the reference file (.npz; '' writes nothing); the "
                    "refinement numbers go beside it, <stem>_refinement.npz")
    args = ap.parse_args(argv)
    steps, ns = sorted(args.steps), sorted(args.space_n)
    if ns[-1] != args.time_n:
        raise SystemExit("the largest --space-n must be --time-n (the reference run closes both studies)")
    start = time.perf_counter()
    solve(64, 100)  # warm-up

    def run(n: int, s: int, **kw) -> Dict:
        r = solve(n, s, **kw)
        print(f"  N={n} h=1/{s}: {r['time_s']:.2f} s", flush=True)
        return r

    time_runs = [run(args.time_n, s) for s in steps]
    best = time_runs[-1]
    space_runs = [run(n, steps[-1]) for n in ns[:-1]] + [best]
    meta = studies("h", [1.0 / s for s in steps], time_runs, "time")
    meta.update(time_steps=np.array(steps), time_n=np.array(args.time_n))
    meta.update(studies("dx", [2 * np.pi / n for n in ns], space_runs, "space"))
    meta.update(space_n=np.array(ns), space_steps=np.array(steps[-1]))

    # Round-off checks on the reference run: twice the points, 2/3 dealiasing, e^{hL} rounded
    # differently (its rounding compounds over the steps: the floor that finer steps run into).
    print("\nround-off checks (reference run against):")
    for key, r in (("check_n2x", run(2 * args.time_n, steps[-1])),
                   ("check_dealias", run(args.time_n, steps[-1], dealias=True)),
                   ("check_e_rounding", run(args.time_n, steps[-1], e_squared=True))):
        d = snapshot_l2(r["u"], best["u"])
        pooled = np.linalg.norm(r["u"] - best["u"]) / np.linalg.norm(best["u"])
        print(f"  {key}: pooled {pooled:.2e}, t ≤ 0.1 max {d[:EARLY].max():.2e}, t = 0.5 {d[50]:.2e}, t = 1 {d[-1]:.2e}")
        meta[f"{key}_pooled_l2"], meta[f"{key}_l2_t"] = np.array(pooled), d

    # Sensitivity: the reference run from a perturbed u0.
    perts = {"sin3x": lambda x: 1e-10 * np.sin(3 * x), "random": random_perturbation(1e-10)}
    sens, pooled, rates = [], [], []
    print("\nsensitivity to a 1e-10 perturbation of u0 (relative L2 difference per snapshot):")
    print(f"{'perturbation':>12} " + " ".join(f"t={t:<7.1f}" for t in OUT_TIMES[::10]) + "   pooled   rate/t")
    for name, f in perts.items():
        r = solve(args.time_n, steps[-1], u0=lambda x, f=f: initial(x) + f(x))
        d = snapshot_l2(r["u"], best["u"])
        p = np.linalg.norm(r["u"] - best["u"]) / np.linalg.norm(best["u"])
        late = OUT_TIMES >= 0.1 - 1e-12
        rate = np.polyfit(OUT_TIMES[late], np.log(d[late]), 1)[0]  # least-squares growth rate per unit t
        sens.append(d), pooled.append(p), rates.append(rate)
        print(f"{name:>12} " + " ".join(f"{e:<9.2e}" for e in d[::10]) + f" {p:.2e}  {rate:6.2f}")
    meta.update(sensitivity_t=OUT_TIMES, sensitivity_l2=np.array(sens), sensitivity_names=np.array(list(perts)),
                sensitivity_pooled_l2=np.array(pooled), sensitivity_rate=np.array(rates),
                sensitivity_size=np.array(1e-10))
    total = time.perf_counter() - start
    print(f"\nall solves: {total:.1f} s")

    if args.out:
        out = Path(args.out)
        u = best["u"]  # [T, P]
        x = grid(P_OUT)
        T = OUT_TIMES.size
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, x=np.repeat(x, T), t=np.tile(OUT_TIMES, P_OUT),
                            u=np.ascontiguousarray(u.T).ravel())  # node-major: row m·T + k is x_m at t_k
        meta.update(total_time_s=np.array(total))
        side = out.with_name(out.stem + "_refinement.npz")
        np.savez(side, **{k: np.asarray(v) for k, v in meta.items()})
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {side}")


if __name__ == "__main__":
    main()
