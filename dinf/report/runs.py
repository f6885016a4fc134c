"""Reading a sweep: every run folder under a path, as a ``Run`` with its status, metrics, history
and a label made of the settings that differ from the other runs of its problem."""
from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import yaml

PathLike = Union[str, "os.PathLike[str]"]
SKIP_DIRS = {"wandb", "checkpoints", ".hydra", "__pycache__"}
# Any of these marks a run folder (train.log and run_state.json also when a job died before metrics.json).
RUN_FILES = {"metrics.json", "resumed.json", "run_state.json", "train.log"}
NOTE_CHARS = 120
_STATUS_RANK = {"completed": 0, "failed": 1, "incomplete": 2}
_MISSING = object()

@dataclass
class Run:
    """One run folder of a sweep, as read from disk."""

    path: Path
    name: str
    status: str  # completed | failed | incomplete | continued
    error: Optional[str] = None
    problem: str = "unknown"
    model: str = "?"
    choices: Dict[str, Any] = field(default_factory=dict)
    overrides: List[str] = field(default_factory=list)
    metric_modes: Dict[str, str] = field(default_factory=dict)
    primary: Optional[str] = None
    final: Dict[str, float] = field(default_factory=dict)
    best: Dict[str, float] = field(default_factory=dict)
    history: List[Dict[str, float]] = field(default_factory=list)
    time_to_target: Dict[str, Optional[float]] = field(default_factory=dict)  # seconds, None if never
    train_time_s: Optional[float] = None
    steps: Optional[int] = None
    iterations_per_s: Optional[float] = None
    params: Optional[int] = None
    setting: str = ""  # the overrides that differ from the other runs of its problem
    label: str = ""  # model + setting: the legend entry
    continued_in: Optional[str] = None
    note: str = ""  # for the table, besides an error
    pde_class: Optional[str] = None  # the problem's class name, from metrics.json
    published: Dict[str, Any] = field(default_factory=dict)  # metric -> a published value, "source"
    classical: bool = False  # a classical solver (solver=fem): its history is a refinement sequence


# --- reading -------------------------------------------------------------------------------------
def load_runs(folder: PathLike) -> List[Run]:
    """Every run under ``folder`` (a sweep, nested sweeps or a single run), with labels set."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    runs = [_load_run(d, d.name if d == root else d.relative_to(root).as_posix()) for d in _run_dirs(root)]
    for r in runs:
        if r.continued_in and Path(r.continued_in).is_relative_to(root.resolve()):
            r.continued_in = Path(r.continued_in).relative_to(root.resolve()).as_posix()  # as rows name it
    _set_labels(runs)
    return runs


def _run_dirs(root: Path) -> List[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if RUN_FILES & set(filenames) or ".hydra" in dirnames:
            found.append(Path(dirpath))
            dirnames[:] = []  # a run's own subfolders (logs, checkpoints) hold no runs
        else:
            dirnames[:] = sorted(n for n in dirnames if n not in SKIP_DIRS)
    return sorted(found, key=lambda d: _natural(d.relative_to(root).as_posix()))


def _natural(text: str) -> List[Any]:
    # Job 10 after job 9.
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p]


def _load_run(d: Path, name: str) -> Run:
    choices, overrides = _hydra_info(d)
    run = Run(path=d, name=name, status="incomplete", choices=choices, overrides=overrides)
    if (d / "resumed.json").exists():
        run.status = "continued"
        run.continued_in = str((_read_json(d / "resumed.json") or {}).get("continued_in", "?"))
    elif not (d / "metrics.json").exists():
        state = _read_json(d / "run_state.json") or {}
        run.status = "failed" if state.get("status") == "failed" else "incomplete"
        reason = "failed before writing metrics.json" if run.status == "failed" else \
            "no metrics.json (killed or still running)"
        run.error = _log_tail(d, reason)
    else:
        data = _read_json(d / "metrics.json")
        if data is None:
            run.error = "metrics.json is unreadable (still being written?)"
        else:
            _fill(run, data)
    run.problem = str(run.choices.get("pde") or run.problem)
    run.model = str(run.choices.get("model") or run.model)
    return run


def _fill(run: Run, data: Dict[str, Any]) -> None:
    run.status = str(data.get("status") or "completed")
    run.error = _shorten(str(data["error"])) if data.get("error") else None
    if isinstance(data.get("attempts"), int) and data["attempts"] > 1:
        run.note = f"resumed: {data['attempts']} attempts"
    choices = data.get("choices") or run.choices
    run.choices = {k: v for k, v in choices.items() if not str(k).startswith("hydra/")}
    run.overrides = [str(o) for o in data.get("overrides") or run.overrides]
    run.pde_class = str(data["pde"]) if data.get("pde") else None
    run.published = dict(data.get("published") or {})
    run.classical = bool(data.get("classical", False))
    run.problem, run.model = run.pde_class or run.problem, str(data.get("model") or run.model)
    run.history = [{k: _num(v) for k, v in h.items()} for h in data.get("history") or [] if isinstance(h, dict)]
    final = {k: _num(v) for k, v in (data.get("final") or {}).items()}
    best = {k: _num(v) for k, v in (data.get("best") or {}).items()}
    seen = list(final) or list(best) or [k for h in run.history for k in h if k not in ("step", "train_time_s")]
    run.metric_modes = dict(data.get("metric_modes") or {k: _guess_mode(k) for k in dict.fromkeys(seen)})
    run.final = final or {k: _num(data[k]) for k in run.metric_modes if k in data}
    run.best = {k: best[k] if k in best else _best_of(run.history, k, m) for k, m in run.metric_modes.items()}
    run.best = {k: v for k, v in run.best.items() if k in best or _finite(v)}  # nothing to show: no entry
    run.primary = next(iter(run.metric_modes), None)
    run.time_to_target = {k: _hit_seconds(v) for k, v in (data.get("time_to_target") or {}).items()}
    run.train_time_s = _opt_num(data.get("train_time_s"))
    run.steps = data.get("steps")
    run.params = data.get("params")
    run.iterations_per_s = _opt_num(data.get("iterations_per_s"))
    if run.iterations_per_s is None and run.steps and run.train_time_s:
        run.iterations_per_s = run.steps / run.train_time_s


def _hydra_info(d: Path) -> Tuple[Dict[str, Any], List[str]]:
    """Config-group choices and task overrides from ``.hydra/`` (empty when the run had no Hydra)."""
    choices: Dict[str, Any] = {}
    overrides: List[str] = []
    try:
        hydra = yaml.safe_load((d / ".hydra" / "hydra.yaml").read_text()) or {}
        raw = hydra.get("hydra", {}).get("runtime", {}).get("choices") or {}
        choices = {k: v for k, v in raw.items() if not str(k).startswith("hydra/")}
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    try:
        overrides = [str(o) for o in yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text()) or []]
    except (OSError, yaml.YAMLError, TypeError):
        pass
    return choices, overrides


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _log_tail(d: Path, reason: str, lines: int = 2) -> str:
    try:
        text = (d / "train.log").read_text(errors="replace").splitlines()
    except OSError:
        text = []
    # Drop Hydra's "[date][logger][LEVEL] - " prefix: the message is what says why.
    tail = [re.sub(r"^(\[[^\]]*\]){2,3}\s*-\s*", "", s).strip() for s in text if s.strip()][-lines:]
    return _shorten(reason + (": " + " / ".join(tail) if tail else ""))


def _shorten(text: str, n: int = NOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _num(v: Any) -> Any:
    """A metrics.json number: null is NaN, "inf"/"-inf" are infinities; ints stay ints."""
    if isinstance(v, bool) or v is None:
        return math.nan if v is None else float(v)
    if isinstance(v, (int, float)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _opt_num(v: Any) -> Optional[float]:
    return None if v is None else float(_num(v))


def _hit_seconds(v: Any) -> Optional[float]:
    if isinstance(v, dict):
        v = v.get("seconds")
    return None if v is None else float(_num(v))


def _guess_mode(metric: str) -> str:
    return "max" if re.match(r"(psnr|ssim)", metric.lower()) else "min"


def _better(a: float, b: float, mode: str) -> bool:
    """``a`` is at least as good as ``b``."""
    return a >= b if mode == "max" else a <= b


def _best_of(history: Sequence[Dict[str, float]], metric: str, mode: str) -> float:
    values = [h[metric] for h in history if _finite(h.get(metric))]
    return (max if mode == "max" else min)(values) if values else math.nan


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


# --- grouping and labels -------------------------------------------------------------------------
def _groups(runs: Iterable[Run]) -> Dict[str, List[Run]]:
    groups: Dict[str, List[Run]] = {}
    for r in runs:
        if r.status != "continued":
            groups.setdefault(r.problem, []).append(r)
    return groups


def _settings(run: Run) -> Dict[str, str]:
    """What identifies a run's configuration: group choices plus the non-group overrides."""
    s = {str(k): str(v) for k, v in run.choices.items() if v is not None}
    for o in run.overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+~") not in run.choices:  # a group override is already in the choices
            s[key.lstrip("+")] = value
    return s


def _set_labels(runs: List[Run]) -> None:
    for group in _groups(runs).values():
        settings = [_settings(r) for r in group]
        keys = list(dict.fromkeys(k for s in settings for k in s if k not in ("model", "pde")))
        differing = [k for k in keys if len({s.get(k, _MISSING) for s in settings}) > 1]
        for r, s in zip(group, settings):
            r.setting = " ".join(k if k.startswith("~") else f"{k}={s[k]}" for k in differing if k in s)
            r.label = f"{r.model} {r.setting}".strip()
        counts = Counter(r.label for r in group)
        for r in group:
            if counts[r.label] > 1:  # same settings twice (e.g. nested sweeps): tell them apart
                r.label += f" ({r.name})"
