"""The report's tables: one per problem, best run first, with the speed-up between runs."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dinf.report.runs import _STATUS_RANK, Run, _best_of, _better, _finite, _groups, _guess_mode

SPEED_UP_DEFINITION = (
    "**speed-up**: R\\* is the problem's best run (first row). For a run R whose best primary metric "
    "b is first reached at training time t_R, speed-up = t_R / t\\*, where t\\* is the first training "
    "time at which R\\* was at least as good as b (both from the validation histories; training time "
    "excludes validation). 2× means the best run reached R's best accuracy in half the time R needed; "
    "R\\* itself is 1×; ∞ means R\\* was already there before training."
)

CLASSICAL_DEFINITION = (
    "**time ÷ classical**: for a run R whose best primary metric b is first reached at training time "
    "t_R, t_R divided by the shortest time at which a classical solver of the same problem "
    "(`solver=fem`, `fd`, `mol`; each solve of its refinement sequence timed alone) was at least as good as b. "
    "Above 1× the classical solver reached R's accuracy sooner; – means no classical solve of the "
    "sweep reached it."
)


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


def classical_ratio(classical: Sequence[Run], run: Run, metric: str, mode: str) -> Optional[float]:
    """``run``'s time to its best ``metric`` over the shortest time any classical solve of
    ``classical`` took to be at least as good (None if none was)."""
    target = _best_of(run.history, metric, mode)
    t_run = _first_time(run.history, metric, mode, target) if math.isfinite(target) else None
    if t_run is None:
        return None
    # A refinement sequence's solves are timed alone: any of them (not only the first) may be the quickest.
    times = [float(h["train_time_s"]) for c in classical for h in c.history
             if _finite(h.get(metric)) and _better(h[metric], target, mode)]
    if not times:
        return None
    return t_run / min(times) if min(times) > 0 else math.inf


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
        published = _published(ordered)
        columns += [c for m in published for c in (f"published {m}", f"{m} vs published")]
        classical = [r for r in ordered if r.classical and r.status == "completed"] if primary else []
        columns += ["speed-up"] + (["time ÷ classical"] if classical else [])
        columns += ["train time (s)", "steps", "it/s", "params", "note"]
        rows = []
        for r in ordered:
            row: List[Any] = [r.name, r.model, r.setting, r.status]
            row += [r.final.get(primary), r.best.get(primary)] if primary else []
            row += [r.final.get(k) for k in others] + [r.time_to_target.get(t) for t in targets]
            for m, value in published.items():
                mine = r.final.get(m)
                better = r.metric_modes.get(m, _guess_mode(m))
                ratio = None if not _finite(mine) or not mine else (value / mine if better == "min" else mine / value)
                row += [value, ratio]
            row += [speed_up(ref, r, primary, mode) if ref and primary else None]
            row += [classical_ratio(classical, r, primary, mode)] if classical else []
            row += [r.train_time_s, r.steps, r.iterations_per_s, r.params,
                    "; ".join(filter(None, (r.error, r.note)))]
            rows.append(row)
        out[problem] = (columns, rows)
    return out


def _published(group: Sequence[Run]) -> Dict[str, float]:
    """Published values of the problem's metrics (e.g. PINNacle's best L2RE), from its runs."""
    out: Dict[str, float] = {}
    for r in group:
        for k, v in r.published.items():
            if k != "source" and _finite(v):
                out.setdefault(k, float(v))
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
    if column in ("speed-up", "time ÷ classical") or column.endswith("vs published"):
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
