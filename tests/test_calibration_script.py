"""experiments/calibration.py: the table it prints from its seeds' runs."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "calibration.py"
_spec = importlib.util.spec_from_file_location("calibration", _PATH)
calibration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calibration)


def test_the_table_counts_the_intervals_that_hold_the_truth():
    rows = [{"seed": k, "seconds": 1.0, "lam": {"value": 2.0 + e, "std": 0.1, "truth": 2.0}}
            for k, e in enumerate((0.05, -0.15, 0.25, -0.1))]  # errors of 0.5, 1.5, 2.5 and 1 σ
    header, rule, line = calibration.summary(rows)
    assert header.count("|") == 6 and rule == "|---|---|---|---|---|"
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:3] == ["lam", "3/4", f"{(sum(v * v for v in (0.5, 1.5, 2.5, 1.0)) / 4) ** 0.5:.2f}"]
    assert cells[3] == "5.00e-02" and abs(float(cells[4]) - 0.55 / 4 / 2) < 1e-4  # mean |error| / truth
