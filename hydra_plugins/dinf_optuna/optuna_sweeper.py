"""``hydra/sweeper=optuna``: tunes a run's settings with Optuna's ask-and-tell interface.

Why our own sweeper rather than hydra-optuna-sweeper: its last release (1.3.0) pins optuna<3, which
cannot be installed beside a current Optuna. Ask-and-tell keeps Optuna out of the jobs: the sweeper
asks each study for a trial, launches the trials of a round through the configured launcher (one
run folder each, as any multirun), reads each run's metric from its ``metrics.json`` and tells the
study. A job that fails, or whose metric is not finite, is told as FAIL and the sweep goes on.

Several studies may share a sweep (``studies:``, e.g. one per model); a round gives each of them
``n_jobs`` trials, so all get the same number of trials and the same budget. Trial 0 of each study
runs its parameters' configured values (the defaults), so a report can set tuned against default.
The trials are written to ``optuna_trials.json`` and ``optuna_trials.csv`` in the sweep folder.
"""
from __future__ import annotations

import csv
import itertools
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from dinf.errors import ConfigError
from hydra_plugins.dinf_optuna import _space

log = logging.getLogger(__name__)
TRIALS_JSON = "optuna_trials.json"
TRIALS_CSV = "optuna_trials.csv"
DIRECTIONS = ("minimize", "maximize")
_MISSING = object()


class _Study:
    """One Optuna study of the sweep and the records of its trials."""

    def __init__(self, name: str, overrides: List[str], space: Dict[str, Any]) -> None:
        # Not a dataclass: Hydra's plugin scan imports this module before it is in sys.modules.
        self.name = name
        self.overrides = overrides  # the command line's (one point of its sweeps) and the study's own
        self.space = space
        self.study: Any = None
        self.defaults: Optional[Dict[str, Any]] = None
        self.records: List[Dict[str, Any]] = []


class OptunaSweeper(Sweeper):
    def __init__(self, studies: Optional[Dict[str, Any]] = None, params: Optional[Dict[str, Any]] = None,
                 n_trials: int = 8, n_jobs: int = 1, direction: str = "minimize", metric: Optional[str] = None,
                 enqueue_defaults: bool = True, timeout_s: Optional[float] = None, sampler: Any = None) -> None:
        self.studies_conf = _space.plain(studies) or {}
        self.params_conf = _space.plain(params) or {}
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.direction = direction
        self.metric = metric
        self.enqueue_defaults = enqueue_defaults
        self.timeout_s = timeout_s
        self.sampler_conf = sampler
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher: Optional[Launcher] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task_function,
                                                                config=config)

    # --- the sweep -------------------------------------------------------------------------------
    def sweep(self, arguments: List[str]) -> List[Sequence[JobReturn]]:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        self._check()
        studies = self._studies(arguments)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info("Optuna: %d stud%s × %d trials (%s), %s; sweep output dir: %s", len(studies),
                 "y" if len(studies) == 1 else "ies", self.n_trials, self.direction, self.metric or "the primary metric",
                 sweep_dir)
        returns: List[Sequence[JobReturn]] = []
        job_idx, start = 0, time.perf_counter()
        while any(len(s.records) < self.n_trials for s in studies):
            if self.timeout_s is not None and time.perf_counter() - start > self.timeout_s:
                log.info("Optuna: hydra.sweeper.timeout_s (%.0f s) reached; no new round", self.timeout_s)
                break
            batch, asked = self._round(studies)
            if batch:
                results = self.launcher.launch(batch, initial_job_idx=job_idx)
            else:
                results = []
            for (s, trial, record), ret in zip(asked, results):
                record["job"] = job_idx
                job_idx += 1
                self._tell(s, trial, record, ret, sweep_dir)
            for s, trial, record in asked[len(results):]:  # did not compose: never launched
                s.study.tell(trial, state=_state("FAIL"))
            returns.append(results)
            _write(sweep_dir, studies, self)
        for s in studies:
            done = [r for r in s.records if r["state"] == "COMPLETE"]
            if done:
                best = s.study.best_trial
                log.info("Optuna: %s: best %s %.4g (trial %d%s) %s", s.name, self.metric or "value", best.value,
                         best.number, ", the default" if best.number == 0 and self.enqueue_defaults else "",
                         " ".join(_space.overrides(best.params)))
            else:
                log.warning("Optuna: %s: no trial completed", s.name)
        return returns

    def _check(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ConfigError("hydra.sweeper.direction", f"{self.direction!r} is not one of {', '.join(DIRECTIONS)}")
        for key, value in (("n_trials", self.n_trials), ("n_jobs", self.n_jobs)):
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"hydra.sweeper.{key}", f"must be an integer >= 1, got {value!r}")
        if not isinstance(self.studies_conf, dict):
            raise ConfigError("hydra.sweeper.studies", f"must map study names to {{overrides, params}}, got {self.studies_conf!r}")

    def _studies(self, arguments: List[str]) -> List[_Study]:
        """One study per point of the command line's own sweeps (a=1,2) and entry of ``studies``."""
        import optuna

        points = _grid(OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(arguments))
        entries = self.studies_conf or {"study": {"params": self.params_conf}}
        studies = []
        for point, (name, entry) in itertools.product(points, entries.items()):
            prefix = f"hydra.sweeper.studies.{name}" if self.studies_conf else "hydra.sweeper"
            entry = entry or {}
            if not isinstance(entry, dict) or set(entry) - {"overrides", "params"}:
                raise ConfigError(prefix, f"write {{overrides: [...], params: {{key: range}}}}, got {entry!r}")
            own = [str(o) for o in entry.get("overrides") or []]
            space = _space.space(f"{prefix}.params", entry.get("params"))
            if not space:
                raise ConfigError(f"{prefix}.params", "no parameter to tune: map config keys to {low, high} or {choices}")
            label = " ".join([name] * bool(self.studies_conf) + [o for o in point if o not in own and _swept(o, arguments)])
            s = _Study(label or name, _merge(point, own), space)
            s.defaults = self._defaults(s, f"{prefix}.params")
            sampler = self._sampler()
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            s.study = optuna.create_study(direction=self.direction, sampler=sampler, study_name=s.name)
            if s.defaults is not None:
                s.study.enqueue_trial(s.defaults)
            studies.append(s)
        return studies

    def _sampler(self) -> Any:
        """A fresh sampler per study (Hydra has usually built ``sampler`` already: a copy of it)."""
        import copy

        from hydra.utils import instantiate

        conf = self.sampler_conf
        if conf is None:
            return None
        if isinstance(conf, dict) or OmegaConf.is_config(conf):
            return instantiate(conf)
        return copy.deepcopy(conf)

    def _defaults(self, s: _Study, prefix: str) -> Optional[Dict[str, Any]]:
        """The config's values of the study's parameters; checks that each key exists."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(s.overrides))
        values = {}
        for key, dist in s.space.items():
            try:
                value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_resolution_failure=True)
            except Exception as e:  # noqa: BLE001 - an interpolation that cannot resolve here
                raise ConfigError(f"{prefix}.{key}", f"cannot read its default: {type(e).__name__}: {e}") from None
            if value is _MISSING:
                raise ConfigError(f"{prefix}.{key}", f"no such key in the config of {' '.join(s.overrides) or 'the run'}")
            if self.enqueue_defaults:
                try:
                    values[key] = _space.default_value(key, dist, value)
                except ConfigError as e:
                    raise e.prefixed(prefix) from None
        return values if self.enqueue_defaults else None

    def _round(self, studies: List[_Study]) -> Tuple[List[List[str]], List[Tuple[_Study, Any, Dict[str, Any]]]]:
        """Ask every unfinished study for ``n_jobs`` trials; those whose config composes are launched
        (first in the returned list), the others recorded as failed."""
        ok, bad = [], []
        for s in studies:
            for _ in range(min(self.n_jobs, self.n_trials - len(s.records))):
                trial = s.study.ask(s.space)
                record = {"study": s.name, "trial": trial.number, "job": None, "run": None, "state": "RUNNING",
                          "value": None, "default": s.defaults is not None and trial.number == 0,
                          "params": {k: trial.params[k] for k in s.space}, "error": None}
                s.records.append(record)
                job = s.overrides + _space.overrides(record["params"])
                try:
                    self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
                except Exception as e:  # noqa: BLE001 - one bad trial must not stop the sweep
                    record.update(state="FAIL", error=f"config: {type(e).__name__}: {str(e).splitlines()[0]}")
                    log.warning("Optuna: %s trial %d does not compose: %s", s.name, trial.number, record["error"])
                    bad.append((s, trial, record))
                    continue
                ok.append((job, (s, trial, record)))
        return [j for j, _ in ok], [a for _, a in ok] + bad

    def _tell(self, s: _Study, trial: Any, record: Dict[str, Any], ret: JobReturn, sweep_dir: Path) -> None:
        run_dir = _run_dir(ret, sweep_dir, record["job"])
        record["run"] = _relative(run_dir, sweep_dir)
        value, error, data = _objective(ret, run_dir, self.metric)
        if data is not None:
            self._check_direction(data)
            record["train_time_s"] = data.get("train_time_s")
        if value is None:
            record.update(state="FAIL", error=error)
            s.study.tell(trial, state=_state("FAIL"))
            log.warning("Optuna: %s trial %d (job %d) failed: %s", s.name, trial.number, record["job"], error)
            return
        record.update(state="COMPLETE", value=value)
        s.study.tell(trial, value)
        log.info("Optuna: %s trial %d (job %d): %.4g%s", s.name, trial.number, record["job"], value,
                 " (default)" if record["default"] else "")

    def _check_direction(self, data: Dict[str, Any]) -> None:
        modes = data.get("metric_modes") or {}
        key = self.metric or next(iter(modes), None)
        mode = modes.get(key)
        if mode in ("min", "max") and (mode == "max") != (self.direction == "maximize"):
            better = "higher" if mode == "max" else "lower"
            raise ConfigError("hydra.sweeper.direction", f"{key} is better {better}: set hydra.sweeper.direction="
                                                         f"{'maximize' if mode == 'max' else 'minimize'}")


# --- helpers ---------------------------------------------------------------------------------------
def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return getattr(TrialState, name)


def _grid(overrides: Sequence[Any]) -> List[List[str]]:
    """The command line's overrides as the cartesian product of its sweeps (as the basic sweeper)."""
    lists = []
    for o in overrides:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ConfigError(key, "the optuna sweeper takes comma-separated values on the command line; "
                                       "ranges go into hydra.sweeper.params or studies")
            lists.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            lists.append([f"{key}={o.get_value_element_as_str()}"])
    return [list(p) for p in itertools.product(*lists)]


def _swept(override: str, arguments: Sequence[str]) -> bool:
    """Whether the command line swept this override's key (then it names the study)."""
    key = override.split("=", 1)[0]
    return any(a.split("=", 1)[0] == key and "," in a.split("=", 1)[-1] for a in arguments)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _merge(base: Sequence[str], own: Sequence[str]) -> List[str]:
    """``base`` then ``own``; an override of ``own`` replaces ``base``'s of the same key."""
    keys = {_key(o) for o in own}
    return [o for o in base if _key(o) not in keys] + list(own)


def _run_dir(ret: JobReturn, sweep_dir: Path, job: int) -> Path:
    try:
        return Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
    except Exception:  # noqa: BLE001 - a job that never started has no hydra config
        return sweep_dir / str(job)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _num(v: Any) -> float:
    """A metrics.json number (null: NaN, "inf": inf)."""
    try:
        return math.nan if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return math.nan


def _objective(ret: JobReturn, run_dir: Path, metric: Optional[str]) -> Tuple[Optional[float], Optional[str], Optional[Dict[str, Any]]]:
    """(value, None, metrics) for a finished run; (None, why, metrics or None) for one that is not."""
    if ret.status == JobStatus.FAILED:
        err = ret._return_value
        return None, f"{type(err).__name__}: {err}".splitlines()[0], None
    try:
        data = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):  # an app without metrics.json: its return value
        value = _num(ret.return_value) if isinstance(ret.return_value, (int, float)) else math.nan
        if math.isfinite(value):
            return value, None, None
        return None, f"no metrics.json in {run_dir} and no numeric return value", None
    if data.get("status", "completed") != "completed":
        return None, str(data.get("error") or f"status {data.get('status')}").splitlines()[0], data
    key = metric or next(iter(data.get("metric_modes") or data.get("final") or {}), None)
    if key is None:
        return None, "metrics.json names no metric", data
    value = _num((data.get("final") or {}).get(key, data.get(key)))
    if not math.isfinite(value):
        return None, f"{key} is {value}", data
    return value, None, data


def _write(sweep_dir: Path, studies: Sequence[_Study], sweeper: OptunaSweeper) -> None:
    """The trials so far: ``optuna_trials.json`` (by study) and ``optuna_trials.csv`` (a row each)."""
    out = {"direction": sweeper.direction, "metric": sweeper.metric, "n_trials": sweeper.n_trials, "studies": []}
    for s in studies:
        done = [r for r in s.records if r["state"] == "COMPLETE"]
        best = (min if sweeper.direction == "minimize" else max)(done, key=lambda r: r["value"]) if done else None
        out["studies"].append({"name": s.name, "overrides": s.overrides, "defaults": s.defaults,
                               "space": {k: repr(d) for k, d in s.space.items()},
                               "best_trial": None if best is None else best["trial"], "trials": s.records})
    tmp = sweep_dir / (TRIALS_JSON + ".tmp")
    tmp.write_text(json.dumps(out, indent=2, default=str))
    tmp.replace(sweep_dir / TRIALS_JSON)
    with open(sweep_dir / TRIALS_CSV, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["study", "trial", "job", "run", "state", "value", "default", "train_time_s", "params", "error"])
        for s in studies:
            for r in s.records:
                w.writerow([r["study"], r["trial"], r["job"], r["run"], r["state"], r["value"], r["default"],
                            r.get("train_time_s"), " ".join(_space.overrides(r["params"])), r["error"] or ""])
