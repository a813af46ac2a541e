"""bench/report.py at a tiny size, so that a change to the schema that the bench's bulk load does not
follow fails here rather than the next time someone measures (its COPY names every column of disputes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent.parent


def test_the_report_bench_loads_a_small_history_and_times_the_report(backend: str, tmp_path: Path) -> None:
    """On PostgreSQL the bench reads DISPUTES_TEST_POSTGRES_URL and makes a scratch database of its own."""
    figures = tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            "bench/report.py",
            "--count",
            "2000",
            "--years",
            "2",
            "--runs",
            "1",
            "--only",
            backend,
            "--json",
            str(figures),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"[{backend}] loaded 2,000 disputes" in run.stdout
    found = json.loads(figures.read_text())
    assert (found["bench"], found["count"], found["years"]) == ("report", 2000, 2)
    [result] = found["results"]
    assert (result["database"], result["disputes"]) == (backend, 2000)
    # The report for a year of the history: a thousand disputes raised, as the history was made.
    assert "2024-25: first run" in run.stdout and "raised 1,000" in run.stdout, run.stdout
