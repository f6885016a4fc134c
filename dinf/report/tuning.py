"""The report's "tuned against default" table: for each Optuna study of a sweep (``hydra/sweeper=optuna``
writes ``optuna_trials.json`` into the sweep folder), its default trial (trial 0) beside its best."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dinf.report.runs import PathLike, Run, _finite
from dinf.report.tables import _md_table, formatted

TRIALS_FILE = "optuna_trials.json"
COLUMNS = ["problem", "study", "metric", "default", "default train time (s)", "tuned", "tuned train time (s)",
           "tuned ÷ default", "trials", "tuned run", "tuned settings"]
HEADING = "Tuned against default (Optuna)"
DEFINITION = (
    "One row per Optuna study (`optuna_trials.json`): **default** is the final metric of trial 0, the "
    "model's own settings under the sweep's budget; **tuned** the best completed trial's (the default "
    "itself if none beat it). **tuned ÷ default**: how many times better the tuned value is (default ÷ "
    "tuned when lower is better). **trials**: completed / run; a failed trial (an error or a non-finite "
    "metric) counts as run. Train times are the runs' own (`train_time_s`), without start-up and scoring."
)


def load_trials(folder: PathLike) -> Optional[Dict[str, Any]]:
    """The sweep's ``optuna_trials.json``, or None when it has none (not an Optuna sweep)."""
    try:
        data = json.loads((Path(folder) / TRIALS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("studies"), list) else None


def _value(trial: Optional[Dict[str, Any]]) -> Optional[float]:
    v = None if trial is None else trial.get("value")
    return float(v) if trial is not None and trial.get("state") == "COMPLETE" and _finite(v) else None


def _setting(params: Dict[str, Any]) -> str:
    """The parameters as overrides, floats to 3 digits."""
    def text(v: Any) -> str:
        if v is None or isinstance(v, bool):
            return {None: "null", True: "true", False: "false"}[v]
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return " ".join(f"{k}={text(v)}" for k, v in params.items())


def tuning_table(folder: PathLike, runs: Sequence[Run]) -> Optional[Tuple[List[str], List[List[Any]]]]:
    """Columns and rows (raw values; None where there is nothing to show), or None without trials."""
    data = load_trials(folder)
    if data is None:
        return None
    by_name = {r.name: r for r in runs}
    maximize = data.get("direction") == "maximize"
    rows = []
    for study in data["studies"]:
        trials = [t for t in study.get("trials") or [] if isinstance(t, dict)]
        default = next((t for t in trials if t.get("default")), None)
        done = [t for t in trials if _value(t) is not None]
        best = (max if maximize else min)(done, key=_value) if done else None
        if best is not None and default is not None and _value(default) is not None and _value(default) == _value(best):
            best = default  # a tie goes to the default: tuning found nothing better
        run_of = lambda t: by_name.get(str(t.get("run"))) if t else None  # noqa: E731
        known = next((r for r in map(run_of, [default, best, *trials]) if r is not None), None)
        metric = data.get("metric") or (known.primary if known else None)
        d, b = _value(default), _value(best)
        ratio = None
        if d is not None and b is not None and b != 0 and d != 0:
            ratio = b / d if maximize else d / b
        time_of = lambda t: run_of(t).train_time_s if run_of(t) is not None else (t or {}).get("train_time_s")  # noqa: E731
        settings = "(the default)" if best is not None and best is default else _setting(best["params"]) if best else ""
        rows.append([known.problem if known else "?", study.get("name"), metric, d, time_of(default), b, time_of(best),
                     None if ratio is None else f"{ratio:.3g}×", f"{len(done)}/{len(trials)}",
                     None if best is None else best.get("run"), settings])
    return COLUMNS, rows


def tuning_markdown(folder: PathLike, runs: Sequence[Run]) -> Optional[str]:
    table = tuning_table(folder, runs)
    if table is None:
        return None
    return f"## {HEADING}\n\n{_md_table(*table)}\n\n{DEFINITION}"


def tuning_html(folder: PathLike, runs: Sequence[Run]) -> Optional[str]:
    table = tuning_table(folder, runs)
    if table is None:
        return None
    columns, rows = table
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    text = {"problem", "study", "metric", "tuned run", "tuned settings", "trials"}
    trs = "".join("<tr>" + "".join(f'<td class="{"text" if c in text else "num"}">{html.escape(v)}</td>'
                                   for c, v in zip(columns, cells)) + "</tr>" for cells in formatted(columns, rows))
    return (f"<h2>{html.escape(HEADING)}</h2><table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>"
            f"<p>{_inline(DEFINITION)}</p>")


def _inline(text: str) -> str:
    """The definition's Markdown (bold, code) as HTML."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)
