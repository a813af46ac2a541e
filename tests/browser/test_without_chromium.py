"""Without Chromium the browser tests are skipped with one line saying how to install it, except in CI,
where each fails: a run of pytest inside the test, with DISPUTES_CHROMIUM naming no file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.browser.support import CHROMIUM_ENV, CI_ENV

ROOT = Path(__file__).parent.parent.parent
TWO_TESTS = "sign_in_page_has_a_button or broken_page_is_only"


def pytest_without_chromium(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    # pytest itself reads CI and BUILD_NUMBER (it stops shortening the summary), so the inner run
    # drops them, and -rN leaves out the summary: each test's message then shows exactly once.
    env = {k: v for k, v in os.environ.items() if k not in {CI_ENV, "CI", "BUILD_NUMBER"}}
    env[CHROMIUM_ENV] = str(tmp_path / "no-chromium-here")
    if ci:
        env[CI_ENV] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/browser/test_pages.py",
            "-p",
            "no:cacheprovider",
            "-rN",
            "-k",
            TWO_TESTS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_chromium_the_tests_are_skipped_with_one_line_saying_how_to_install_it(
    tmp_path: Path,
) -> None:
    run = pytest_without_chromium(tmp_path, ci=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 skipped" in run.stdout
    loud = [line for line in run.stdout.splitlines() if "apt-get install chromium" in line]
    assert len(loud) == 1, run.stdout
    assert loud[0].startswith("!") and "2 browser tests SKIPPED" in loud[0]


def test_in_ci_without_chromium_every_browser_test_fails_saying_so(tmp_path: Path) -> None:
    run = pytest_without_chromium(tmp_path, ci=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed" in run.stdout
    assert run.stdout.count("Chromium is missing") == 2, run.stdout
    assert "apt-get install chromium" in run.stdout
