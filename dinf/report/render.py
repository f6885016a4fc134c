"""The report on disk: ``report.md``, a self-contained ``report.html`` and one speed-vs-accuracy
plot per problem. matplotlib is loaded lazily and used without pyplot (no global backend)."""
from __future__ import annotations

import base64
import html
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from dinf.report.runs import _STATUS_RANK, PathLike, Run, _finite, _groups, load_runs
from dinf.report.tuning import tuning_html, tuning_markdown
from dinf.report.tables import CLASSICAL_DEFINITION, SPEED_UP_DEFINITION, _heading, _md_table, formatted, group_primary, sort_runs, tables

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
            solves = sorted(p for p in pts if p[0] > 0) if r.classical else []
            if solves:  # a refinement sequence: its error-against-time curve, by time
                ax.plot(*zip(*solves), marker="s", markersize=4, linestyle="-.", label=f"{r.label} (refinements)")
                ys += [y for _, y in solves]
            elif pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, label=r.label)
                ys += [y for _, y in pts]
        published = next((float(r.published[metric]) for r in group if _finite(r.published.get(metric))), None)
        if published is not None:  # a published result for this metric (e.g. PINNacle's best)
            ax.axhline(published, color="k", linestyle="--", linewidth=1, label="published")
            ys.append(published)
        # symlog keeps the t = 0 validation (the starting point) on an otherwise logarithmic axis.
        if positive_times:
            ax.set_xscale("symlog", linthresh=min(positive_times))
        if m == "min" and ys and min(ys) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("training time (s)")
        ax.set_ylabel(f"{metric} ({'higher' if m == 'max' else 'lower'} is better)")
        ax.set_title(f"{problem}: {metric}" + (" (primary)" if metric == primary else ""))
        ax.grid(True, which="both", alpha=0.3)
    handles: dict = {}
    for ax in axes:  # every axis's entries once (the published line may be on one metric only)
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=8)
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
        CLASSICAL_DEFINITION,
        "**final / best**: the primary metric at the end of training / the best over the validations; the "
        "other metric columns are final values. **time to X (s)**: training time at the first validation "
        "that met the target (– if never). **overrides**: the settings that differ between the runs of a "
        "problem (also the plot legend). **it/s**: training steps per second of training time. "
        "**published m**: a result published for the same problem (the problem file's `published`, e.g. "
        "PINNacle's best L2RE); **m vs published**: how many times better than it the run's final m is "
        "(published ÷ final for a lower-is-better metric; below 1× is worse).",
        "Plots: metrics against training time (symmetric-log x-axis, linear below the smallest positive "
        "time so that the starting point at t = 0 shows), one marker per validation; a classical solver's "
        "refinements are one dash-dotted line, each square one solve timed alone.",
    ]


def render_markdown(folder: PathLike, runs: Sequence[Run], images: Dict[str, str]) -> str:
    parts = [f"# Sweep report: `{folder}`", _summary(runs)]
    tuned = tuning_markdown(folder, runs)  # an Optuna sweep's tuned against default
    parts += [tuned] if tuned else []
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
    tuned = tuning_html(folder, runs)  # an Optuna sweep's tuned against default
    body += [tuned] if tuned else []
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
