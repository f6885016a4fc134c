"""Offline comparison of a sweep: one table per problem and speed-vs-accuracy plots.

Reads the folders a Hydra (multi)run leaves behind (``metrics.json``, ``.hydra/``, ``train.log``,
``run_state.json``, ``resumed.json``) without network or wandb, so it also works on a copied or archived sweep and
inside a Hydra callback. Importing this module has no side effects (matplotlib is loaded lazily and
used without pyplot, so no global backend is chosen).
"""
from __future__ import annotations

import base64
import html
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

SPEED_UP_DEFINITION = (
    "**speed-up**: R\\* is the problem's best run (first row). For a run R whose best primary metric "
    "b is first reached at training time t_R, speed-up = t_R / t\\*, where t\\* is the first training "
    "time at which R\\* was at least as good as b (both from the validation histories; training time "
    "excludes validation). 2× means the best run reached R's best accuracy in half the time R needed; "
    "R\\* itself is 1×; ∞ means R\\* was already there before training."
)


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


# --- tables --------------------------------------------------------------------------------------
def group_primary(group: Sequence[Run]) -> Tuple[Optional[str], str]:
    """The problem's primary metric and its mode ("max" or "min")."""
    for r in group:
        if r.primary:
            return r.primary, r.metric_modes.get(r.primary, _guess_mode(r.primary))
    return None, "max"


def sort_runs(group: Sequence[Run], primary: Optional[str], mode: str) -> List[Run]:
    """Best primary metric first; runs without a finite one, then failed, then incomplete, last."""
    def key(r: Run) -> Tuple[int, int, float]:
        b = r.best.get(primary, math.nan) if primary else math.nan
        ok = _finite(b)
        return _STATUS_RANK.get(r.status, 3), 0 if ok else 1, (-b if mode == "max" else b) if ok else 0.0
    return sorted(group, key=key)


def _first_time(history: Sequence[Dict[str, float]], metric: str, mode: str, target: float) -> Optional[float]:
    for h in history:
        if _finite(h.get(metric)) and _better(h[metric], target, mode):
            return float(h["train_time_s"])
    return None


def speed_up(reference: Run, run: Run, metric: str, mode: str) -> Optional[float]:
    """How many times sooner ``reference`` reached ``run``'s best ``metric`` than ``run`` did."""
    target = _best_of(run.history, metric, mode)
    if not math.isfinite(target):
        return None
    t_run = _first_time(run.history, metric, mode, target)
    t_ref = _first_time(reference.history, metric, mode, target)
    if t_run is None or t_ref is None:
        return None
    if t_ref <= 0:
        return 1.0 if t_run <= 0 else math.inf
    return t_run / t_ref


def tables(runs: Sequence[Run]) -> Dict[str, Tuple[List[str], List[List[Any]]]]:
    """Per problem: column names and rows of raw values (None where there is nothing to show)."""
    out = {}
    for problem, group in _groups(runs).items():
        primary, mode = group_primary(group)
        ordered = sort_runs(group, primary, mode)
        others = list(dict.fromkeys(k for r in ordered for k in (*r.metric_modes, *r.final) if k != primary))
        targets = list(dict.fromkeys(k for r in ordered for k in r.time_to_target))
        ref = ordered[0] if primary and ordered[0].status == "completed" and _finite(ordered[0].best.get(primary)) else None
        columns = ["run", "model", "overrides", "status"]
        columns += [f"final {primary}", f"best {primary}"] if primary else []
        columns += others + [f"time to {t} (s)" for t in targets]
        columns += ["speed-up", "train time (s)", "steps", "it/s", "params", "note"]
        rows = []
        for r in ordered:
            row: List[Any] = [r.name, r.model, r.setting, r.status]
            row += [r.final.get(primary), r.best.get(primary)] if primary else []
            row += [r.final.get(k) for k in others] + [r.time_to_target.get(t) for t in targets]
            row += [speed_up(ref, r, primary, mode) if ref and primary else None,
                    r.train_time_s, r.steps, r.iterations_per_s, r.params,
                    "; ".join(filter(None, (r.error, r.note)))]
            rows.append(row)
        out[problem] = (columns, rows)
    return out


def _cell(column: str, v: Any) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if column in ("params", "steps"):
        return f"{int(v):,}"
    if column == "speed-up":
        return f"{v:.3g}×"
    if column.endswith("(s)") or column == "it/s":
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def formatted(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[List[str]]:
    """The rows as display strings."""
    return [[_cell(c, v) for c, v in zip(columns, row)] for row in rows]


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in formatted(columns, rows)]
    return "\n".join(lines)


def _heading(problem: str, group: Sequence[Run]) -> str:
    primary, mode = group_primary(group)
    classes = sorted({r.pde_class for r in group} - {None, problem})
    name = problem + (f" ({', '.join(classes)})" if classes else "")
    if not primary:
        return name
    return f"{name} — primary metric: {primary} ({'higher' if mode == 'max' else 'lower'} is better)"


def markdown_tables(runs: Sequence[Run]) -> str:
    """One Markdown table per problem, with a heading each (what the CLI prints)."""
    parts = []
    for problem, (columns, rows) in tables(runs).items():
        parts.append(f"## {_heading(problem, _groups(runs)[problem])}\n\n{_md_table(columns, rows)}")
    return "\n\n".join(parts)


# --- plots ---------------------------------------------------------------------------------------
def plot_problem(problem: str, group: Sequence[Run], path: PathLike) -> Optional[Path]:
    """Each metric against training time, one line per run; None when no run has a history."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    primary, mode = group_primary(group)
    curves = [r for r in sort_runs(group, primary, mode) if r.history]
    if not primary or not curves:
        return None
    modes = {primary: mode}
    for r in curves:
        modes.update({k: m for k, m in r.metric_modes.items() if k not in modes})
    fig = Figure(figsize=(5 * len(modes) + 2, 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(modes), squeeze=False)[0]
    positive_times = [h["train_time_s"] for r in curves for h in r.history if _finite(h.get("train_time_s")) and h["train_time_s"] > 0]
    for ax, (metric, m) in zip(axes, modes.items()):
        ys = []
        for r in curves:
            pts = [(h["train_time_s"], h[metric]) for h in r.history if _finite(h.get(metric)) and _finite(h.get("train_time_s"))]
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, label=r.label)
                ys += [y for _, y in pts]
        # symlog keeps the t = 0 validation (the starting point) on an otherwise logarithmic axis.
        if positive_times:
            ax.set_xscale("symlog", linthresh=min(positive_times))
        if m == "min" and ys and min(ys) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("training time (s)")
        ax.set_ylabel(f"{metric} ({'higher' if m == 'max' else 'lower'} is better)")
        ax.set_title(f"{problem}: {metric}" + (" (primary)" if metric == primary else ""))
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    fig.savefig(path, dpi=100)
    return Path(path)


# --- the report ----------------------------------------------------------------------------------
def _file_name(problem: str) -> str:
    return re.sub(r"[^\w.-]+", "_", problem) + "_speed_accuracy.png"


def _summary(runs: Sequence[Run]) -> str:
    counts = Counter(r.status for r in runs)
    return f"{len(runs)} run folders: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda x: _STATUS_RANK.get(x[0], 3)))


def _footnotes(runs: Sequence[Run]) -> List[str]:
    return [f"`{r.name}` was continued in `{r.continued_in}` and is not listed." for r in runs if r.status == "continued"]


def _definitions() -> List[str]:
    return [
        SPEED_UP_DEFINITION,
        "**final / best**: the primary metric at the end of training / the best over the validations; the "
        "other metric columns are final values. **time to X (s)**: training time at the first validation "
        "that met the target (– if never). **overrides**: the settings that differ between the runs of a "
        "problem (also the plot legend). **it/s**: training steps per second of training time.",
        "Plots: metrics against training time (symmetric-log x-axis, linear below the smallest positive "
        "time so that the starting point at t = 0 shows), one marker per validation.",
    ]


def render_markdown(folder: PathLike, runs: Sequence[Run], images: Dict[str, str]) -> str:
    parts = [f"# Sweep report: `{folder}`", _summary(runs)]
    groups = _groups(runs)
    for problem, (columns, rows) in tables(runs).items():
        parts.append(f"## {_heading(problem, groups[problem])}")
        if problem in images:
            parts.append(f"![{problem}: speed vs accuracy]({images[problem]})")
        parts.append(_md_table(columns, rows))
    notes = _footnotes(runs)
    if notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in notes))
    parts.append("## Definitions\n\n" + "\n".join(f"- {d}" for d in _definitions()))
    return "\n\n".join(parts) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f0f0f0}td.text{text-align:left}td.note{white-space:normal;max-width:40em;text-align:left}
tr.failed{background:#fde8e8}tr.incomplete{background:#fff6d5}img{max-width:100%}
code{background:#f4f4f4;padding:0 3px}"""


def _md_inline(text: str) -> str:
    text = html.escape(text.replace("\\*", "*"))
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def render_html(folder: PathLike, runs: Sequence[Run], images: Dict[str, Path]) -> str:
    """The report as one self-contained page (pictures embedded as base64)."""
    body = [f"<h1>Sweep report: <code>{html.escape(str(folder))}</code></h1>", f"<p>{html.escape(_summary(runs))}</p>"]
    groups = _groups(runs)
    for problem, (columns, rows) in tables(runs).items():
        body.append(f"<h2>{html.escape(_heading(problem, groups[problem]))}</h2>")
        if problem in images:
            data = base64.b64encode(Path(images[problem]).read_bytes()).decode()
            body.append(f'<img alt="{html.escape(problem)}" src="data:image/png;base64,{data}">')
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        trs = []
        for raw, cells in zip(rows, formatted(columns, rows)):
            tds = "".join(
                f'<td class="{"note" if c == "note" else "text" if c in ("run", "model", "overrides", "status") else "num"}">'
                f"{html.escape(v)}</td>" for c, v in zip(columns, cells))
            trs.append(f'<tr class="{html.escape(str(raw[3]))}">{tds}</tr>')
        body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}</tbody></table>")
    notes = _footnotes(runs)
    if notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_md_inline(n)}</li>" for n in notes) + "</ul>")
    body.append("<h2>Definitions</h2><ul>" + "".join(f"<li>{_md_inline(d)}</li>" for d in _definitions()) + "</ul>")
    return (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>Sweep report</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(folder: PathLike, out: Optional[PathLike] = None, runs: Optional[Sequence[Run]] = None) -> Path:
    """Write ``report.md``, ``report.html`` and one ``<problem>_speed_accuracy.png`` per problem into
    ``out`` (default: ``folder``); returns the path of ``report.md``."""
    runs = load_runs(folder) if runs is None else list(runs)
    if not runs:
        raise ValueError(f"no runs found under {folder} (no folder with metrics.json, train.log or .hydra/)")
    out_dir = Path(out) if out is not None else Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for problem, group in _groups(runs).items():
        png = plot_problem(problem, group, out_dir / _file_name(problem))
        if png is not None:
            images[problem] = png
    md = out_dir / "report.md"
    md.write_text(render_markdown(folder, runs, {p: i.name for p, i in images.items()}))
    (out_dir / "report.html").write_text(render_html(folder, runs, images))
    return md
