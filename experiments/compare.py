"""Compare the runs of a sweep offline: tables per problem and speed-vs-accuracy plots.

    python experiments/compare.py multirun/2026-11-26/10-00-00 [--out DIR]

Writes report.md, report.html and <problem>_speed_accuracy.png into --out (default: the sweep
folder) and prints the tables. Works on a single run folder and on nested sweeps too.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

try:
    import dinf  # noqa: F401
except ImportError:  # run as a script from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dinf.report import load_runs, markdown_tables, write_report


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a sweep folder (or a single run folder)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: FOLDER)")
    args = parser.parse_args(argv)
    try:
        runs = load_runs(args.folder)
        if not runs:
            raise ValueError(f"no runs found under {args.folder} (no folder with metrics.json, train.log or .hydra/)")
        md = write_report(args.folder, args.out, runs=runs)
    except (FileNotFoundError, ValueError) as e:
        print(f"compare.py: error: {e}", file=sys.stderr)
        return 2
    print(markdown_tables(runs))
    print(f"\nwrote {md} and {md.with_name('report.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
