"""The offline sweep report: reading run folders, tables, speed-up, files and the CLI."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dinf.report import load_runs, speed_up, tables, write_report

ROOT = Path(__file__).resolve().parents[1]
LONG = "NonFiniteLossError: non-finite loss at step 3 " + "x" * 200


def _hydra(run: Path, choices: dict, overrides: list) -> None:
    (run / ".hydra").mkdir(parents=True)
    hydra = {"hydra": {"runtime": {"choices": {**choices, "hydra/launcher": "basic"}}}}
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")


def _history(metric: str, points: list) -> list:
    return [{"step": 10 * i, "train_time_s": t, metric: v} for i, (t, v) in enumerate(points)]


def _metrics(run: Path, **data) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.json").write_text(json.dumps(data))


POISSON = {"pde": "poisson", "grid": "default", "kernel": "gaussian", "solver": "adam"}


@pytest.fixture
def sweep(tmp_path) -> Path:
    s = tmp_path / "sweep"
    # 0: ∂∞-Grid, old-style metrics.json (no status/choices/modes): those come from .hydra/ and the names.
    _hydra(s / "0", {**POISSON, "model": "dinf"}, ["model=dinf", "lr=0.01"])
    hist = _history("psnr", [(0.0, 10.0), (1.0, 20.0), (2.0, 30.0), (4.0, 32.0)])
    for h in hist:
        h["ssim"] = h["psnr"] / 40
    _metrics(s / "0", psnr=32.0, ssim=0.8, final={"psnr": 32.0, "ssim": 0.8}, best={"psnr": 32.0, "ssim": 0.8},
             train_time_s=4.0, steps=30, params=1000, pde="PoissonImage", model="DInfGrid", history=hist,
             time_to_target={"psnr>=25": {"seconds": 2.0, "step": 20}, "psnr>=30": {"seconds": 2.0, "step": 20}})
    # 1: SIREN, new-style (choices, overrides, modes in metrics.json); slower: its best 25 dB at 8 s.
    _metrics(s / "1", status="completed", choices={**POISSON, "model": "siren"}, overrides=["model=siren", "lr=0.001"],
             metric_modes={"psnr": "max", "ssim": "max"}, final={"psnr": 24.0, "ssim": 0.6},
             best={"psnr": 25.0, "ssim": 0.6}, train_time_s=10.0, steps=50, iterations_per_s=5.0, params=2000,
             pde="PoissonImage", model="Siren", attempts=2,
             history=_history("psnr", [(0.0, 10.0), (2.0, 15.0), (4.0, 20.0), (8.0, 25.0), (10.0, 24.0)]),
             time_to_target={"psnr>=25": {"seconds": 8.0, "step": 30}, "psnr>=30": None})
    # 2: failed, no final/history.
    _metrics(s / "2", status="failed", error=LONG, choices={**POISSON, "model": "linear_grid"},
             overrides=["model=linear_grid", "lr=0.01"], metric_modes={"psnr": "max", "ssim": "max"},
             pde="PoissonImage", model="LinearGrid")
    # 3: killed: .hydra/ and a log, no metrics.json.
    _hydra(s / "3", {**POISSON, "model": "mlp"}, ["model=mlp", "lr=0.01"])
    (s / "3" / "train.log").write_text("[2026-11-26 10:00:00,000][dinf.run][INFO] - starting\n"
                                       "[2026-11-26 10:00:01,000][dinf.solver][INFO] - step 40\n\n")
    # 5: died before metrics.json; run_state.json says it failed.
    _hydra(s / "5", {**POISSON, "model": "siren"}, ["model=siren", "lr=0.01"])
    (s / "5" / "train.log").write_text("[2026-11-26 10:00:00,000][dinf.run][ERROR] - CUDA out of memory\n")
    (s / "5" / "run_state.json").write_text(json.dumps({"status": "failed", "attempts": 1}))
    # 4: continued in another folder.
    _hydra(s / "4", {**POISSON, "model": "dinf"}, ["model=dinf", "lr=0.01"])
    (s / "4" / "resumed.json").write_text(json.dumps({"continued_in": str((s / "0").resolve())}))
    # A nested sweep on a second problem (errors: lower is better); non-finite values as written by run.py.
    hz = {"pde": "helmholtz", "grid": "default", "kernel": "gaussian", "solver": "adam"}
    _hydra(s / "more" / "0", {**hz, "model": "dinf"}, ["pde=helmholtz", "model=dinf"])
    _metrics(s / "more" / "0", final={"rel_l2": 0.05, "mae_real": 0.01}, train_time_s=3.0, steps=20, params=500,
             pde="Helmholtz", model="DInfGrid",
             history=[{"step": 0, "train_time_s": 0.0, "rel_l2": None, "mae_real": "inf"},
                      {"step": 10, "train_time_s": 1.5, "rel_l2": 0.2, "mae_real": 0.1},
                      {"step": 20, "train_time_s": 3.0, "rel_l2": 0.05, "mae_real": 0.01}])
    _hydra(s / "more" / "1", {**hz, "model": "siren"}, ["pde=helmholtz", "model=siren", "~logger=null"])
    _metrics(s / "more" / "1", final={"rel_l2": 0.5, "mae_real": 0.2}, train_time_s=3.0, steps=20, params=500,
             pde="Helmholtz", model="Siren",
             history=[{"step": 0, "train_time_s": 0.0, "rel_l2": 1.0, "mae_real": 1.0},
                      {"step": 20, "train_time_s": 3.0, "rel_l2": 0.5, "mae_real": 0.2}])
    # Not runs: W&B's and checkpoint folders are not searched.
    _metrics(s / "0" / "wandb" / "x", psnr=1.0)
    _metrics(s / "more" / "checkpoints", psnr=1.0)
    return s


def test_runs_load_with_status_problem_and_label(sweep):
    runs = {r.name: r for r in load_runs(sweep)}
    assert list(runs) == ["0", "1", "2", "3", "4", "5", "more/0", "more/1"]
    assert {n: r.status for n, r in runs.items()} == {
        "0": "completed", "1": "completed", "2": "failed", "3": "incomplete", "4": "continued", "5": "failed",
        "more/0": "completed", "more/1": "completed"}
    assert {r.problem for r in runs.values()} == {"poisson", "helmholtz"}
    assert runs["0"].label == "dinf lr=0.01" and runs["1"].label == "siren lr=0.001"
    assert runs["2"].label == "linear_grid lr=0.01" and runs["3"].label == "mlp lr=0.01"
    assert runs["more/0"].label == "dinf" and runs["more/1"].label == "siren ~logger"
    assert runs["0"].metric_modes == {"psnr": "max", "ssim": "max"} and runs["0"].primary == "psnr"
    assert runs["more/1"].metric_modes == {"rel_l2": "min", "mae_real": "min"}
    assert runs["2"].error.startswith("NonFiniteLossError") and len(runs["2"].error) <= 120
    assert "step 40" in runs["3"].error and "[INFO]" not in runs["3"].error
    assert runs["5"].error.endswith("CUDA out of memory") and runs["1"].note == "resumed: 2 attempts"
    assert runs["4"].continued_in == "0"
    assert runs["0"].iterations_per_s == pytest.approx(30 / 4.0) and runs["1"].iterations_per_s == 5.0
    h0 = runs["more/0"].history[0]
    assert math.isnan(h0["rel_l2"]) and h0["mae_real"] == math.inf
    assert runs["more/0"].best["rel_l2"] == 0.05  # computed from the history when absent


def test_speed_up_is_how_much_sooner_the_best_run_got_there(sweep):
    runs = {r.name: r for r in load_runs(sweep)}
    # SIREN's best, 25 dB, first at 8 s; ∂∞-Grid was past 25 dB first at 2 s (30 dB).
    assert speed_up(runs["0"], runs["1"], "psnr", "max") == pytest.approx(4.0)
    assert speed_up(runs["0"], runs["0"], "psnr", "max") == 1.0
    assert speed_up(runs["0"], runs["2"], "psnr", "max") is None  # no history
    # Errors: siren's best 0.5 at 3 s; dinf was below 0.5 first at 1.5 s.
    assert speed_up(runs["more/0"], runs["more/1"], "rel_l2", "min") == pytest.approx(2.0)


def test_tables_sorted_with_values_and_reasons(sweep):
    t = tables(load_runs(sweep))
    assert list(t) == ["poisson", "helmholtz"]
    cols, rows = t["poisson"]
    assert cols[:6] == ["run", "model", "overrides", "status", "final psnr", "best psnr"]
    assert "time to psnr>=30 (s)" in cols and "ssim" in cols
    row = [dict(zip(cols, r)) for r in rows]
    assert [r["run"] for r in row] == ["0", "1", "2", "5", "3"]  # best first, failed, incomplete; "4" skipped
    assert row[0]["best psnr"] == 32.0 and row[1]["best psnr"] == 25.0 and row[1]["final psnr"] == 24.0
    assert row[0]["overrides"] == "lr=0.01" and row[1]["model"] == "siren"
    assert row[0]["speed-up"] == 1.0 and row[1]["speed-up"] == pytest.approx(4.0)
    assert row[0]["time to psnr>=30 (s)"] == 2.0 and row[1]["time to psnr>=30 (s)"] is None
    assert row[1]["it/s"] == 5.0 and row[1]["params"] == 2000 and row[1]["steps"] == 50
    assert row[2]["status"] == "failed" and row[2]["note"].startswith("NonFiniteLossError: non-finite loss")
    assert row[4]["status"] == "incomplete" and "killed or still running" in row[4]["note"]
    assert row[1]["note"] == "resumed: 2 attempts"
    cols, rows = t["helmholtz"]
    assert cols[4:7] == ["final rel_l2", "best rel_l2", "mae_real"]
    assert [r[0] for r in rows] == ["more/0", "more/1"]  # lower error first


def test_report_files(sweep, tmp_path):
    out = tmp_path / "out"
    md = write_report(sweep, out)
    assert md == out / "report.md"
    text = md.read_text()
    assert "](poisson_speed_accuracy.png)" in text and "](helmholtz_speed_accuracy.png)" in text
    assert "| 1 | siren | lr=0.001 | completed | 24 | 25 |" in text and "4×" in text
    assert "`4` was continued in `0`" in text and "speed-up" in text
    for png in ("poisson_speed_accuracy.png", "helmholtz_speed_accuracy.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page and "NonFiniteLossError" in page


def test_cli(sweep, tmp_path):
    cmd = [sys.executable, "experiments/compare.py"]
    done = subprocess.run(cmd + [str(sweep)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "| run | model |" in done.stdout and "| 0 | dinf | lr=0.01 | completed |" in done.stdout
    assert (sweep / "report.html").exists()
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        done = subprocess.run(cmd + [str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "error:" in done.stderr
    assert "no runs found" in done.stderr or "no such folder" in done.stderr


def test_reads_a_real_run(tmp_path):
    from dinf.app.run import train
    from tests.helpers import compose_cfg

    metrics = train(compose_cfg(["solver=adam", "trainer.max_steps=4", "trainer.val_check_interval=2"]),
                    output_dir=str(tmp_path / "0"))
    (run,) = load_runs(tmp_path)
    assert run.status == "completed" and run.problem in ("poisson", "PoissonImage") and run.primary == "psnr"
    assert run.final["psnr"] == pytest.approx(metrics["psnr"]) and run.steps == 4
    assert [h["step"] for h in run.history] == [0, 2, 4] and set(run.time_to_target) == {"psnr>=25", "psnr>=30"}
    cols, rows = tables([run])[run.problem]
    assert rows[0][cols.index("speed-up")] == 1.0 and rows[0][cols.index("params")] == metrics["params"]
    assert write_report(tmp_path).exists()


def test_published_results_sit_beside_the_runs(tmp_path):
    s = tmp_path / "sweep"
    common = {"status": "completed", "metric_modes": {"l2re": "min", "l2re_file": "min"}, "pde": "EquationProblem",
              "published": {"l2re_file": 1.45e-2, "source": "PINNacle"}, "train_time_s": 3.0, "steps": 1,
              "history": _history("l2re", [(0.0, 1.0), (3.0, 2e-3)])}
    _metrics(s / "0", choices={"pde": "burgers1d", "model": "dinf"}, overrides=["model=dinf"],
             final={"l2re": 2e-3, "l2re_file": 1.45e-3}, best={"l2re": 2e-3, "l2re_file": 1.45e-3}, **common)
    _metrics(s / "1", choices={"pde": "burgers1d", "model": "siren"}, overrides=["model=siren"],
             final={"l2re": 5e-2, "l2re_file": 2.9e-2}, best={"l2re": 5e-2, "l2re_file": 2.9e-2}, **common)
    columns, rows = tables(load_runs(s))["burgers1d"]
    pub, ratio = columns.index("published l2re_file"), columns.index("l2re_file vs published")
    assert [r[pub] for r in rows] == [1.45e-2, 1.45e-2]
    assert [r[ratio] for r in rows] == [pytest.approx(10.0), pytest.approx(0.5)]  # 10× below it; 2× above it


def test_classical_rows_give_each_run_its_time_over_the_classical_one(tmp_path):
    s = tmp_path / "sweep"
    common = {"status": "completed", "metric_modes": {"rel_l2": "min"}, "pde": "KirchhoffPlate"}
    # A refinement sequence: each solve timed alone, so the times need not grow.
    fem = [(0.0, 1.0), (0.2, 1e-2), (0.15, 1e-3), (0.4, 1e-5)]
    _metrics(s / "0", choices={"pde": "plate", "model": "fem"}, overrides=["method=fem"], classical=True,
             final={"rel_l2": 1e-5}, best={"rel_l2": 1e-5}, train_time_s=0.75, steps=3,
             history=_history("rel_l2", fem), **common)
    _metrics(s / "1", choices={"pde": "plate", "model": "dinf"}, overrides=["method=dinf_lsq"],
             final={"rel_l2": 2e-3}, best={"rel_l2": 2e-3}, train_time_s=0.6, steps=1,
             history=_history("rel_l2", [(0.0, 1.0), (0.6, 2e-3)]), **common)
    _metrics(s / "2", choices={"pde": "plate", "model": "dinf"}, overrides=["method=dinf_adam"],
             final={"rel_l2": 1e-6}, best={"rel_l2": 1e-6}, train_time_s=30.0, steps=100,
             history=_history("rel_l2", [(0.0, 1.0), (30.0, 1e-6)]), **common)
    runs = load_runs(s)
    columns, rows = tables(runs)["plate"]
    ratio = {r[columns.index("overrides")]: r[columns.index("time ÷ classical")] for r in rows}
    assert ratio["method=dinf_lsq"] == pytest.approx(0.6 / 0.15)  # the 1e-3 solve was the quickest to 2e-3
    assert ratio["method=dinf_adam"] is None  # no classical solve got to 1e-6
    assert ratio["method=fem"] == pytest.approx(1.0)
    report = write_report(s, tmp_path / "out").read_text()
    assert "time ÷ classical" in report and "(refinements)" not in report  # the legend is in the picture
    assert (tmp_path / "out" / "plate_speed_accuracy.png").exists()


def test_an_inverse_runs_parameters_and_their_history_reach_the_report(tmp_path):
    s = tmp_path / "sweep"
    hist = [{"step": 0, "train_time_s": 0.0, "l2re": 1.0, "lam1_error": 1.0, "lam1": 0.0},
            {"step": 1, "train_time_s": 1.0, "l2re": 1e-3, "lam1_error": 4e-5, "lam1": 0.99996, "lam1_std": 2e-5}]
    _metrics(s / "0", choices={"pde": "burgers_inverse", "model": "dinf"}, overrides=[], status="completed",
             pde="EquationProblem", metric_modes={"l2re": "min", "lam1_error": "min"}, train_time_s=1.0, steps=1,
             final={"l2re": 1e-3, "lam1": 0.99996, "lam1_error": 4e-5, "lam1_std": 2e-5}, history=hist)
    columns, rows = tables(load_runs(s))["burgers_inverse"]
    for name, value in (("lam1", 0.99996), ("lam1_std", 2e-5), ("lam1_error", 4e-5)):
        assert rows[0][columns.index(name)] == value
    report = write_report(s).read_text()
    # the table's columns, and the history plot (one panel per metric with a mode: λ₁'s error too)
    assert "lam1_std" in report and "burgers_inverse_speed_accuracy.png" in report
    assert (s / "burgers_inverse_speed_accuracy.png").exists()
