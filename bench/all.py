"""Issue 11's benchmarks in one run and one table: what `make bench` runs.

Runs bench/api.py, bench/timers.py and bench/report.py one after another (never two at once: they share
the machine's cores), each writing its figures to a JSON file, and prints one table of every figure beside
its target. The default sizes finish in 13 to 15 minutes on the project's 2-core machine:

    .venv/bin/python bench/all.py            # api.py; timers.py 2,000 deadlines over 20 s; report.py 200,000
    .venv/bin/python bench/all.py --quick    # about 4 minutes, for developing
    .venv/bin/python bench/all.py --full     # the full sizes: api.py --full; 10,000 over 60 s; 1,000,000

PostgreSQL is `DISPUTES_TEST_POSTGRES_URL` (or --postgres), by default
postgresql://postgres@127.0.0.1:5432/test; when it cannot be reached, every PostgreSQL figure is skipped,
with a loud line before the run and a line in the table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
# Each bench's own arguments, by size.
SIZES: dict[str, dict[str, list[str]]] = {
    "quick": {
        "api": ["--quick"],
        "timers": ["--count", "500", "--window", "10"],
        "report": ["--count", "50000", "--runs", "3"],
    },
    "default": {
        "api": [],
        "timers": ["--count", "2000", "--window", "20"],
        "report": ["--count", "200000", "--runs", "3"],
    },
    "full": {"api": ["--full"], "timers": [], "report": []},
}


def bench_api() -> ModuleType:
    """bench/api.py, for its table and its PostgreSQL check (by path: its name is the project's `api`)."""
    spec = importlib.util.spec_from_file_location("bench_api", BENCH / "api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run(name: str, args: list[str], out: Path) -> tuple[dict[str, Any] | None, float]:
    """Run one bench, its output shown as it comes; its figures, or None if it failed, and its minutes."""
    argv = [sys.executable, str(BENCH / f"{name}.py"), *args, "--json", str(out)]
    print(f"\n=== {' '.join(argv[1:])}", flush=True)
    started = time.perf_counter()
    code = subprocess.call(argv)
    minutes = (time.perf_counter() - started) / 60
    if code != 0 or not out.exists():
        print(f"=== bench/{name}.py FAILED (exit {code})", flush=True)
        return None, minutes
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures, minutes


def timer_rows(api: ModuleType, figures: dict[str, Any]) -> list[Any]:
    rows = []
    for r in figures["results"]:
        label = r["database"]
        rows.append(
            api.Row(
                f"timers: lateness p50 / p99 / max, {r['count']:,} over {r['window_s']:g} s",
                label,
                f"{r['p50_s']:.3f} / {r['p99_s']:.3f} / {r['max_s']:.3f} s",
            )
        )
        lost = r["missed"] + r["duplicated"] + r["catch_up_missed"] + r["catch_up_duplicated"]
        rows.append(
            api.Row(
                "timers: missed / duplicated escalations",
                label,
                f"{r['missed'] + r['catch_up_missed']} / {r['duplicated'] + r['catch_up_duplicated']}",
                "0 / 0 (exactly once)",
                api.verdict(lost == 0),
            )
        )
        rows.append(
            api.Row(
                f"timers: catch-up of {r['count']:,} passed deadlines",
                label,
                f"{r['catch_up_s']:.1f} s ({r['count'] / r['catch_up_s']:.0f}/s)",
            )
        )
    return rows


def report_rows(api: ModuleType, figures: dict[str, Any]) -> list[Any]:
    rows = []
    for r in figures["results"]:
        for year in r["years"]:
            rows.append(
                api.Row(
                    f"report: {figures['count']:,} disputes, {year['label']}: first / median",
                    r["database"],
                    f"{year['first_s']:.3f} / {year['median_s']:.3f} s (max {year['max_s']:.3f})",
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--full", action="store_true")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DISPUTES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    api = bench_api()
    chosen = "quick" if args.quick else "full" if args.full else "default"
    only = args.only
    rows: list[Any] = []
    notes: list[str] = []
    if only != "sqlite":
        problem = api.postgres_problem(args.postgres)
        if problem:
            banner = "!" * 100
            print(f"{banner}\n!!! PostgreSQL at {args.postgres} is unreachable ({problem}).")
            print("!!! SKIPPING every PostgreSQL figure: start it, or set DISPUTES_TEST_POSTGRES_URL.")
            print(banner)
            if only == "postgres":
                raise SystemExit(1)
            only = "sqlite"
            rows.append(
                api.Row("every figure", "postgres", f"NOT RUN: unreachable ({problem})", "", "missed")
            )
    common = ["--postgres", args.postgres] + (["--only", only] if only else [])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        for name, to_rows in (("api", None), ("timers", timer_rows), ("report", report_rows)):
            figures, minutes = run(name, SIZES[chosen][name] + common, Path(tmp) / f"{name}.json")
            notes.append(
                f"bench/{name}.py {' '.join(SIZES[chosen][name]) or '(its defaults)'}: {minutes:.1f} min"
            )
            if figures is None:
                rows.append(api.Row(f"bench/{name}.py", "", "FAILED: see its output above", "", "missed"))
            elif to_rows is None:
                rows.extend(api.Row(**row) for row in figures["rows"])
                notes[-1:-1] = [n for n in figures["notes"] if not n.startswith("bench/api.py took")]
            else:
                rows.extend(to_rows(api, figures))
    total = (time.perf_counter() - started) / 60
    notes.append(f"in all {total:.1f} min")
    missed = sum(r.verdict in ("missed", "invalid") for r in rows)
    title = f"make bench ({chosen}): issue 11's figures; {missed} missed or invalid"
    api.print_table(rows, notes, title)


if __name__ == "__main__":
    main()
