"""`make bench`: every benchmark at sizes that finish in about 15 minutes here, then one table.

    .venv/bin/python bench/all.py            # what `make bench` runs
    .venv/bin/python bench/all.py --full     # the full sizes: 10,000 timers over 60 s, 1,000,000 disputes

Each bench also runs on its own (see its docstring); this runs them one after another, never two at once,
so none measures with another's load on the machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import print_table, read  # noqa: E402  (a sibling module: bench/ is not a package)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the full sizes (about an hour)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    only = ["--only", args.only] if args.only else []
    sizes = {
        "api.py": [] if args.full else [],
        "timers.py": [] if args.full else ["--count", "2000", "--window", "20"],
        "report.py": [] if args.full else ["--count", "100000", "--runs", "3"],
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.jsonl"
        for script, extra in sizes.items():
            print(f"\n== bench/{script} {' '.join(extra + only)}", flush=True)
            subprocess.run(
                [sys.executable, str(HERE / script), *extra, *only, "--results", str(results)], check=True
            )
        minutes = (time.perf_counter() - started) / 60
        print(f"\n== every bench, {time.strftime('%Y-%m-%d')}, in {minutes:.0f} minutes")
        print_table(read(results))


if __name__ == "__main__":
    main()
