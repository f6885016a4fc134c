"""Offline comparison of a sweep: one table per problem and speed-vs-accuracy plots.

Reads the folders a Hydra (multi)run leaves behind (``metrics.json``, ``.hydra/``, ``train.log``,
``run_state.json``, ``resumed.json``) without network or wandb, so it also works on a copied or
archived sweep and inside a Hydra callback. Importing it has no side effects.
``runs`` reads the folders, ``tables`` ranks and compares, ``render`` writes the report.
"""
from dinf.report.render import plot_problem, render_html, render_markdown, write_report
from dinf.report.runs import Run, load_runs
from dinf.report.tables import SPEED_UP_DEFINITION, formatted, group_primary, markdown_tables, sort_runs, speed_up, tables

__all__ = ["Run", "load_runs", "tables", "speed_up", "markdown_tables", "group_primary", "sort_runs", "formatted",
           "SPEED_UP_DEFINITION", "plot_problem", "render_markdown", "render_html", "write_report"]
