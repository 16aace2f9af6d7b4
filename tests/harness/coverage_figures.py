"""Line and branch figures of a coverage data file, for the harness's summary lines.

coverage's own ``--format=total`` mixes lines and branches into one number once branch coverage is
on; the floors were set on lines, so the harness keeps its floor on the line figure and reports the
branch figure beside it. Usage: coverage_figures.py [--rcfile F] [--include PATTERN] -> "LINES BRANCHES"
(percentages with one decimal; COVERAGE_FILE names the data file, as for coverage itself).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import coverage


def figures(rcfile: str | None, include: str | None) -> tuple[float, float]:
    cov = coverage.Coverage(data_file=os.environ.get("COVERAGE_FILE", ".coverage"), config_file=rcfile or True)
    cov.load()
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "report.json")
        cov.json_report(outfile=out, include=[include] if include else None)
        with open(out) as handle:
            totals = json.load(handle)["totals"]
    lines = 100.0 * totals["covered_lines"] / totals["num_statements"] if totals["num_statements"] else 100.0
    branches = 100.0 * totals.get("covered_branches", 0) / totals["num_branches"] if totals.get("num_branches") else 100.0
    return lines, branches


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rcfile")
    parser.add_argument("--include")
    args = parser.parse_args()
    lines, branches = figures(args.rcfile, args.include)
    # Truncated, not rounded, so a figure never reads as meeting a floor it misses.
    print("%.1f %.1f" % (int(lines * 10) / 10.0, int(branches * 10) / 10.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
