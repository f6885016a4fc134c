"""An independent reference for PINNacle's NS2d-LT (``NS2D_LongTime``), whose reference file
(``ref/ns_long.dat``) is not available: Taylor–Hood P2/P1 in space, BDF2 with extrapolated
(explicit) convection in time.

Problem (PINNacle ``src/pde/ns.py``, ``NS2D_LongTime``; ν = 1/100)
    u_t + u u_x + v u_y + p_x − ν Δu = 0,
    v_t + u v_x + v v_y + p_y − ν Δv = f,   f = −sin πx sin πy sin πt,
    u_x + v_y = 0                            on Ω = [0, 2] × [0, 1], t ∈ [0, 5];
    inlet x = 0: u = a(t) sin πy, v = 0, a(t) = sin πt + sin 3πt + sin 5πt (|a| ≤ 2.2308);
    walls y = 0, y = 1: u = v = 0;  u = v = 0 at t = 0.
    Outlet x = 2: PINNacle writes only p = 0, which does not close the problem for the velocity.
    This reference poses the do-nothing condition of the Laplacian-form weak formulation,
        ν u_x − p = 0   and   ν v_x = 0   at x = 2   (ν ∂u/∂n − p n = 0),
    natural in ν(∇u, ∇w) − (p, ∇·w) + ((u·∇)u, w) = (f, w); p is then ν u_x, |p| < 0.01 there. It
    lets fluid in when the inlet reverses (u down to −1.86 at the outlet), and the stress form
    2νD(u)n − p n = 0 (COMSOL's usual outlet) gives a visibly different flow: 5 % in u, v
    (``--outlet-study``). The pressure has no initial condition (PINNacle's p = 0 at t = 0 is not
    consistent): at t = 0 the file holds p(0+), the harmonic p with ∂p/∂x = −a'(0) sin πy = −9π sin πy
    at the inlet, ∂p/∂y = 0 on the walls, p = 0 at the outlet (``initial_pressure``, a cosine
    series, up to 37.8 at the inlet: the whole channel accelerating from rest).

Method
    Space: Taylor–Hood P2/P1 (scikit-fem) on the structured triangle mesh with n squares per unit
    length (h = 1/n, each square cut into two triangles); every integral by the same degree-5
    rule through sparse matrices from dofs to quadrature values. Time: BDF2 (the first step
    BDF1) with the convection extrapolated, (3uⁿ⁺¹ − 4uⁿ + uⁿ⁻¹)/(2τ) + (u*·∇)u* + ∇pⁿ⁺¹ −
    νΔuⁿ⁺¹ = fⁿ⁺¹, u* = 2uⁿ − uⁿ⁻¹ (SBDF2/EXT2): the matrix is constant, so one LU per (h, τ)
    (PARDISO, real unsymmetric, one MKL thread, no iterative refinement; SuperLU without
    pypardiso) and one back-substitution a step. Implicit convection would need a new
    factorisation every step (seconds at h = 1/64); the explicit term's step limit (it blew up
    in trial runs at |u|τ/(h/2) ≈ 1.4) is far looser than the accuracy wanted (the study's
    steps stay at ≤ 0.71). Dirichlet dofs are eliminated; the outlet needs nothing. The
    discretisation, the LU and the stepping are ``dinf/solvers/classical/navier_stokes.py``
    (numpy, scipy and scikit-fem only, shared with ``solver=taylor_hood``; nothing else of
    ``dinf``); this script gives it NS2d-LT's data.

    Values at the evaluation points (the 0.05-spaced grid of [0, 2] × [0, 1], 41 × 21, boundary
    included) through scikit-fem's probe matrices, at t = 0, 0.1, …, 5; differences are
    PINNacle's pooled relative L2 over u, v, p and every value (p is 99.7 % of that norm).

Command (2-core CPU shared with other jobs, 2026-12-06; 15.5 min in all)
    python experiments/references/ns2d_lt.py     # --n 8 16 32 64 --steps 400 800 1600
writes ``data/references/ns2d_lt.npz`` (columns x, y, t, u, v, p; 861 points × 51 times,
node-major; the n = 64, τ = 1/1600 solve, 74 691 dofs, 8000 steps) and
``ns2d_lt_refinement.npz`` beside it (the tables below, per field).

Measured (relative L2 difference to the finest, n = 64 and τ = 1/1600; u, v, p pooled and u, v
pooled; time: setup + all steps, load average about 5 on the 2 cores)::

    space (τ = 1/1600, 8000 steps)
       h     dofs  time (s)  u,v,p vs finest  order   u,v vs finest  order
     1/8     1275       4.2        7.824e-03            3.932e-02
    1/16     4851      12.5        1.337e-03   2.55     1.134e-02   1.79
    1/32    18915      60.2        1.228e-04   3.45     7.215e-04   3.97
    1/64    74691     491.5        0 (reference)        (successive orders 3.36 and 3.91)

    time (h = 1/64)
       τ   steps  time (s)  u,v,p vs finest  order   u,v vs finest  order
   1/400    2000     108.5        3.930e-04            1.946e-04
   1/800    4000     246.1        7.860e-05   2.32     3.877e-05   2.33
  1/1600    8000     491.5        0 (reference)        (successive orders 2.00 and 2.01)

So the reference's own error is about 1.3e-5 (space, order 3.4) + 2.6e-5 (time, τ²): 4e-5
pooled; for u, v pooled about 5e-5 + 1.3e-5 (1e-4 if space were only order 3); v alone, 1/9 of
u's norm, a few 1e-4. The time error follows the inlet's acceleration (largest at t = 0.2, 1,
2, …, tiny at t = 0.5, 1.5, …): it is mostly the pressure's.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from dinf.solvers.classical import navier_stokes as core  # noqa: E402
from dinf.solvers.classical.navier_stokes import solve  # noqa: E402
from experiments.references.common import convergence, rel_l2  # noqa: E402

OUT = ROOT / "data" / "references" / "ns2d_lt.npz"

NU = 0.01
LENGTH, HEIGHT = 2.0, 1.0
T_END = 5.0
OUT_DT = 0.1
OUT_TIMES = np.round(np.arange(51) * OUT_DT, 12)
SPACING = 0.05  # evaluation grid: 41 × 21 points, boundary included


# --------------------------------------------------------------------------------------------
# The problem's data


def inlet_amplitude(t):
    """a(t) = sin πt + sin 3πt + sin 5πt: the inlet velocity is u = a(t) sin πy."""
    return np.sin(np.pi * t) + np.sin(3 * np.pi * t) + np.sin(5 * np.pi * t)


def inlet_amplitude_dt(t):
    return np.pi * (np.cos(np.pi * t) + 3 * np.cos(3 * np.pi * t) + 5 * np.cos(5 * np.pi * t))


class Flow(core.Flow):
    """NS2d-LT as a Navier–Stokes problem on [0, L] × [0, H] for :func:`solve`
    (``dinf.solvers.classical.navier_stokes``): Dirichlet velocity on x = 0, y = 0 and y = H,
    the outlet x = L natural, ν ∂u/∂n − p n = ``traction`` (0: do nothing). ``dirichlet(x, t)``
    → (u, v), ``force(x, t)`` → (f_x, f_y), ``traction(x, t)`` → (h_x, h_y) or None,
    ``initial(x)`` → (u, v); x ``[2, ...]``."""

    nu = NU
    length, height = LENGTH, HEIGHT
    walls = ("x_min", "y_min", "y_max")

    def dirichlet(self, x, t):
        return inlet_amplitude(t) * np.sin(np.pi * x[1]) * (x[0] < 1e-12), np.zeros(x.shape[1:])

    def force(self, x, t):
        if getattr(self, "_at", None) is not x:  # the spatial factor, once per set of points
            self._at, self._shape = x, -np.sin(np.pi * x[0]) * np.sin(np.pi * x[1])
        return None, self._shape * np.sin(np.pi * t)

    traction = None

    def initial(self, x):
        return np.zeros(x.shape[1:]), np.zeros(x.shape[1:])


def initial_pressure(x, y, terms: int = 4000):
    """NS2d-LT's pressure at t = 0+ (the one consistent with u = v = 0 and the inlet's
    acceleration a'(0) sin πy = 9π sin πy): Δp = 0, ∂p/∂x = −9π sin πy at x = 0, ∂p/∂y = 0 on the
    walls, p = 0 at x = 2. With sin πy = 2/π − Σ_{k even} 4/(π(k² − 1)) cos kπy,
    p = 18 (2 − x) − Σ_{k even} 36/(π(k² − 1)) · sinh(kπ(2 − x)) / (kπ cosh 2kπ) · cos kπy."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    a = inlet_amplitude_dt(0.0)  # 9π
    p = a * (2 / np.pi) * (LENGTH - x)
    for k in range(2, terms + 1, 2):
        c = -4 / (np.pi * (k * k - 1))
        # sinh(kπ(L − x)) / cosh(kπL) without overflow
        ratio = (np.exp(-k * np.pi * x) - np.exp(-k * np.pi * (2 * LENGTH - x))) / (1 + np.exp(-2 * k * np.pi * LENGTH))
        p = p + a * c * ratio / (k * np.pi) * np.cos(k * np.pi * y)
    return p


# --------------------------------------------------------------------------------------------
# NS2d-LT


def eval_points(spacing: float = SPACING) -> np.ndarray:
    """The grid of [0, 2] × [0, 1] with ``spacing`` (boundary included), ``[2, P]``; y runs
    fastest (point i·21 + j is (x_i, y_j) for the default 41 × 21)."""
    nx, ny = round(LENGTH / spacing) + 1, round(HEIGHT / spacing) + 1
    X, Y = np.meshgrid(np.linspace(0, LENGTH, nx), np.linspace(0, HEIGHT, ny), indexing="ij")
    return np.stack([X.ravel(), Y.ravel()])


def warm_up(backend: str = "auto") -> None:
    """Load scikit-fem and the sparse backend on a tiny problem, so timings hold only work."""
    solve(Flow(), 2, 0.05, [0.0, 0.1], eval_points(0.5), backend)


def fields(run: Dict, names: Sequence[str] = ("u", "v", "p")) -> np.ndarray:
    """The run's values of ``names`` side by side, ``[T, len(names)·P]``: PINNacle's pooled L2RE
    is ``rel_l2`` of these."""
    return np.concatenate([run[k] for k in names], axis=1)


def snapshots(label: str, sizes: Sequence[float], runs: Sequence[Dict], cols: Sequence[int]) -> str:
    """Each run's difference to the last at single output times (u, v, p together, relative to
    the pooled norm), to show where in time the differences sit."""
    fine = fields(runs[-1])
    lines = [f"{label:>8} " + " ".join(f"t={OUT_TIMES[j]:<6.1f}" for j in cols)]
    for s, r in zip(sizes[:-1], runs[:-1]):
        e = np.linalg.norm(fields(r) - fine, axis=1) / np.linalg.norm(fine)
        lines.append(f"{s:>8.4g} " + " ".join(f"{e[j]:<8.1e}" for j in cols))
    return "\n".join(lines)


def study(label: str, sizes: Sequence[float], runs: Sequence[Dict], dofs: Sequence[int], prefix: str) -> Dict:
    """``common.convergence`` tables for u, v, p pooled, then u, v (pooled), u, v and p alone;
    their arrays renamed ``<prefix>_<field>_…`` for the refinement file."""
    out: Dict[str, np.ndarray] = {}
    times = [r["time_s"] for r in runs]
    for name, keys in (("uvp", ("u", "v", "p")), ("uv", ("u", "v")), ("u", ("u",)), ("v", ("v",)), ("p", ("p",))):
        print(f"\n{prefix} study, {'pooled ' if len(keys) > 1 else ''}{', '.join(keys)}:")
        res = convergence(sizes, [fields(r, keys) for r in runs], times, dofs, label)
        for k, v in res.items():
            k = k.replace("refine_", "")
            out[f"{prefix}_{name}_{label if k == 'h' else k}"] = v  # space_…_h, time_…_tau
    return out


def outlet_study(n: int, steps: int, backend: str = "auto") -> None:
    """The same flow with the stress-form outlet, 2νD(u)n − p n = 0, against the Laplacian-form
    one, ν∂u/∂n − p n = 0 (the reference's): how much the outlet condition matters."""
    pts = eval_points()
    runs = []
    for stress in (False, True):
        r = solve(Flow(), n, 1.0 / steps, OUT_TIMES, pts, backend, p0=initial_pressure, stress=stress)
        print(f"  {'stress' if stress else 'Laplacian'} form, n={n}, {steps} steps per unit time: "
              f"{r['time_s']:.1f} s", flush=True)
        runs.append(r)
    for keys in (("u", "v", "p"), ("u", "v"), ("u",), ("v",), ("p",)):
        d = rel_l2(fields(runs[1], keys)[1:], fields(runs[0], keys)[1:])
        print(f"  stress vs Laplacian outlet, {', '.join(keys)}: rel L2 {d:.3e} (t = 0.1 … 5)")
    x = pts[0]
    for name in ("u", "v", "p"):
        diff = np.abs(runs[1][name] - runs[0][name])[1:]
        print(f"  max |Δ{name}| {diff.max():.3e}; at x ≤ 1: {diff[:, x <= 1].max():.3e}; "
              f"at x ≤ 1.5: {diff[:, x <= 1.5].max():.3e}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[8, 16, 32, 64],
                    help="squares per unit length (h = 1/n) of the space study (the finest also runs the "
                         "time study)")
    ap.add_argument("--steps", type=int, nargs="+", default=[400, 800, 1600],
                    help="steps per unit time (τ = 1/steps) of the time study (the finest also runs the "
                         "space study)")
    ap.add_argument("--backend", default="auto", choices=["auto", "pardiso", "superlu"])
    ap.add_argument("--outlet-study", action="store_true",
                    help="only compare the stress-form outlet with the Laplacian one at the coarsest "
                         "--n and --steps given (writes nothing)")
    ap.add_argument("--out", default=str(OUT), help="the reference file (.npz; '' writes nothing); the "
                    "convergence numbers go beside it, <stem>_refinement.npz")
    args = ap.parse_args(argv)
    ns, ss = sorted(args.n), sorted(args.steps)

    warm_up(args.backend)
    if args.outlet_study:
        outlet_study(ns[0], ss[0], args.backend)
        return
    pts = eval_points()
    print(f"{pts.shape[1]} evaluation points × {OUT_TIMES.size} times")

    def run(n: int, steps: int) -> Dict:
        out = solve(Flow(), n, 1.0 / steps, OUT_TIMES, pts, args.backend, p0=initial_pressure)
        cfl = out["speed"] * out["tau"] * 2 * n
        print(f"  n={n} τ=1/{steps}: {out['dofs']} dofs, {out['steps']} steps, {out['time_s']:.1f} s (setup "
              f"{out['setup_s']:.1f}, {1e3 * out['step_s'] / out['steps']:.1f} ms a step); max |u|, |v| at the "
              f"nodes {out['speed']:.3f}, CFL |u|τ/(h/2) ≤ {cfl:.2f}", flush=True)
        return out

    t_all = time.perf_counter()
    space = [run(n, ss[-1]) for n in ns[:-1]]
    time_runs = [run(ns[-1], s) for s in ss]
    space.append(time_runs[-1])  # the finest of both
    meta = study("h", [1.0 / n for n in ns], space, [r["dofs"] for r in space], "space")
    meta.update(study("tau", [1.0 / s for s in ss], time_runs, [r["dofs"] for r in time_runs], "time"))
    cols = [1, 2, 3, 5, 10, 15, 20, 30, 40, 50]
    print(f"\nspace (τ = 1/{ss[-1]}), each output time:\n{snapshots('h', [1.0 / n for n in ns], space, cols)}")
    print(f"\ntime (h = 1/{ns[-1]}), each output time:\n"
          f"{snapshots('tau', [1.0 / s for s in ss], time_runs, cols)}")
    ref = time_runs[-1]
    print(f"\nreference (n = {ns[-1]}, τ = 1/{ss[-1]}): |u| ≤ {np.abs(ref['u']).max():.4f}, "
          f"v in [{ref['v'].min():.4f}, {ref['v'].max():.4f}], p in [{ref['p'].min():.3f}, {ref['p'].max():.3f}] "
          f"(t ≥ 0.1: [{ref['p'][1:].min():.3f}, {ref['p'][1:].max():.3f}]); all solves "
          f"{time.perf_counter() - t_all:.0f} s")
    if args.out:
        out = Path(args.out)
        P, T = pts.shape[1], OUT_TIMES.size
        out.parent.mkdir(parents=True, exist_ok=True)
        cols_ = dict(x=np.repeat(pts[0], T), y=np.repeat(pts[1], T), t=np.tile(OUT_TIMES, P))
        for k in ("u", "v", "p"):
            cols_[k] = np.ascontiguousarray(ref[k].T).ravel()  # node-major: row m·T + k is point m at t_k
        np.savez_compressed(out, **cols_)
        meta.update(space_n=np.asarray(ns), space_steps_per_unit=ss[-1], time_steps_per_unit=np.asarray(ss),
                    time_n=ns[-1], time_steps=np.asarray([r["steps"] for r in time_runs]),
                    max_speed=np.asarray([r["speed"] for r in space[:-1] + time_runs]))
        side = out.with_name(out.stem + "_refinement.npz")
        np.savez(side, **{k: np.asarray(v) for k, v in meta.items()})
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {side}")


if __name__ == "__main__":
    main()
