"""The dimension table: Poisson in d = 2…6 axes, the factored grid against PINNacle's MLP and the full grid.

The problem is PNd's in d axes: −Δu = (π²/4)·Σ sin(π xᵢ/2) on [0, 1]^d, u = Σ sin(π xᵢ/2) on the
boundary (soft, weight 100), exact u = Σ sin(π xᵢ/2); 16 384 points a batch (half on the faces), the
L2RE on ≈ 32 768 points (a 181² or 32³ grid, Sobol points from four axes on). Methods:

* ``dinf_cp``: the factored ∂∞-Grid (``model=dinf_cp``) with its solver (``solver=auto`` picks
  Levenberg–Marquardt on the factors), the settings in ``CP`` below; a step is one LM step.
* ``mlp``: PINNacle's MLP (``model=pinnacle_mlp``, 5 × 100 tanh) with Adam at 1e-3, at most
  ``--mlp-steps`` steps or ``--mlp-time`` of training, whichever comes first.
* ``dinf``: the full tensor-product ∂∞-Grid (``model=dinf``, the settings in ``FULL``) with its
  solver (least squares), where it fits; ``dinf_wide`` the same with the wide kernel (ε = 0.7,
  ρ = 5: 10^d neighbours a point).
* ``dinf_it`` and ``dinf_cp_it``: the cost of one Adam iteration of the two grids (draw the batch →
  closed-form jet → the problem's loss → backward → Adam step) at the problem's batch, median of
  ``--repeats`` after one warm-up; ``dinf_it_r4``: the full grid at PNd's own 4 cells, one level.
  These measure past the full grid's guard (``dinf_grid.MAX_NEIGHBOURS``).

Each case runs in its own process: its peak memory is that process's peak resident set
(``ru_maxrss``), and the parent stops a case whose resident set passes ``--max-gb`` or whose time
passes ``--max-s`` (the table says so). A configuration refused before it starts (a one-line
``ConfigError``) is listed with its reason.

Reproduce (from the repository root)::

    python experiments/dimension_table.py                          # every method, d = 2…6
    python experiments/dimension_table.py --methods dinf_cp --dims 5
    python experiments/dimension_table.py --json out.json          # the rows as JSON too
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, uninstalled

NAMES = ["x", "y", "z", "v", "w", "q"]  # the axes' names (PNd's five, then one more)

# The factored grid's settings (the same in every d): rank 8, 8 cells a factor, ρ = 6, ε = 0.7,
# 8 192 points drawn once, at most 60 LM steps.
CP = ["model=dinf_cp", "model.rank=8", "model.resolution=8", "model.init=ones", "solver.cp_lm.points=8192",
      "solver.cp_lm.max_solves=60", "trainer.max_steps=60", "trainer.max_time=00:00:05:00"]
# The full grid's: 8 cells, 2 levels, ρ = 3, ε = 1 (the paper's kernel), 2 features, least squares.
FULL = ["model=dinf", "grid.resolution=8", "grid.levels=2", "grid.features=2", "kernel.rho=3", "kernel.eps=1.0"]


def box_poisson(d: int, name: str, s: str, source: str, exact: str, batch: int = 16384) -> Dict[str, Any]:
    """The pde config of Σ u_ii + source = 0 on [0, 1]^d (``d`` ≤ 6), u = exact on the faces (soft,
    weight 100) and as the reference; ``s`` is a helper function of the axes the two may use."""
    names = NAMES[:d]
    evaluation = {"points": 32768} if d > 3 else {"resolution": {2: 181, 3: 32}.get(d, 128)}
    return {
        "_target_": "dinf.pdes.EquationProblem", "name": name, "in_dim": d, "out_dim": 1,
        "unknowns": ["u"], "domain": {"space": {n: [0, 1] for n in names}}, "functions": {"s": s},
        "residuals": {"poisson": " + ".join(f"u_{n}{n}" for n in names) + f" + {source}"},
        "conditions": {"faces": {"type": "dirichlet", "piece": "box", "value": exact, "weight": 100.0, "points": 8192}},
        "reference": {"exact": {"u": exact}}, "evaluation": evaluation, "batch_size": batch, "resolution": 8,
    }


def poisson_nd(d: int, batch: int = 16384) -> Dict[str, Any]:
    """The pde config of PNd in ``d`` axes (``d`` ≤ 6)."""
    s = " + ".join(f"sin(pi*{n}/2)" for n in NAMES[:d])
    return box_poisson(d, f"poisson{d}d", s, "pi^2/4*s", "s", batch)


def compose(d: int, overrides: List[str], batch: int = 16384):
    """The run config: ``overrides`` on the d-axis Poisson problem, no logger, no checkpoints."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["pde=pnd", "~logger", "checkpoint.enabled=false",
                                                 "checkpoint.registry=null", "trainer.enable_progress_bar=false"]
                            + overrides)
    with open_dict(cfg):
        cfg.pde = OmegaConf.create(poisson_nd(d, batch))
    return cfg


# --- one case, in a child process ----------------------------------------------------------------
def run_train(d: int, overrides: List[str]) -> Dict[str, Any]:
    """A whole run (``dinf.app.run.train``): the solver's own loop, validation and metrics."""
    from dinf.app.run import train

    cfg = compose(d, overrides)
    with tempfile.TemporaryDirectory() as out:
        m = train(cfg, output_dir=out)
    steps = max(int(m["steps"]), 1)
    return {"l2re": m["l2re"], "train_s": m["train_time_s"], "steps": m["steps"], "s_per_step": m["train_time_s"] / steps,
            "params": m["params"], "solver": m["solver"], "best_l2re": m["best"].get("l2re")}


def run_iterations(d: int, overrides: List[str], repeats: int) -> Dict[str, Any]:
    """Seconds per Adam iteration at the problem's batch (median of ``repeats`` after a warm-up)."""
    import statistics

    import torch

    from dinf.app.run import build
    from dinf.fields import dinf_grid

    dinf_grid.MAX_NEIGHBOURS = float("inf")  # measure what the guard would refuse
    keep = [o for o in overrides if not o.startswith(("solver.", "trainer."))]  # the model's settings only
    cfg = compose(d, keep + ["solver=adam"])
    problem, field, _ = build(cfg)
    opt = torch.optim.Adam(field.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)

    def step() -> float:
        batch = problem.sample(problem.batch_size, gen)
        loss = problem.loss(field.jet(batch.x, problem.jet_order), batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"s_per_it": statistics.median(times), "params": sum(p.numel() for p in field.parameters())}


def child(args: argparse.Namespace) -> None:
    import torch

    from dinf.errors import ConfigError

    torch.set_num_threads(args.threads or torch.get_num_threads())
    method, d = args.case[0], int(args.case[1])
    try:
        if method == "dinf_cp":
            out = run_train(d, CP)
        elif method == "mlp":
            out = run_train(d, ["model=pinnacle_mlp", "solver=adam", f"trainer.max_steps={args.mlp_steps}",
                                f"trainer.max_time={args.mlp_time}", "trainer.val_check_interval=250"])
        elif method == "dinf":
            out = run_train(d, FULL + ["solver=auto"])
        elif method == "dinf_wide":  # the wide, less truncated kernel of the pde files' best blocks
            out = run_train(d, FULL + ["kernel.eps=0.7", "kernel.rho=5", "solver=auto"])
        elif method == "dinf_it":
            out = run_iterations(d, FULL, args.repeats)
        elif method == "dinf_it_r4":  # PNd's own resolution: 4 cells, one level
            out = run_iterations(d, FULL + ["grid.resolution=4", "grid.levels=1"], args.repeats)
        elif method == "dinf_cp_it":
            out = run_iterations(d, CP, args.repeats)
        else:
            raise SystemExit(f"unknown method {method}")
        out["status"] = "ok"
    except ConfigError as e:
        out = {"status": "refused", "reason": str(e)}
    out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    Path(args.result).write_text(json.dumps(out))


# --- the parent: one process per case, with limits --------------------------------------------------
def rss_gb(pid: int) -> float:
    """Resident set of ``pid`` and its children's sizes are not summed: the case is one process."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
    except (OSError, ValueError):
        return 0.0


def run_case(method: str, d: int, args: argparse.Namespace) -> Dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = f.name
    cmd = [sys.executable, __file__, "--case", method, str(d), "--result", result, "--repeats", str(args.repeats),
           "--mlp-steps", str(args.mlp_steps), "--mlp-time", args.mlp_time]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ)
    if args.threads:  # torch's, OpenMP's and numba's (the full grid's fused kernel in 2 and 3 axes)
        env.update(OMP_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    peak, status = 0.0, None
    while proc.poll() is None:
        peak = max(peak, rss_gb(proc.pid))
        if peak > args.max_gb:
            status = f"stopped: resident set > {args.max_gb:g} GB"
        elif time.perf_counter() - t0 > args.max_s:
            status = f"stopped: > {args.max_s:g} s"
        if status:
            proc.kill()
            proc.wait()
            break
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    row: Dict[str, Any] = {"method": method, "d": d, "wall_s": wall}
    if status:
        row.update(status=status, peak_gb=peak)
    elif proc.returncode != 0:
        err = proc.stderr.read() if proc.stderr else ""
        row.update(status=f"failed (exit {proc.returncode})", error=err.strip().splitlines()[-1:] or [""], peak_gb=peak)
    else:
        row.update(json.loads(Path(result).read_text()))
    os.unlink(result)
    return row


def fmt(row: Dict[str, Any]) -> str:
    if row["status"] != "ok":
        why = row.get("reason") or " ".join([row["status"], *row.get("error", [])])
        return f"{why} (peak {row.get('peak_gb', 0):.1f} GB)" if row["status"].startswith("stopped") else why
    if "s_per_it" in row:
        return f"{row['s_per_it']:.3g} s/it, {row['peak_gb']:.2f} GB, {row['params']:,} parameters"
    return (f"L2RE {row['l2re']:.2e} in {row['train_s']:.0f} s ({row['steps']} steps, {row['s_per_step']:.3g} s/step), "
            f"{row['peak_gb']:.2f} GB, {row['params']:,} parameters")


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    p.add_argument("--methods", nargs="+", default=["dinf_cp", "dinf_cp_it", "dinf_it", "dinf_it_r4", "dinf", "mlp"])
    p.add_argument("--mlp-steps", type=int, default=2000, help="Adam steps of the MLP at most")
    p.add_argument("--mlp-time", default="00:00:03:00", help="the MLP's training-time cap (DD:HH:MM:SS)")
    p.add_argument("--repeats", type=int, default=3, help="timed Adam iterations (the *_it methods)")
    p.add_argument("--max-gb", type=float, default=8.0, help="stop a case whose resident set passes this")
    p.add_argument("--max-s", type=float, default=600.0, help="stop a case that runs longer")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    p.add_argument("--case", nargs=2, default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        return child(args)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average at start {load}, {os.cpu_count()} CPUs", flush=True)
    rows = []
    for method in args.methods:
        for d in args.dims:
            row = run_case(method, d, args)
            rows.append(row)
            print(f"{method:11s} d={d}: {fmt(row)}  [{row['wall_s']:.0f} s wall]", flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
