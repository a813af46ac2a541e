"""Browser tests: the real app served on a loopback port, driven by Debian's Chromium through Playwright,
each page checked with axe-core and at 320 CSS pixels (tests/browser/support.py does the work).

Every test here is marked `slow` and `browser`, so `make test-fast` leaves them out and `make test` runs
them. Without Chromium they are skipped, with one line at the end of the run saying how to install it,
except in CI (DISPUTES_CI set), where each of them fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser import support

HERE = Path(__file__).parent
CHROMIUM = support.find_chromium()
_skipped: list[str] = []


def _here(item: pytest.Item) -> bool:
    return HERE in Path(item.path).parents


class ChromiumMissing(pytest.Item):
    """Stands in for a browser test in CI when there is no Chromium: it fails, saying so."""

    def runtest(self) -> None:
        pytest.fail(support.missing_chromium_message(), pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m "not slow"` sees the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for i, item in enumerate(items):
        if not _here(item):
            continue
        item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.browser)
        if CHROMIUM is None and os.environ.get(support.CI_ENV):
            assert item.parent is not None
            stand_in = ChromiumMissing.from_parent(item.parent, name=item.name)
            stand_in.own_markers.extend(item.own_markers)
            stand_in.keywords.update(dict(item.keywords))
            items[i] = stand_in


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if CHROMIUM is None and _here(item) and not isinstance(item, ChromiumMissing):
        _skipped.append(item.nodeid)
        pytest.skip("no Chromium (the line of ! above says how to install it)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_sep("!", f"{len(_skipped)} {support.INSTALL_HINT}", yellow=True, bold=True)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.LiveServer]:
    """The app in demo mode with the demo data, on a free loopback port; one per test module, so a module's
    journeys change only its own data. Start another with `support.live_server(dir, scheduler=True)`."""
    with support.live_server(tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM is not None
    browser = support.launch(playwright, CHROMIUM)
    yield browser
    browser.close()


@pytest.fixture
def watched(browser: Browser, live_server: support.LiveServer) -> Iterator[tuple[Page, support.Watch]]:
    """A page in a context of its own (no cookies from other tests) at desktop width, with the live server
    as its base URL, and what went wrong in it."""
    context, page, watch = support.new_context(browser, live_server.url)
    yield page, watch
    context.close()


@pytest.fixture
def page(watched: tuple[Page, support.Watch]) -> Iterator[Page]:
    """A page (see `watched`). A console error, an uncaught exception or a failed sub-resource while the test
    ran fails it."""
    page, watch = watched
    yield page
    if watch.problems:
        pytest.fail("the browser reported problems:\n- " + "\n- ".join(watch.problems), pytrace=False)
