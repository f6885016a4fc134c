"""The multirun launchers: the local device pool (``hydra/launcher=devices``) and the SLURM config."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from hydra_plugins.dinf_launcher._slots import device_slots, parse_visible, visible_devices, worker_envs
from tests.helpers import CONF, TINY

ROOT = Path(__file__).resolve().parents[1]


# --- device slots -----------------------------------------------------------------------------

def test_device_slots_spread_jobs_over_devices_first():
    assert device_slots([0, 1, 3]) == ["0", "1", "3"]
    assert device_slots([0, 1], jobs_per_device=2) == ["0", "1", "0", "1"]
    assert device_slots([]) == []
    with pytest.raises(ValueError):
        device_slots([0], jobs_per_device=0)


def test_visible_devices_honour_cuda_visible_devices():
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert parse_visible("0, 1,-1,2") == ["0", "1"]  # CUDA stops at an invalid id
    assert parse_visible("GPU-8f3c,MIG-1a2b") == ["GPU-8f3c", "MIG-1a2b"]


def test_worker_envs_pin_gpus_or_split_cpu_cores():
    gpu = worker_envs([0, 1], jobs_per_device=1, cores=16)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in gpu] == ["0", "1"]
    assert [e["DINF_DEVICE"] for e in gpu] == ["0", "1"]
    assert {e["OMP_NUM_THREADS"] for e in gpu} == {"8"}
    assert worker_envs([], cpu_jobs=1, cores=16) == []  # in-process, like the basic launcher
    cpu = worker_envs([], cpu_jobs=3, cores=8)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in cpu] == ["", "", ""]
    assert {e["DINF_DEVICE"] for e in cpu} == {"cpu"}
    assert {e[v] for e in cpu for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")} == {"2"}
    assert worker_envs([], cpu_jobs=4, cores=2)[0]["OMP_NUM_THREADS"] == "1"
    assert worker_envs([0], cpu_jobs=4, threads_per_job=5, cores=2)[0]["OMP_NUM_THREADS"] == "5"
    with pytest.raises(ValueError):
        worker_envs([], cpu_jobs=0)


# --- end to end with a tiny app on fake devices --------------------------------------------------

APP = '''
import json, os, signal, time
import hydra
from hydra.core.hydra_config import HydraConfig


class TwoArgError(Exception):  # cannot be unpickled: its __init__ takes other arguments than args
    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    start = time.time()
    time.sleep(cfg.sleep)
    out = HydraConfig.get().runtime.output_dir
    record = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "DINF_DEVICE", "OMP_NUM_THREADS")}
    record.update(x=cfg.x, pid=os.getpid(), start=start, end=time.time(), num=HydraConfig.get().job.num)
    with open(os.path.join(out, "job.json"), "w") as f:
        json.dump(record, f)
    if cfg.x == cfg.fail:
        raise TwoArgError("bad", cfg.x)
    if cfg.x == cfg.die:
        os.kill(os.getpid(), signal.SIGKILL)
    return cfg.x


if __name__ == "__main__":
    main()
'''


def _app(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "conf" / "config.yaml").write_text(textwrap.dedent(f"""\
        x: 0
        sleep: 2
        fail: null
        die: null
        hydra:
          searchpath: [file://{CONF}]
          sweep: {{dir: {tmp_path / "multi"}}}
        """))
    return tmp_path / "app.py"


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "HYDRA_FULL_ERROR": "1"}


def _jobs(tmp_path: Path) -> dict:
    return {r["x"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "multi").glob("*/job.json"))}


@pytest.mark.slow  # five launched jobs, ~10 s; .ci/run runs it with -m slow
def test_devices_pin_one_gpu_per_concurrent_job_and_survive_failures(tmp_path):
    app = _app(tmp_path)
    cmd = [sys.executable, str(app), "-m", "hydra/launcher=devices", "hydra.launcher.devices=[0,1]",
           "hydra.launcher.threads_per_job=3", "fail=3", "die=4", "x=1,2,3,4,5"]
    done = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    log = done.stdout + done.stderr
    assert done.returncode != 0, log  # the sweep reports the failed job once all jobs are done
    jobs = _jobs(tmp_path)
    assert set(jobs) == {1, 2, 3, 4, 5}, log  # the failure and the killed worker stopped nothing
    for r in jobs.values():
        assert r["CUDA_VISIBLE_DEVICES"] in ("0", "1") and r["DINF_DEVICE"] == r["CUDA_VISIBLE_DEVICES"]
        assert r["OMP_NUM_THREADS"] == "3"
    assert len({r["pid"] for r in jobs.values()}) == 5  # a fresh process per job
    rs = sorted(jobs.values(), key=lambda r: r["start"])
    overlaps = [(a, b) for i, a in enumerate(rs) for b in rs[i + 1:] if b["start"] < a["end"]]
    assert overlaps, rs  # two workers did run at once
    assert all(a["CUDA_VISIBLE_DEVICES"] != b["CUDA_VISIBLE_DEVICES"] for a, b in overlaps), rs
    assert sorted(r["num"] for r in jobs.values()) == [0, 1, 2, 3, 4]
    assert (tmp_path / "multi" / "multirun.yaml").exists()
    assert re.search(r"#0 : .*x=1 -> device 0", log) and re.search(r"#1 : .*x=2 -> device 1", log), log
    assert "TwoArgError: bad and 3" in log  # the unpicklable exception kept its type and message
    assert "worker process of job #3 (device" in log and "SIGKILL" in log


def test_one_cpu_job_runs_in_process_like_basic_launcher(tmp_path):
    app = _app(tmp_path)
    cmd = [sys.executable, str(app), "-m", "hydra/launcher=devices", "sleep=0", "x=1,2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    jobs = _jobs(tmp_path)
    assert set(jobs) == {1, 2} and {r["pid"] for r in jobs.values()} == {proc.pid}, out
    assert {r["CUDA_VISIBLE_DEVICES"] for r in jobs.values()} == {""}


@pytest.mark.slow  # a two-worker sweep through train.py, ~15 s; .ci/run runs it with -m slow
def test_train_py_runs_two_cpu_workers(tmp_path):
    sweep = tmp_path / "multi"
    tiny = [o for o in TINY if not o.startswith("trainer.max_steps")]
    cmd = [sys.executable, "train.py", "-m", "hydra/launcher=devices", "hydra.launcher.cpu_jobs=2",
           f"hydra.sweep.dir={sweep}", *tiny, "solver=adam", "trainer.max_steps=4,3"]
    env = {**os.environ, "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = {json.loads((sweep / str(n) / "metrics.json").read_text())["steps"] for n in (0, 1)}
    assert steps == {4, 3}
    assert "-> device cpu" in done.stdout + done.stderr


# --- SLURM ------------------------------------------------------------------------------------------

def _slurm_cfg(overrides=()):
    with initialize_config_dir(config_dir=CONF, version_base="1.3", job_name="train"):
        return compose("config", overrides=["hydra/launcher=slurm", *TINY, *overrides], return_hydra_config=True)


def _sbatch(tmp_path, monkeypatch, overrides=()) -> tuple:
    """The sbatch script and executor the SLURM launcher would submit for a two-job sweep."""
    import submitit
    from hydra.core.hydra_config import HydraConfig
    from submitit.slurm import slurm

    cfg = _slurm_cfg([f"hydra.sweep.dir={tmp_path}", *overrides])
    # ${hydra.job.name} in the launcher config reads HydraConfig; monkeypatch keeps it out of later tests.
    monkeypatch.setattr(HydraConfig.instance(), "cfg", cfg)
    monkeypatch.setattr(slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # no srun here

    class Captured(Exception):
        pass

    executors = []

    def capture(self, fn, *args):  # called once the parameters are set, instead of sbatch
        executors.append(self)
        raise Captured

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    with pytest.raises(Captured):
        launcher.launch([["seed=1"], ["seed=2"]], initial_job_idx=0)
    ex = executors[0]._executor
    params = {**ex.parameters, "map_count": 2}
    return slurm._make_sbatch_string(command="python -m submitit.core._submit", folder=ex.folder, **params), ex


def test_slurm_config_renders_the_intended_sbatch_script(tmp_path, monkeypatch):
    script, ex = _sbatch(tmp_path, monkeypatch, ["hydra.launcher.partition=gpu", "hydra.launcher.setup=[module load cuda]"])
    for flag in ("--gpus-per-node=1", "--cpus-per-task=8", "--time=120", "--partition=gpu", "--mem=32GB",
                 "--job-name=train", "--signal=USR2@120", "--array=0-1%2", "--ntasks-per-node=1"):
        assert f"#SBATCH {flag}" in script, script
    assert "module load cuda" in script
    assert ex.max_num_timeout == 3  # requeues after a timeout
    assert str(tmp_path) in str(ex.folder)


def test_slurm_partition_defaults_to_the_clusters(tmp_path, monkeypatch):
    script, _ = _sbatch(tmp_path, monkeypatch, ["hydra.launcher.gpus_per_node=2", "hydra.launcher.timeout_min=30"])
    assert "--partition" not in script
    assert "#SBATCH --gpus-per-node=2" in script and "#SBATCH --time=30" in script


def test_launcher_configs_reject_unknown_keys():
    with pytest.raises(ConfigCompositionException):
        _slurm_cfg(["hydra.launcher.gpus=2"])
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=devices", "hydra.launcher.devices=[0,1]"],
                      return_hydra_config=True)
        assert list(cfg.hydra.launcher.devices) == [0, 1] and cfg.hydra.launcher.jobs_per_device == 1
        with pytest.raises(ConfigCompositionException):
            compose("config", overrides=["hydra/launcher=devices", "hydra.launcher.gpus=2"], return_hydra_config=True)
