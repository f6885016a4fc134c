"""Benchmark suite: ∂∞-Grid against SIREN and the linear grid, in one process on one machine.

Runs each method through the library as ``train.py`` does (``dinf.app.run.train`` on a composed
config) on Poisson from gradients (256²; and with ``pde.sobel_smoothing``, the measurement
model of its Sobel targets), Poisson from the Laplacian (256², ∂∞-Grid with 4 levels as in the
paper), Helmholtz (k = 20, point source with a PML) and two nonlinear PINNacle problems,
Burgers1d-C and NS2d-C, and the cloth's energy (``--problems burgers1d,ns2d_c,cloth``). Methods:

* ``dinf`` (∂∞-Grid, Adam, closed-form jets), ``siren``, ``linear_grid``: each trained for a
  wall-clock budget (Lightning's ``max_time``, which counts validation too; the tables report
  training time only, from ``metrics.json``);
* ``dinf-ref``: ∂∞-Grid computed as the paper's reference code does (indexed neighbours,
  autograd double backward), a few dozen steps, for its time per iteration only;
* ``dinf-lsq``: one least-squares solve (50 LSQR iterations for Poisson, ``pde=helmholtz``'s
  best settings for Helmholtz), on the CPU (scipy); its time includes assembly. On the
  nonlinear problems, Gauss–Newton's solves (``pde=<problem>``'s best settings); on the
  cloth, projected Newton's (``experiment=cloth_newton``). The other methods train by Adam.

Per (problem, method): s/iteration, peak memory (CPU: growth of the resident set's high-water
mark; GPU: ``max_memory_allocated``), parameters, final and best primary metric (PSNR, higher is
better; ``rel_l2_core`` for Helmholtz, lower is better), training time to fixed targets (PSNR
25/30/32 dB; 11/12/12.5 dB from the Laplacian, whose ceiling is ~12 dB; rel_l2_core
0.5/0.1/0.05), the metric at fixed training times (5 … 600 s: the last validation at or before
t, "–" where the run was shorter) and steps. Under each table: s/iteration of the others over
∂∞-Grid's; how many times sooner ∂∞-Grid reaches SIREN's and the linear grid's best value than
they do (their time of their best / ∂∞-Grid's first time as good); the solve's time against the
time Adam needs for the solve's quality. Written to ``--out`` (default ``bench_results/
<date-time>/``): ``bench.json`` (rows with histories, ratios, machine, command; rewritten after
every run), ``bench.md``, and each run's folder (``metrics.json``, pictures).

Modes:

* ``--quick`` (the default on a CPU; ≤ 5 minutes on 2 cores: 2 min 26 s at load average 0.9,
  3 min 44 s at 1.9, 2026-12-06): the fast problems only (``QUICK_PROBLEMS``: Poisson from
  gradients, Poisson from the Laplacian, Helmholtz), the five methods each at short budgets:
  ∂∞-Grid and the linear grid 8 s, SIREN 15 s, the reference-style run 3 steps, the
  least-squares solve as in every mode; 16 384 points per step. Left out: Burgers1d-C and NS2d-C
  (their Gauss–Newton solves take 1–3 minutes each on 2 cores), the cloth (the grids need its own
  60 s budget) and the Sobel variant (steps ~4× Poisson's). The former quick mode (all seven
  problems, grids 20 s, SIREN 45 s, 20 reference-style steps) ran past 15 minutes (28 min 17 s
  at load average 2–7). ``--quick --problems burgers1d,ns2d_c,cloth`` runs those at quick budgets.
* ``--full`` (the default on a GPU): every problem, 65 536 points per step, the paper's SIREN
  per problem, grids 120 s, SIREN 600 s: ~1 h.
* ``--smoke`` (32² problems, 4 steps: seconds; what the test runs).

``--problems`` and the budget flags override a mode's choices. OMP_WAIT_POLICY is PASSIVE
unless set: numba's spinning OpenMP workers otherwise slow the PyTorch method that follows.

Reproduce (from the repository root)::

    python experiments/bench.py --quick
    python experiments/bench.py --quick --problems burgers1d,ns2d_c,cloth  # the nonlinear ones
    python experiments/bench.py --full --device cuda
    bash experiments/gpu_bench.sh              # --full with 30/30/60 s budgets: < 10 min on a GPU
    python experiments/bench.py --smoke
    python experiments/bench.py --quick --problems helmholtz --methods dinf,dinf-lsq --budget 60
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

# numba's OpenMP workers spin after each ∂∞-Grid kernel and starve the PyTorch ops of the next
# method (SIREN steps 18× slower on a busy 2-core machine); waiting passively costs microseconds.
# Must be set before the OpenMP runtime loads; export OMP_WAIT_POLICY=ACTIVE to measure without.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, uninstalled
from dinf.app.run import train  # noqa: E402
from dinf.app.tracking import override_key  # noqa: E402
from experiments import bench_lib as lib  # noqa: E402


@dataclass
class Problem:
    overrides: List[str]          # the trained methods' problem (Adam: the paper's settings)
    targets: List[float]          # in the primary metric's units
    lsq: List[str]                # the solve's problem and settings (dinf-lsq), in place of ``overrides``
    siren_full: List[str] = field(default_factory=list)  # the paper's SIREN for this problem
    budget: Optional[float] = None  # the grids' seconds, where the mode's are too few for the experiment


LSQR = ["experiment=poisson_lsq"]  # 50 LSQR iterations: the model's ceiling (pde=poisson's best)
PROBLEMS: Dict[str, Problem] = {
    "poisson_gradient": Problem(["pde=poisson"], [25, 30, 32], ["pde=poisson", *LSQR]),
    # The same data, the field's derivative smoothed as the Sobel filter smooths its targets: no
    # longer capped at 33.3 dB (experiments/gradient_ceiling.py); each step reads ~3× the points.
    "poisson_gradient_sobel": Problem(["pde=poisson", "pde.sobel_smoothing=true"], [25, 30, 34],
                                      ["pde=poisson", "pde.sobel_smoothing=true", *LSQR]),
    # Laplacian data fix the image up to a harmonic function: ~12 dB is the ceiling, not 30.
    "poisson_laplacian": Problem(["pde=poisson_laplacian", "grid.levels=4"], [11, 12, 12.5],
                                 ["pde=poisson_laplacian", "grid.levels=4", *LSQR], ["model.hidden=512"]),
    # Adam on the paper's Helmholtz (Gaussian source, the paper's kernel on the default levels)
    # against pde=helmholtz's best settings (the singular source, the windowed wide kernel, one solve).
    "helmholtz": Problem(["pde=helmholtz", "pde.best=null", "pde.source_model=gaussian"], [0.5, 0.1, 0.05],
                         ["pde=helmholtz"], ["model.hidden=512", "model.layers=4", "model.lr=2e-5"]),
    # Nonlinear (PINNacle's): Adam on 4 levels (as PINNs train) against the pde files' Gauss–Newton.
    "burgers1d": Problem(["experiment=pinnacle_burgers1d"], [0.1, 0.05, 1.5e-3], ["pde=burgers1d"]),
    "ns2d_c": Problem(["experiment=pinnacle_ns2d_c"], [0.03, 0.01, 3.6e-3], ["pde=ns2d_c"]),
    # An energy (the paper's cloth): Adam's 2 001 steps (about 40 s) against projected Newton.
    "cloth": Problem(["experiment=cloth_paper"], [-2.6, -2.65, -2.67], ["experiment=cloth_newton"], budget=60),
}
# --quick's problems: those whose five methods finish in about a minute and a half on 2 cores.
QUICK_PROBLEMS = ["poisson_gradient", "poisson_laplacian", "helmholtz"]
METHODS: Dict[str, List[str]] = {  # the trained methods by Adam, as the paper trains them
    "dinf": ["model=dinf", "solver=adam"],
    "dinf-ref": ["model=dinf", "model.backend=reference", "solver=adam"],
    "siren": ["model=siren", "solver=adam"],
    "linear_grid": ["model=linear_grid", "solver=adam"],
    "dinf-lsq": ["model=dinf"],  # the problem's lsq overrides name the solve (solver=auto picks it)
}


@dataclass
class Mode:
    budgets: Dict[str, float]     # seconds of wall time per trained method
    ref_steps: int
    val_every: Dict[str, int]     # validation cadence: SIREN's steps are ~20× dearer on a CPU
    extra: List[str]
    max_steps: int = 10**7        # the time budget ends the run
    paper_siren: bool = False
    threads: Optional[int] = None  # torch threads unless --threads (None: torch's default)
    problems: Optional[List[str]] = None  # the problems run unless --problems (None: all)


MODES: Dict[str, Mode] = {
    "quick": Mode({"dinf": 8, "linear_grid": 8, "siren": 15}, 3, {"grids": 25, "siren": 10}, [],
                  problems=QUICK_PROBLEMS),
    # The paper draws every pixel (or 256² points) per step; a GPU does that as fast as 16 k.
    "full": Mode({"dinf": 120, "linear_grid": 120, "siren": 600}, 100, {"grids": 100, "siren": 50},
                 ["pde.batch_size=65536"], paper_siren=True),
    # Grid levels stay as configured (32 cells take 6): helmholtz_lsq's single level keeps its
    # direct solve small. One thread: tiny ops on a busy machine stall OpenMP (10-100× slower).
    "smoke": Mode({"dinf": 5, "linear_grid": 5, "siren": 5}, 3, {"grids": 2, "siren": 2},
                  ["pde.resolution=32", "grid.resolution=32", "pde.batch_size=1024", "++siren.hidden=64"],
                  max_steps=4, threads=1),
}
TIME_POINTS = [5, 10, 30, 60, 300, 600]
QUIET = ["trainer.enable_progress_bar=false", "~logger", "checkpoint.enabled=false",
         "checkpoint.registry=null", "checkpoint.resume=false"]


def dedupe(overrides: Sequence[str]) -> List[str]:
    """One override per key, the last given (Hydra refuses a key twice)."""
    return list({override_key(o): o for o in overrides}.values())  # first key's place, last value


def compose_cfg(overrides: Sequence[str]) -> DictConfig:
    """The project's config with ``overrides``; a later override of the same key wins."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=dedupe(overrides))


def max_time(seconds: float) -> str:
    s = max(1, int(round(seconds)))
    return f"{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def run_device(method: str, args: argparse.Namespace) -> str:
    # The solve is scipy on the CPU (and sparse assembly calls .numpy() on the basis tensors).
    return "cpu" if method == "dinf-lsq" else args.device


def run_overrides(problem: str, method: str, mode: Mode, args: argparse.Namespace) -> List[str]:
    p = PROBLEMS[problem]
    o = [f"trainer.accelerator={'gpu' if run_device(method, args) == 'cuda' else 'cpu'}"] + QUIET
    o += (p.lsq if method == "dinf-lsq" else p.overrides) + METHODS[method]
    o += p.siren_full if method == "siren" and mode.paper_siren else []
    o += mode.extra
    if method == "dinf-ref":  # validated once at the end: only its time per step matters
        o += [f"trainer.max_steps={args.ref_steps}", f"trainer.val_check_interval={args.ref_steps}"]
    elif method != "dinf-lsq":
        every = args.siren_val_every if method == "siren" else args.val_every
        o += [f"trainer.max_steps={mode.max_steps}", f"trainer.val_check_interval={every}",
              f"trainer.max_time={max_time(p.budget if p.budget and method != 'siren' else args.budgets[method])}"]
    return dedupe(o + list(args.set))


def run_one(problem: str, method: str, mode: Mode, args: argparse.Namespace, out: Path) -> Dict[str, Any]:
    """Train one method on one problem; a row of the table (``status: failed`` if it raised)."""
    spec = PROBLEMS[problem]
    overrides = run_overrides(problem, method, mode, args)
    row: Dict[str, Any] = {"problem": problem, "method": method, "label": lib.LABELS[method],
                           "device": run_device(method, args), "run_dir": str(out / problem / method),
                           "overrides": overrides,  # the run alone: python train.py <overrides>
                           "command": "python train.py " + " ".join(map(shlex.quote, overrides)),
                           "budget_s": args.budgets.get(method)}
    t0 = time.perf_counter()
    try:
        cfg = compose_cfg(overrides)
        with lib.PeakMemory(row["device"] == "cuda") as mem:
            m = train(cfg, output_dir=row["run_dir"])
    except Exception as e:  # one failed method must not cost the others' results
        row.update(status="failed", error=f"{type(e).__name__}: {e}", wall_s=time.perf_counter() - t0)
        print(f"  {problem} {method}: FAILED {row['error']}", flush=True)
        return row
    metric, mode_ = next(iter(m["metric_modes"].items()))
    hist = [{"step": h["step"], "train_time_s": h["train_time_s"], metric: h.get(metric)} for h in m["history"]]
    steps, t = m["steps"], m["train_time_s"]
    row.update(
        status="ok", metric=metric, mode=mode_, steps=steps, train_time_s=t,
        s_per_it=t / steps if steps else None, peak_mem_mib=mem.mib, mem_kind=mem.kind,
        params=m["params"], final=m["final"].get(metric), best=m["best"].get(metric),
        time_to_target={lib.tkey(x): lib.first_time(hist, metric, mode_, x) for x in spec.targets},
        at_budget={lib.tkey(x): lib.value_at(hist, metric, x) for x in args.time_points},
        warmup_s=m.get("warmup_s"), wall_s=time.perf_counter() - t0, load_average_after=lib.load_average(),
        history=hist)
    print(f"  {problem:17s} {method:11s} {steps:7d} steps  {lib.fmt(row['s_per_it'])} s/it  "
          f"{metric} {lib.fmt(row['final'])} (best {lib.fmt(row['best'])})  "
          f"{lib.fmt(mem.mib, 3)} MiB  [{row['wall_s']:.0f} s]", flush=True)
    return row


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group()
    helps = {"quick": f"CPU-sized, <= 5 min on 2 cores: {', '.join(QUICK_PROBLEMS)} (the default without a GPU)",
             "full": "GPU, paper-like settings and budgets (the default with a GPU)",
             "smoke": "32² problems, 4 steps: seconds"}
    for m in MODES:
        g.add_argument(f"--{m}", dest="mode", action="store_const", const=m, help=helps[m])
    p.add_argument("--problems", help="comma list of " + ",".join(PROBLEMS) + " (default: the mode's; all but in --quick)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ",".join(METHODS))
    p.add_argument("--budget", type=float, help="wall seconds for ∂∞-Grid (and the linear grid)")
    p.add_argument("--linear-budget", type=float, help="wall seconds for the linear grid")
    p.add_argument("--siren-budget", type=float, help="wall seconds for SIREN")
    p.add_argument("--ref-steps", type=int, help="steps of the reference-style run")
    p.add_argument("--val-every", type=int, help="steps between validations (grids)")
    p.add_argument("--siren-val-every", type=int, help="steps between validations (SIREN)")
    p.add_argument("--time-points", default=",".join(map(str, TIME_POINTS)), help="training seconds")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Hydra override for every run")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed tiny run per problem")
    p.add_argument("--out", type=Path, help="results folder (default bench_results/<date-time>)")
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.mode = args.mode or ("full" if args.device == "cuda" else "quick")
    if args.problems is None:
        args.problems = ",".join(MODES[args.mode].problems or PROBLEMS)
    for name, known in (("problems", PROBLEMS), ("methods", METHODS)):
        setattr(args, name, [x.strip() for x in getattr(args, name).split(",") if x.strip()])
        if bad := [x for x in getattr(args, name) if x not in known]:
            p.error(f"--{name}: unknown {bad}; choose from {list(known)}")
    mode = MODES[args.mode]
    b = dict(mode.budgets)
    if args.budget is not None:
        b["dinf"] = b["linear_grid"] = args.budget
    b["linear_grid"] = args.linear_budget if args.linear_budget is not None else b["linear_grid"]
    b["siren"] = args.siren_budget if args.siren_budget is not None else b["siren"]
    args.budgets = b
    args.ref_steps = args.ref_steps or mode.ref_steps
    args.val_every = args.val_every or mode.val_every["grids"]
    args.siren_val_every = args.siren_val_every or mode.val_every["siren"]
    args.time_points = [float(x) for x in args.time_points.split(",")]
    return args


def warm_up(problems: Sequence[str], args: argparse.Namespace, out: Path) -> None:
    """A tiny ∂∞-Grid run per problem, untimed: numba compiles (or loads) its kernels, CUDA and
    the imports start, so none of it lands in the first measured budget."""
    smoke = MODES["smoke"]
    for problem in problems:
        o = run_overrides(problem, "dinf", smoke, args) + ["trainer.max_steps=2", "trainer.val_check_interval=2"]
        train(compose_cfg(o), output_dir=str(out / "warmup" / problem))


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the suite; returns what ``bench.json`` holds (with inf where the file has "inf")."""
    args = parse(argv)
    with lib.settings(args.threads or MODES[args.mode].threads):
        return suite(args, [sys.argv[0]] + list(argv if argv is not None else sys.argv[1:]))


def suite(args: argparse.Namespace, command: List[str]) -> Dict[str, Any]:
    out = args.out or ROOT / "bench_results" / datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    mode = MODES[args.mode]
    result: Dict[str, Any] = {
        "mode": args.mode, "machine": lib.machine_info(args.device, command),
        "budgets": args.budgets, "ref_steps": args.ref_steps, "time_points": args.time_points,
        "val_every": {"grids": args.val_every, "siren": args.siren_val_every}, "extra_overrides": args.set,
        "problems": {}, "rows": [], "ratios": {},
    }
    print(f"mode {args.mode}, device {args.device} ({result['machine']['device_name']}), "
          f"{torch.get_num_threads()} threads, budgets {args.budgets}, out {out}", flush=True)
    load = result["machine"]["load_average_at_start"]
    if args.device == "cpu" and load is not None and load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load}: another job is running; CPU timings can be inflated "
              "many-fold (threads wait for each other; --threads 1 is more robust)", flush=True)
    t0 = time.perf_counter()
    if args.mode != "smoke" and not args.no_warmup:
        warm_up(args.problems, args, out)
    for problem in args.problems:
        rows = []
        for method in args.methods:
            rows.append(run_one(problem, method, mode, args, out))
            result["rows"].append(rows[-1])
            ok = next((r for r in rows if r.get("status") == "ok"), None)
            if ok:
                result["problems"][problem] = {"metric": ok["metric"], "mode": ok["mode"],
                                               "targets": PROBLEMS[problem].targets}
            result["ratios"][problem] = lib.ratios(rows)
            save(result, out, time.perf_counter() - t0)  # partial results survive a killed suite
    md = save(result, out, time.perf_counter() - t0)
    print("\n" + md + f"\nwrote {out / 'bench.json'} and {out / 'bench.md'} "
          f"({result['total_s']:.0f} s in all)", flush=True)
    return result


def save(result: Dict[str, Any], out: Path, total_s: float) -> str:
    result["total_s"] = total_s
    md = lib.report(result)
    (out / "bench.json").write_text(json.dumps(lib.jsonable(result), indent=1))
    (out / "bench.md").write_text(md)
    return md


if __name__ == "__main__":
    sys.exit(1 if any(r.get("status") != "ok" for r in main()["rows"]) else 0)  # a failed run shows
