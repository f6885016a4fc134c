"""The Optuna sweeper (``hydra/sweeper=optuna``): search-space specs, a sweep end to end on a tiny
app (defaults first, failed trials told and survived), the tuning experiments' spaces, and the
report's tuned-against-default table."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dinf.errors import ConfigError
from dinf.report import load_runs, write_report
from dinf.report.tuning import tuning_table
from hydra_plugins.dinf_optuna import _space
from tests.helpers import CONF, TINY

ROOT = Path(__file__).resolve().parents[1]


# --- search spaces ---------------------------------------------------------------------------------

def test_specs_give_optuna_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    eps = _space.distribution("kernel.eps", {"low": 0.3, "high": 2.0, "log": True})
    assert isinstance(eps, FloatDistribution) and eps.log and (eps.low, eps.high) == (0.3, 2.0)
    levels = _space.distribution("grid.levels", {"low": 1, "high": 4})
    assert isinstance(levels, IntDistribution) and (levels.low, levels.high, levels.step) == (1, 4, 1)
    res = _space.distribution("grid.resolution", {"choices": [[256, 32], [512, 32], 64]})
    assert isinstance(res, CategoricalDistribution) and res.choices == ("[256,32]", "[512,32]", 64)
    assert _space.distribution("model.activation", ["tanh", "sin"]).choices == ("tanh", "sin")
    nested = _space.space("p", {"kernel": {"eps": {"low": 0.5, "high": 1.0}}, "model.lr": {"low": 0.1, "high": 1.0}})
    assert list(nested) == ["kernel.eps", "model.lr"]  # +hydra.sweeper.params.kernel.eps=... nests
    assert _space.overrides({"grid.resolution": "[256,32]", "kernel.eps": 0.5, "x": None, "b": True}) == [
        "grid.resolution=[256,32]", "kernel.eps=0.5", "x=null", "b=true"]
    assert _space.overrides({"a": "nan", "b": "1e-3", "c": "tanh"}) == ["a='nan'", "b='1e-3'", "c=tanh"]  # strings stay strings
    # The default trial: the config's own value, matched to a choice (a list by its text).
    assert _space.default_value("r", res, OmegaConf.create({"r": [512, 32]}).r) == "[512,32]"
    assert _space.default_value("l", levels, 3.0) == 3 and _space.default_value("e", eps, 1) == 1.0


@pytest.mark.parametrize("spec, words", [
    (3, "write {low: a, high: b}"),
    ({"lo": 1, "high": 2}, "unknown key 'lo' (allowed: low, high, log, step, choices)"),
    ({"low": 1}, "needs both low and high"),
    ({"low": 2.0, "high": 1.0}, "low must be < high, got low=2.0, high=1.0"),
    ({"low": 0.0, "high": 1.0, "log": True}, "log: true needs low > 0"),
    ({"low": "a", "high": 1.0}, "low and high must be numbers"),
    ({"low": 0.1, "high": 1.0, "log": "yes"}, "log must be true or false"),
    ({"low": 1, "high": 4, "step": 0}, "step must be a number > 0"),
    ({"choices": []}, "choices must be a non-empty list"),
    ({"choices": [1, 2], "low": 0}, "choices cannot be combined with low"),
    ({"choices": [1, 1]}, "choices repeat a value"),
])
def test_a_bad_spec_is_one_line_naming_its_key(spec, words):
    with pytest.raises(ConfigError) as e:
        _space.space("hydra.sweeper.studies.dinf.params", {"kernel.eps": spec})
    assert e.value.key == "hydra.sweeper.studies.dinf.params.kernel.eps" and words in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_a_default_outside_the_choices_is_refused():
    dist = _space.distribution("grid.levels", {"choices": [2, 3]})
    with pytest.raises(ConfigError, match=r"the default 1 is not among the choices \[2,3\]: add it"):
        _space.default_value("grid.levels", dist, 1)


@pytest.mark.parametrize("experiment", ["tune_poisson2d_cg", "tune_burgers1d"])
def test_tuning_experiments_search_keys_that_exist_with_defaults_in_range(experiment):
    """Each study's keys are in the config of its model, and trial 0 (the defaults) is in its space."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
        sweeper = cfg.hydra.sweeper
        assert sweeper._target_.endswith("OptunaSweeper") and set(sweeper.studies) == {"dinf", "siren", "pinnacle_mlp"}
        assert cfg.trainer.max_time and sweeper.n_trials >= 2
        for name, study in sweeper.studies.items():
            space = _space.space(name, study.params)
            run = compose("config", overrides=[f"experiment={experiment}", *study.overrides, *TINY[-2:]])
            for key, dist in space.items():
                value = OmegaConf.select(run, key, default="MISSING")
                assert value != "MISSING", f"{experiment}: {name}: {key} is not in the config"
                default = _space.default_value(key, dist, value)
                assert dist._contains(dist.to_internal_repr(default)), f"{experiment}: {name}: {key}={default}"


# --- a sweep end to end on a tiny app -----------------------------------------------------------

APP = '''
import json, math
import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    if cfg.mode == "raise":
        raise RuntimeError("boom")
    err = math.nan if cfg.mode == "nan" else (cfg.x - 0.25) ** 2 + cfg.k
    out = HydraConfig.get().runtime.output_dir
    with open(f"{out}/metrics.json", "w") as f:
        json.dump({"status": "completed", "metric_modes": {"err": "min"}, "final": {"err": err if err == err else None},
                   "train_time_s": 1.0 + cfg.k, "choices": {"pde": "toy", "model": cfg.arch}}, f)


if __name__ == "__main__":
    main()
'''


def _app(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "conf" / "config.yaml").write_text(textwrap.dedent(f"""\
        x: 0.9
        k: 0
        mode: ok
        arch: a
        defaults:
          - override hydra/sweeper: optuna
          - _self_
        hydra:
          searchpath: [file://{CONF}]
          sweep: {{dir: {tmp_path / "multi"}}}
          callbacks:
            report: {{_target_: dinf.app.callbacks.SweepReport}}
          sweeper:
            n_trials: 5
            sampler: {{_target_: optuna.samplers.RandomSampler, seed: 3}}
            studies:
              good:
                overrides: [arch=a]
                params:
                  x: {{low: 0.0, high: 1.0}}
                  mode: {{choices: [ok, nan, raise]}}
              bad:
                overrides: [arch=b, mode=raise]
                params:
                  x: {{low: 0.0, high: 1.0}}
        """))
    return tmp_path / "app.py"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, str(tmp_path / "app.py"), "-m", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_sweep_runs_defaults_first_and_survives_failed_trials(tmp_path):
    _app(tmp_path)
    done = _run(tmp_path, "k=0.5")
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    multi = tmp_path / "multi"
    data = json.loads((multi / "optuna_trials.json").read_text())
    studies = {s["name"]: s for s in data["studies"]}
    assert set(studies) == {"good", "bad"} and data["direction"] == "minimize"
    good, bad = studies["good"]["trials"], studies["bad"]["trials"]
    assert len(good) == len(bad) == 5
    # Trial 0 of each study: the config's own values, enqueued; the rounds alternate the studies.
    assert good[0]["default"] and good[0]["params"] == {"x": 0.9, "mode": "ok"} and good[0]["job"] == 0
    assert bad[0]["default"] and bad[0]["params"] == {"x": 0.9} and bad[0]["job"] == 1
    assert not any(t["default"] for t in good[1:] + bad[1:])
    assert good[0]["state"] == "COMPLETE" and good[0]["value"] == pytest.approx(0.65 ** 2 + 0.5)
    # A raising job and a NaN metric are FAIL trials; every job ran, in its own folder.
    for t in good:
        assert t["state"] == ("COMPLETE" if t["params"]["mode"] == "ok" else "FAIL"), t
        if t["state"] == "COMPLETE":
            assert t["value"] == pytest.approx((t["params"]["x"] - 0.25) ** 2 + 0.5)
    assert {t["params"]["mode"] for t in good} >= {"ok", "nan"}  # the seed draws a failing trial too
    assert all(t["state"] == "FAIL" and "boom" in t["error"] for t in bad)
    assert sorted(t["job"] for t in good + bad) == list(range(10))
    assert all((multi / t["run"]).is_dir() for t in good + bad)
    assert studies["good"]["best_trial"] == min((t for t in good if t["state"] == "COMPLETE"), key=lambda t: t["value"])["trial"]
    assert (multi / "optuna_trials.csv").read_text().count("\n") == 11
    # The report written at the end sets tuned against default.
    report = (multi / "report.md").read_text()
    assert "## Tuned against default (Optuna)" in report, report[:3000]
    assert "| toy | good | err | 0.9225 | 1.5 |" in report and "| unknown | bad | – | – |" in report, report[:3000]


def test_the_command_lines_sweeps_multiply_the_studies_and_bad_specs_stop_it(tmp_path):
    _app(tmp_path)
    done = _run(tmp_path, "k=0,1", "hydra.sweeper.n_trials=1", "~hydra.callbacks.report")
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "multi" / "optuna_trials.json").read_text())
    assert [s["name"] for s in data["studies"]] == ["good k=0", "bad k=0", "good k=1", "bad k=1"]
    assert [s["trials"][0]["value"] for s in data["studies"]][::2] == [pytest.approx(0.65 ** 2), pytest.approx(0.65 ** 2 + 1)]

    bad = _run(tmp_path, "hydra.sweeper.studies.good.params.x.low=2.0")
    assert bad.returncode != 0
    assert "hydra.sweeper.studies.good.params.x: low must be < high, got low=2.0, high=1.0" in bad.stderr
    missing = _run(tmp_path, "+hydra.sweeper.studies.good.params.y={low:0,high:1}")
    assert missing.returncode != 0 and "hydra.sweeper.studies.good.params.y: no such key in the config" in missing.stderr


@pytest.mark.slow  # two tiny ∂∞-Grid trials through train.py, ~25 s; .ci/run runs it with -m slow
def test_train_py_tunes_with_the_optuna_sweeper(tmp_path):
    sweep = tmp_path / "multi"
    cmd = [sys.executable, "train.py", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
           "hydra.sweeper.direction=maximize",  # psnr: a wrong direction is a one-line error after the first trial
           "++hydra.sweeper.params={kernel.eps:{low:0.5,high:2.0,log:true}}", "+hydra.sweeper.params.grid.levels=[2,3]",
           f"hydra.sweep.dir={sweep}", *TINY, "solver=adam"]
    env = {**os.environ, "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trials = json.loads((sweep / "optuna_trials.json").read_text())["studies"][0]["trials"]
    assert trials[0]["params"] == {"kernel.eps": 1.0, "grid.levels": 3} and trials[0]["default"]
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    saved = json.loads((sweep / trials[1]["run"] / "metrics.json").read_text())
    assert saved["config"]["kernel"]["eps"] == pytest.approx(trials[1]["params"]["kernel.eps"])
    assert trials[1]["value"] == pytest.approx(saved["final"][next(iter(saved["metric_modes"]))])
    assert "Tuned against default" in (sweep / "report.md").read_text()


# --- the report's table from fake metrics ----------------------------------------------------------

def _fake_run(folder: Path, model: str, l2re, seconds: float) -> None:
    folder.mkdir(parents=True)
    failed = l2re is None
    (folder / "metrics.json").write_text(json.dumps({
        "status": "failed" if failed else "completed", "error": "RuntimeError: boom" if failed else None,
        "choices": {"pde": "burgers1d", "model": model}, "metric_modes": {"l2re": "min"},
        "final": {} if failed else {"l2re": l2re}, "train_time_s": None if failed else seconds}))


def test_the_report_sets_each_studys_best_beside_its_default(tmp_path):
    sweep = tmp_path / "sweep"
    runs = {0: ("dinf", 1e-3, 20.0), 1: ("siren", 0.5, 20.0), 2: ("dinf", 2e-4, 12.0), 3: ("siren", None, 0.0),
            4: ("dinf", 5e-4, 8.0), 5: ("siren", 0.6, 20.0)}
    for job, (model, value, seconds) in runs.items():
        _fake_run(sweep / str(job), model, value, seconds)

    def trial(n, job, params, default=False):
        value = runs[job][1]
        return {"trial": n, "job": job, "run": str(job), "state": "COMPLETE" if value else "FAIL", "value": value,
                "default": default, "params": params, "error": None if value else "boom"}

    studies = [
        {"name": "dinf", "trials": [trial(0, 0, {"kernel.eps": 0.7, "grid.levels": 1}, True),
                                    trial(1, 2, {"kernel.eps": 1.23456, "grid.levels": 2}),
                                    trial(2, 4, {"kernel.eps": 0.5, "grid.levels": 3, "grid.adapt": None})]},
        {"name": "siren", "trials": [trial(0, 1, {"model.lr": 5e-5}, True), trial(1, 3, {"model.lr": 1e-2}),
                                     trial(2, 5, {"model.lr": 1e-3})]},
    ]
    (sweep / "optuna_trials.json").write_text(json.dumps({"direction": "minimize", "metric": None, "studies": studies}))
    columns, rows = tuning_table(sweep, load_runs(sweep))
    table = {r[1]: dict(zip(columns, r)) for r in rows}
    d = table["dinf"]
    assert (d["problem"], d["metric"], d["default"], d["default train time (s)"]) == ("burgers1d", "l2re", 1e-3, 20.0)
    assert (d["tuned"], d["tuned train time (s)"], d["tuned ÷ default"], d["trials"]) == (2e-4, 12.0, "5×", "3/3")
    assert d["tuned run"] == "2" and d["tuned settings"] == "kernel.eps=1.23 grid.levels=2"
    alone = tuning_table(sweep, [])[1][0]  # without the run folders: values from the trials, no problem or time
    assert (alone[0], alone[3], alone[4], alone[5]) == ("?", 1e-3, None, 2e-4)
    s = table["siren"]  # nothing beat the default; the failed trial counts as run
    assert (s["default"], s["tuned"], s["tuned ÷ default"], s["trials"], s["tuned settings"]) == (
        0.5, 0.5, "1×", "2/3", "(the default)")
    report = write_report(sweep).read_text()
    assert "| burgers1d | dinf | l2re | 0.001 | 20 | 0.0002 | 12 | 5× | 3/3 | 2 | kernel.eps=1.23 grid.levels=2 |" in report
    assert "Tuned against default" in (sweep / "report.html").read_text()
    (sweep / "optuna_trials.json").unlink()  # any other sweep: no such section
    assert tuning_table(sweep, load_runs(sweep)) is None and "Tuned against" not in write_report(sweep).read_text()
