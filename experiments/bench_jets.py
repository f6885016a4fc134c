"""Cost of one training iteration with closed-form vs autograd jets (Poisson image, CPU).

One iteration = sample points -> jet of the field -> loss -> backward -> Adam step, on the
256² cameraman Poisson reconstruction of ``dinf/pdes/poisson.py``, for

* ``dinf (closed form)``: DInfGrid (resolution 256, 6 levels, 2 features, ρ=3, Gaussian kernel,
  linear decoder) with ``field.jet(x, order)``: derivatives from the kernel weights;
* ``dinf (closed form, torch)``: the same closed-form jets computed with PyTorch ops only
  (the path used on GPUs, in 3D and for the radial kernels) instead of the fused CPU kernel;
* ``dinf (autograd)``: the same module (rebuilt with the same seed: identical weights) with
  ``autograd_jet``: reverse mode through the interpolation, ``create_graph=True`` (double
  backward), as the paper's reference code does;
* ``dinf (reference-style)``: the same grid computed as the paper's reference code does:
  all (2ρ)² neighbours gathered by indexing, weights from PyTorch ops, jets by autograd;
* ``siren 5x256``: Siren(hidden=256, layers=5, omega0=30) with its own (autograd) jet;
* ``dinf-iq (...)``: the grid with the non-separable inverse-quadratic kernel (radial
  weights over all (2ρ)² neighbours instead of per-axis ones), closed form and autograd.

Gradient supervision needs jets of order 1, Laplacian supervision order 2 (its grid has 4
levels, as in the paper). Every method restarts the same seeded torch.Generator, so all see the
same points. Times are seconds per iteration after warm-up (median and min over repeats); the
peak memory column is the resident-set growth during the last (untimed) warm-up iteration.

Reproduce (from the repository root)::

    python experiments/bench_jets.py                 # full run, ~45 s on 2 CPU cores
    python experiments/bench_jets.py --quick         # 1 warm-up + 2 repeats, ~20 s
    python experiments/bench_jets.py --out bench_jets.json --methods dinf,dinf-ag
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, uninstalled
from dinf.fields.base import autograd_jet  # noqa: E402
from dinf.fields.dinf_grid import DInfGrid  # noqa: E402
from dinf.fields.siren import Siren  # noqa: E402
from dinf.jet import Jet  # noqa: E402
from dinf.pdes.poisson import PoissonImage  # noqa: E402

JetFn = Callable[[Tensor, int], Jet]
# key -> (label, field kind, closed-form jet? (Siren's own jet is autograd), grid backend)
METHODS: Dict[str, Tuple[str, str, bool, str]] = {
    "dinf": ("dinf (closed form)", "gaussian", True, "auto"),
    "dinf-torch": ("dinf (closed form, torch)", "gaussian", True, "torch"),
    "dinf-ag": ("dinf (autograd)", "gaussian", False, "auto"),
    "dinf-ref": ("dinf (reference-style)", "gaussian", True, "reference"),
    "siren": ("siren 5x256", "siren", True, "auto"),
    "iq": ("dinf-iq (closed form)", "inverse_quadratic", True, "auto"),
    "iq-ag": ("dinf-iq (autograd)", "inverse_quadratic", False, "auto"),
}
LEVELS = {"gradient": 6, "laplacian": 4}


def make_field(kind: str, supervision: str, resolution: int, backend: str) -> nn.Module:
    torch.manual_seed(0)  # identical initial weights for closed form and autograd
    if kind == "siren":
        return Siren(2, 1, hidden=256, layers=5, omega0=30.0)
    return DInfGrid(resolution=resolution, levels=LEVELS[supervision], features=2, rho=3,
                    kernel=kind, decoder="linear", backend=backend)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096  # resident pages (4 KiB on x86-64 Linux)


def peak_rss_growth(step: Callable[[], float]) -> Tuple[float, float]:
    """(MiB the resident set grows above its start while ``step`` runs (polled), its result)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand back what earlier methods freed
    except OSError:
        pass
    start, peak, done = rss_bytes(), [0], threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.001)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    result = step()
    done.set()
    t.join()
    return max(0, max(peak[0], rss_bytes()) - start) / 2**20, result


def bench(problem: PoissonImage, field: nn.Module, jet: JetFn, args: argparse.Namespace) -> Dict:
    opt = torch.optim.Adam(field.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1234)  # same points for every method

    def step() -> float:
        batch = problem.sample(args.points, gen)
        loss = problem.loss(jet(batch.x, problem.jet_order), batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach().item()

    # First iteration: same points and weights for every method -> comparable losses. The
    # last warm-up iteration (untimed, so polling cannot perturb the timings) gives the memory.
    losses = [step() for _ in range(args.warmup - 1)]
    peak_mib, last = peak_rss_growth(step)
    first_loss = (losses + [last])[0]
    times: List[float] = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times,
            "first_loss": first_loss, "peak_rss_mib": peak_mib,
            "params": sum(p.numel() for p in field.parameters())}


def run(args: argparse.Namespace, keys: List[str]) -> List[Dict]:
    rows = []
    for sup in args.supervisions.split(","):
        problem = PoissonImage("cameraman", resolution=args.resolution, supervision=sup)
        for key in keys:
            label, kind, closed, backend = METHODS[key]
            field = make_field(kind, sup, args.resolution, backend)
            jet: JetFn = field.jet if closed else (lambda x, o, f=field: autograd_jet(f, x, o))
            res = bench(problem, field, jet, args)
            rows.append({"supervision": sup, "method": label, "key": key, **res})
            print(f"  {sup:9s} {label:22s} {res['median_s']:.4f} s/iter  "
                  f"(loss0 {res['first_loss']:.6g})", flush=True)
    return rows


def table(rows: List[Dict]) -> str:
    out = ["| supervision | method | s/iter (median) | s/iter (min) | × slower than closed form "
           "| peak ΔRSS (MiB) | params |", "|---|---|---|---|---|---|---|"]
    base = {r["supervision"]: r["median_s"] for r in rows if r["key"] == "dinf"}
    for r in rows:
        b: Optional[float] = base.get(r["supervision"])
        ratio = f"{r['median_s'] / b:.2f}×" if b else "–"
        out.append(f"| {r['supervision']} | {r['method']} | {r['median_s']:.4f} | {r['min_s']:.4f} "
                   f"| {ratio} | {r['peak_rss_mib']:.0f} | {r['params']:,} |")
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=16384, help="collocation points per iteration")
    p.add_argument("--repeats", type=int, default=5, help="timed iterations per method")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (>= 1)")
    p.add_argument("--resolution", type=int, default=256, help="image and finest grid resolution")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--quick", action="store_true", help="1 warm-up, 2 repeats")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--methods", default=None, help=f"comma list of {','.join(METHODS)}")
    p.add_argument("--supervisions", default="gradient,laplacian")
    args = p.parse_args(argv)
    keys = [k.strip() for k in args.methods.split(",")] if args.methods else list(METHODS)
    if [k for k in keys if k not in METHODS]:
        p.error(f"unknown --methods in {keys}; choose from {list(METHODS)}")
    if not set(args.supervisions.split(",")) <= set(LEVELS):
        p.error(f"--supervisions: comma list of {','.join(LEVELS)}")
    if args.quick:
        args.warmup, args.repeats = 1, 2
    args.warmup, args.repeats = max(1, args.warmup), max(1, args.repeats)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    header = (f"torch {torch.__version__}, threads {torch.get_num_threads()}, points {args.points}, "
              f"warmup {args.warmup}, repeats {args.repeats}, grid resolution {args.resolution}, "
              f"load average at start {load}")
    print(header, flush=True)
    if load != "?" and float(load) > 0.5 * (os.cpu_count() or 1):  # others stall OpenMP workers
        print("warning: the machine is busy; multi-threaded timings can be inflated many-fold "
              "(--threads 1 is more robust)", flush=True)
    t0 = time.perf_counter()
    rows = run(args, keys)
    print(f"\n{header}, total {time.perf_counter() - t0:.0f} s\n\n{table(rows)}")
    if args.out:
        args.out.write_text(json.dumps({"config": vars(args) | {"out": str(args.out)},
                                        "torch": torch.__version__,
                                        "threads": torch.get_num_threads(), "load_average": load,
                                        "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
