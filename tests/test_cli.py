"""The command line: instant answers, and one line for each common mistake."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pytorch_lightning", "lightning_fabric", "wandb", "scipy", "matplotlib", "numba")


def _train(*args, env=None):
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def _imported(stderr: str) -> set:
    """Top-level packages in ``python -X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[-1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("args", [["--help"], ["model.kernal=gaussian"]])
def test_help_and_typos_import_nothing_heavy(args):
    proc = subprocess.run([sys.executable, "-X", "importtime", "train.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    heavy = _imported(proc.stderr) & set(HEAVY)
    assert not heavy, f"train.py {' '.join(args)} imports {sorted(heavy)}"


def test_cli_module_is_light():
    code = "import sys, dinf.app.cli, dinf.errors, dinf.app.tracking; print(sorted(m for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout
    assert not {m.split(".")[0] for m in eval(out)} & set(HEAVY)


def _last_line(*overrides):
    proc = _train(*TINY, "hydra.run.dir=/tmp/dinf-cli-test", *overrides)
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return err[-1]


@pytest.mark.parametrize("override, expected", [
    ("model.kernal=gaussian", "error: model.kernal: no such key; did you mean model.kernel?"),
    ("trainer.max_step=3", "error: trainer.max_step: no such key; did you mean trainer.max_steps?"),
    ("pde=helmholz", "error: pde=helmholz: no such option of pde; did you mean pde=helmholtz? (options: "),
    ("seed=abc", "error: seed: must be an integer, got 'abc'"),
    ("trainer.max_steps=0", "error: trainer.max_steps: must be a positive integer, got 0"),
    ("trainer.max_steps=-1", "error: trainer.max_steps: must be a positive integer, got -1"),
    ("trainer.val_check_interval=0", "error: trainer.val_check_interval: must be a number of steps >= 1"),
])
def test_mistakes_caught_before_torch_loads(override, expected):
    assert _last_line(override).startswith(expected)


@pytest.mark.parametrize("override, expected", [
    ("kernel.eps=-1", "kernel.eps: must be > 0, got -1"),
    ("kernel.eps=abc", "kernel.eps: must be a number, got 'abc'"),
    ("+model.kernal=gaussian", "model.kernal: no such key; did you mean model.kernel?"),
    ("model.lr=abc", "model.lr: must be a number, got 'abc'"),
    ("model.lr=-1", "model.lr: Invalid learning rate: -1"),
    ("trainer.precision=13", "trainer: Precision 13 is invalid"),
])
def test_value_mistakes_name_the_key_the_user_typed(override, expected, tmp_path):
    # In process (the same code path train.py takes after Hydra): torch is loaded once here.
    from dinf.errors import ConfigError
    from dinf.app.run import train
    from tests.helpers import compose_cfg

    with pytest.raises(ConfigError) as err:
        train(compose_cfg(["solver=adam", override]), output_dir=str(tmp_path))
    assert str(err.value).startswith(expected), str(err.value)


def test_a_value_mistake_on_the_command_line_is_one_line():
    assert _last_line("kernel.eps=-1") == "error: kernel.eps: must be > 0, got -1"


def test_full_hydra_error_stays_available():
    proc = _train("model.kernal=gaussian", env={**__import__("os").environ, "HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "kernal" in proc.stderr


def test_suggestions():
    from dinf.app.cli import suggest, unknown_key, unknown_option

    assert suggest("kernal", ["kernel", "eps", "rho"]) == "kernel"
    assert suggest("zzz", ["kernel", "eps"]) is None
    assert unknown_key("foo", ["seed", "pde"]) == "foo: no such key (valid: pde, seed); add a new one with +foo=…"
    assert unknown_option("pde", "plat", ["plate", "poisson"]).startswith("pde=plat: no such option of pde; did you mean pde=plate?")


def test_source_key_follows_interpolations():
    from omegaconf import OmegaConf

    from dinf.app.cli import source_key

    cfg = OmegaConf.create({"kernel": {"eps": 1.0}, "grid": {"resolution": "${pde.resolution}"},
                            "pde": {"resolution": 64},
                            "model": {"eps": "${kernel.eps}", "resolution": "${grid.resolution}", "rho": 3}})
    assert source_key(cfg, "model.eps") == "kernel.eps"
    assert source_key(cfg, "model.resolution") == "pde.resolution"
    assert source_key(cfg, "model.rho") == "model.rho"


def test_redirected_run_prints_a_line_per_validation_and_no_bar(tmp_path):
    proc = _train(*[o for o in TINY if "progress_bar" not in o], "trainer.enable_progress_bar=auto",
                  "solver=adam", "trainer.max_steps=6", "trainer.val_check_interval=2", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    lines = [line for line in out.splitlines() if line.strip()]
    assert [line.split("] ", 1)[1].split(" · ")[0] for line in lines if "· loss" in line] == \
        ["step 2/6", "step 4/6", "step 6/6"]
    assert "it/s]" not in out and "Tip:" not in out and "LeafSpec" not in out and "GPU available" not in out
    assert len(lines) <= 12, out


def test_compilation_is_announced_once(caplog, monkeypatch):
    import logging
    import time

    from dinf.fields import rbf_cpu

    monkeypatch.setattr(rbf_cpu, "ANNOUNCE_AFTER_S", 0.05)
    with caplog.at_level(logging.INFO, logger="dinf.fields.rbf_cpu"):
        with rbf_cpu._announce_compile("forward", 9, 9, 9):
            time.sleep(0.3)  # a first call as slow as a compilation
        with rbf_cpu._announce_compile("forward", 9, 9, 9):
            time.sleep(0.3)  # the same kernel again: already compiled, nothing to say
        with rbf_cpu._announce_compile("backward", 9, 9, 9):
            pass  # fast (loaded from numba's cache): nothing to say
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("compiling the fused CPU kernel (forward, order 9")
