"""The benchmark suite: curve helpers on hand-made histories, and a --smoke run end to end."""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from experiments import bench
from experiments import bench_lib as lib

os.environ.setdefault("WANDB_MODE", "disabled")
ROOT = Path(__file__).resolve().parents[1]


def hist(metric: str, points):
    return [{"step": 10 * i, "train_time_s": t, metric: v} for i, (t, v) in enumerate(points)]


# A SIREN-like curve: slow, best 27 dB at 100 s; a ∂∞-Grid-like one: past 27 dB at 2 s.
SLOW = hist("psnr", [(0, 10.0), (50, 25.0), (100, 27.0), (120, 26.5)])
FAST = hist("psnr", [(0, 11.0), (1, 20.0), (2, 28.0), (3, 31.0), (8, 33.0)])


def test_first_time_and_best_point():
    assert lib.first_time(FAST, "psnr", "max", 28.0) == 2  # "at least as good" includes equal
    assert lib.first_time(FAST, "psnr", "max", 40.0) is None
    assert lib.best_point(SLOW, "psnr", "max") == {"value": 27.0, "train_time_s": 100, "step": 20}
    err = hist("rel", [(0, 1.0), (5, 0.2), (9, 0.05), (12, 0.07)])
    assert lib.first_time(err, "rel", "min", 0.1) == 9
    assert lib.best_point(err, "rel", "min")["value"] == 0.05


def test_value_at_budget():
    assert lib.value_at(FAST, "psnr", 2.5) == 28.0   # last validation at or before t
    assert lib.value_at(FAST, "psnr", 3) == 31.0     # at t exactly
    assert lib.value_at(FAST, "psnr", 0) == 11.0
    assert lib.value_at(FAST, "psnr", 10) is None    # the run stopped at 8 s: unknown, not final
    nan_tail = FAST + [{"step": 99, "train_time_s": 20, "psnr": math.nan}]
    assert lib.value_at(nan_tail, "psnr", 10) is None  # only finite points count


def test_reach_ratio():
    r = lib.reach_ratio(FAST, SLOW, "psnr", "max")
    assert r["value"] == pytest.approx(50.0)  # SIREN's best at 100 s, ∂∞-Grid there at 2 s
    assert (r["target"], r["slow_s"], r["fast_s"]) == (27.0, 100, 2)
    never = hist("psnr", [(0, 10.0), (4, 20.0)])
    r = lib.reach_ratio(never, SLOW, "psnr", "max")
    assert r["value"] is None and r["at_most"] == pytest.approx(100 / 4)
    assert lib.reach_ratio(FAST, hist("psnr", [(0, 10.5)]), "psnr", "max")["value"] == 1.0  # both at t=0
    assert math.isinf(lib.reach_ratio(hist("psnr", [(0, 30.0)]), SLOW, "psnr", "max")["value"])


def test_lsq_ratio():
    r = lib.lsq_ratio(FAST, 31.0, 1.5, "psnr", "max")  # Adam gets to 31 dB at 3 s
    assert r["value"] == pytest.approx(2.0) and r["adam_s"] == 3
    r = lib.lsq_ratio(FAST, 34.0, 2.0, "psnr", "max")  # Adam never does within its 8 s
    assert r["value"] is None and r["at_least"] == pytest.approx(4.0)
    assert lib.lsq_ratio(FAST, math.nan, 2.0, "psnr", "max")["value"] is None


def test_formatting_and_json():
    assert bench.max_time(20) == "00:00:00:20"
    assert bench.max_time(3725) == "00:01:02:05"
    assert bench.max_time(90000) == "01:01:00:00"
    assert lib.fmt_ratio({"value": 49.96}) == "50×"
    assert lib.fmt_ratio({"value": None, "at_least": 4.0}) == "> 4×"
    assert lib.jsonable({"a": math.inf, "b": math.nan, "c": [1.5]}) == {"a": "inf", "b": None, "c": [1.5]}


def test_overrides_and_budgets():
    args = bench.parse(["--quick", "--device", "cpu", "--budget", "7", "--siren-budget", "9"])
    assert args.budgets == {"dinf": 7, "linear_grid": 7, "siren": 9}
    o = bench.run_overrides("helmholtz", "dinf-lsq", bench.MODES["quick"], args)
    assert "pde=helmholtz" in o and not any("max_time" in x for x in o)
    o = bench.run_overrides("poisson_laplacian", "siren", bench.MODES["quick"], args)
    assert "trainer.max_time=00:00:00:09" in o and "trainer.val_check_interval=10" in o
    cfg = bench.compose_cfg(o + ["grid.levels=3"])  # a later override of a key wins
    assert cfg.grid.levels == 3 and cfg.trainer.max_time == "00:00:00:09"
    with pytest.raises(SystemExit):
        bench.parse(["--methods", "dinf,nope"])


def test_quick_runs_the_fast_problems_and_full_keeps_all():
    quick = bench.parse(["--quick", "--device", "cpu"])
    assert quick.problems == bench.QUICK_PROBLEMS
    assert not {"burgers1d", "ns2d_c", "cloth"} & set(quick.problems)  # their solves take minutes
    assert bench.parse(["--full", "--device", "cpu"]).problems == list(bench.PROBLEMS)
    assert bench.parse(["--device", "cpu"]).mode == "quick"  # the CPU default
    assert bench.parse(["--quick", "--device", "cpu", "--problems", "cloth,ns2d_c"]).problems == ["cloth", "ns2d_c"]
    # ≤ 5 minutes on 2 cores: the trained budgets leave room for validation, the reference-style
    # steps, the solves and the warm-up runs (measured: see the docstring of bench.py).
    q = bench.MODES["quick"]
    assert len(quick.problems) * sum(q.budgets.values()) <= 120 and q.ref_steps <= 5


@pytest.mark.parametrize("mode", list(bench.MODES))
def test_every_run_composes(mode):
    """The full mode runs only on a GPU: at least its configs must compose here."""
    args = bench.parse([f"--{mode}", "--device", "cpu"])
    for problem in bench.PROBLEMS:
        for method in bench.METHODS:
            o = bench.run_overrides(problem, method, bench.MODES[mode], args)
            assert len({bench.override_key(x) for x in o}) == len(o)  # train.py takes the command as is
            cfg = bench.compose_cfg(o)
            assert cfg.trainer.accelerator == "cpu" and "logger" not in cfg
            if method == "siren" and mode == "full" and problem == "helmholtz":
                assert (cfg.model.hidden, cfg.model.layers) == (512, 4)  # the paper's
            solver = cfg.solver._target_.rsplit(".", 1)[-1]
            if method == "dinf-lsq":  # least squares, Gauss–Newton on the nonlinear problems, Newton on the cloth
                assert solver in ("Auto", "LeastSquares", "Newton"), solver
            else:
                assert solver == "GradientSolver", (method, solver)
            if problem == "poisson_laplacian":
                assert cfg.grid.levels == 4


@pytest.mark.slow  # every method of the suite through Lightning, ~13 s; .ci/run runs it with -m slow
def test_smoke_suite(tmp_path):
    # ∂∞-Grid last: pytest imported torch before bench.py could set OMP_WAIT_POLICY=PASSIVE, and
    # numba's spinning OpenMP workers would slow the PyTorch methods after it on a busy machine.
    methods = ["dinf-ref", "siren", "linear_grid", "dinf-lsq", "dinf"]
    result = bench.main(["--smoke", "--device", "cpu", "--problems", "poisson_gradient",
                         "--methods", ",".join(methods), "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "bench.json").read_text())
    md = (tmp_path / "bench.md").read_text()
    assert saved["machine"]["torch"] and saved["machine"]["command"] and saved["mode"] == "smoke"
    rows = {r["method"]: r for r in saved["rows"]}
    assert list(rows) == methods and all(r["status"] == "ok" for r in rows.values())
    for r in rows.values():
        for key in ("s_per_it", "peak_mem_mib", "params", "final", "best", "steps"):
            assert isinstance(r[key], (int, float)), (r["method"], key)
        assert set(r["time_to_target"]) == {"25", "30", "32"}
        assert set(r["at_budget"]) == {"5", "10", "30", "60", "300", "600"}
        assert (Path(r["run_dir"]) / "metrics.json").exists()
    assert rows["dinf"]["steps"] == 4 and rows["dinf-ref"]["steps"] == 3 and rows["dinf-lsq"]["steps"] == 1
    ratios = saved["ratios"]["poisson_gradient"]
    for other in ("dinf-ref", "siren", "linear_grid"):
        assert ratios["speed"][other]["value"] > 0
    for other in ("siren", "linear_grid"):  # ∂∞-Grid passes both within its 4 steps
        assert float(ratios["reach"][other]["value"]) > 0
    lsq = ratios["lsq"]  # the solve's 31 dB is out of reach of 4 Adam steps: a bound
    assert (lsq.get("value") or lsq.get("at_least")) > 0
    assert result["ratios"]["poisson_gradient"]["speed"].keys() == ratios["speed"].keys()
    for text in ["## poisson_gradient", "| dinf-ref |", "| dinf-lsq |", "→ ≥ 30 (s)",
                 "Seconds per iteration relative to ∂∞-Grid", "SIREN's best psnr", "Least squares:"]:
        assert text in md, text


def test_gpu_script_without_gpu():
    script = ROOT / "experiments" / "gpu_bench.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHON=str(ROOT / ".venv" / "bin" / "python"))
    if not Path(env["PYTHON"]).exists():
        env["PYTHON"] = "python3"
    p = subprocess.run(["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "no CUDA GPU" in p.stderr
