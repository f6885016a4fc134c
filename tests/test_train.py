"""Short end-to-end runs: training improves the solution and writes its results."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dinf.app.run import train
from dinf.app.module import NonFiniteLossError
from tests.helpers import TINY, compose_cfg

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, overrides):
    """A run of Adam unless ``overrides`` name the solver (the tests here are about training)."""
    named = any(o.startswith("solver=") for o in overrides)
    cfg = compose_cfg(overrides if named else ["solver=adam", *overrides])
    return train(cfg, output_dir=str(tmp_path)), tmp_path


def test_training_improves_psnr_and_writes_metrics(tmp_path):
    metrics, out = _run(tmp_path, ["trainer.max_steps=60", "trainer.val_check_interval=20"])
    start = metrics["history"][0]["psnr"]
    assert metrics["psnr"] > start + 5.0, (start, metrics["psnr"])
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("psnr", "ssim", "train_time_s", "steps", "params", "time_to_target", "config"):
        assert key in saved
    assert saved["steps"] == 60
    assert saved["params"] == metrics["params"] > 0
    assert set(saved["time_to_target"]) == {"psnr>=25", "psnr>=30"}
    assert saved["config"]["model"]["_target_"].endswith("DInfGrid")
    assert (out / "poisson.png").stat().st_size > 1000


def test_time_to_target_is_first_validation_past_threshold(tmp_path):
    metrics, _ = _run(tmp_path, ["trainer.max_steps=40", "trainer.val_check_interval=10", "pde.targets.psnr=[1,99]"])
    hit = metrics["time_to_target"]["psnr>=1"]
    assert hit is not None and hit["step"] == 0  # any image beats 1 dB at the start
    assert metrics["time_to_target"]["psnr>=99"] is None


def test_run_shorter_than_the_validation_interval_still_validates(tmp_path):
    metrics, _ = _run(tmp_path, ["trainer.max_steps=3", "trainer.val_check_interval=25"])
    assert [h["step"] for h in metrics["history"]] == [0, 3]


def test_laplacian_linear_grid_gets_no_signal_but_dinf_does(tmp_path):
    # All 32² pixels every step, so the loss changes only if the field does.
    common = ["pde=poisson_laplacian", "trainer.max_steps=40", "trainer.val_check_interval=20"]
    lin, _ = _run(tmp_path / "lin", common + ["model=linear_grid"])
    dinf, _ = _run(tmp_path / "dinf", common + ["model=dinf"])
    # The linear grid's Laplacian vanishes inside cells: zero gradient, no change at all.
    assert lin["train_loss"]["last"] == pytest.approx(lin["train_loss"]["first"], rel=1e-5)
    assert lin["psnr"] == pytest.approx(lin["history"][0]["psnr"], abs=1e-6)
    # ∂∞-Grid's Laplacian carries the signal: the residual falls and the image changes.
    assert dinf["train_loss"]["last"] < 0.5 * dinf["train_loss"]["first"]
    assert dinf["psnr"] != pytest.approx(dinf["history"][0]["psnr"], abs=1e-3)


@pytest.mark.parametrize("model", ["siren", "mlp", "linear_grid"])
def test_baselines_train(tmp_path, model):
    metrics, _ = _run(tmp_path, [f"model={model}", "model.hidden=32" if model != "linear_grid" else "seed=1"])
    assert metrics["steps"] == 4 and metrics["psnr"] == metrics["psnr"]


def test_lbfgs_runs(tmp_path):
    metrics, _ = _run(tmp_path, ["solver=lbfgs", "solver.optim.max_iter=3"])
    assert metrics["psnr"] > metrics["history"][0]["psnr"]


def test_non_finite_loss_stops_the_run(tmp_path):
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        _run(tmp_path, ["model.lr=1e30", "trainer.max_steps=20"])


def _cli(tmp_path, overrides):
    cmd = [sys.executable, "train.py", *TINY, f"hydra.run.dir={tmp_path}", *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cli_run_writes_results(tmp_path):
    proc = _cli(tmp_path, ["model.decoder=mlp", "kernel=inverse_quadratic"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["config"]["model"]["decoder"] == "mlp" and saved["steps"] == 4


def test_cli_bad_value_is_one_clear_line(tmp_path):
    proc = _cli(tmp_path, ["model.kernel=cubic"])
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model.kernel:") and "gaussian" in last, proc.stderr[-2000:]
    saved = json.loads((tmp_path / "metrics.json").read_text())  # a sweep's report says why
    assert saved["status"] == "failed" and saved["error"].startswith("ConfigError: model.kernel:")


def test_best_is_every_metric_at_the_best_primary_validation():
    from dinf.app.run import best_entry

    modes = {"energy": "min", "energy_membrane": "min", "energy_gravity": "min"}
    history = [
        {"step": 0, "train_time_s": 0.0, "energy": 0.7, "energy_membrane": 0.0, "energy_gravity": 0.7},
        {"step": 5, "train_time_s": 1.0, "energy": -2.6, "energy_membrane": 1.2, "energy_gravity": -3.8},
        {"step": 9, "train_time_s": 2.0, "energy": -2.5, "energy_membrane": 1.4, "energy_gravity": -3.9},
    ]
    # The parts of the best total, not each part's own minimum (membrane 0.0, gravity -3.9).
    assert best_entry(history, modes) == {"energy": -2.6, "energy_membrane": 1.2, "energy_gravity": -3.8, "step": 5}
    missing = best_entry(history, {"psnr": "max"})  # a metric never recorded: NaN, no step
    assert list(missing) == ["psnr"] and missing["psnr"] != missing["psnr"]


def test_cloth_metrics_best_holds_the_parts_of_the_best_total(tmp_path):
    metrics, _ = _run(tmp_path, ["pde=cloth", "trainer.max_steps=6", "trainer.val_check_interval=2"])
    best = metrics["best"]
    at = next(h for h in metrics["history"] if h["step"] == best["step"])
    assert best["energy"] == min(h["energy"] for h in metrics["history"])
    for part in ("energy_membrane", "energy_bending", "energy_gravity"):
        assert best[part] == at[part]
