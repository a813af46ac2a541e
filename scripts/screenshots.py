"""`make screenshots`: a PNG of every page in tests/browser/support.py's PAGES, and of the signed-out page,
in docs/screenshots/, each at desktop width (1000 CSS px), the full length of the page, signed in as the
demo person the page is for. The same server and browser code as the browser tests, on the demo data at
a fixed time, so the pictures change only when the pages do.

    .venv/bin/python -m scripts.screenshots [--out docs/screenshots]

Needs Chromium (`apt-get install chromium`, or DISPUTES_CHROMIUM) and `npm ci` for GOV.UK Frontend.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import structlog
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser import support

ROOT = Path(__file__).parent.parent
# A Tuesday morning, so the demo's due dates and tags read the same on every run.
FIXED_NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
# GOV.UK pages are a few flat colours and anti-aliased text: 64 colours look the same at a third the size.
COLOURS = 64


def save(page: Page, path: Path) -> int:
    png = page.screenshot(full_page=True, animations="disabled", caret="hide")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    return path.stat().st_size


@contextmanager
def fresh_page(browser: Browser, base_url: str) -> Iterator[Page]:
    context, page, watch = support.new_context(browser, base_url)
    try:
        yield page
        assert not watch.problems, f"{page.url}: {watch.problems}"
    finally:
        context.close()


def shoot(browser: Browser, live: support.LiveServer, out: Path) -> list[tuple[str, int]]:
    base_url = live.url
    written = []
    for person, shown in support.every_page():
        with fresh_page(browser, base_url) as page:
            if person is not None:
                support.sign_in_as(page, person)
            support.go(page, support.path_for(shown, live), shown.status)
            written.append((shown.name, save(page, out / f"{shown.name}.png")))
    # The signed-out page answers the sign-out form, so it has no address of its own.
    with fresh_page(browser, base_url) as page:
        support.sign_in_as(page, support.IRO)
        support.sign_out(page)
        written.append(("signed-out", save(page, out / "signed-out.png")))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    chromium = support.find_chromium()
    if chromium is None:
        print(f"make screenshots: {support.missing_chromium_message()}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    # The server's events are for the tests' logs; here only its warnings and errors are shown.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as directory,
        # The test-only pages too: the 500 page is shown by a route that fails on purpose.
        support.live_server(Path(directory), clock=lambda: FIXED_NOW) as live,
        sync_playwright() as playwright,
    ):
        browser = support.launch(playwright, chromium)
        try:
            written = shoot(browser, live, args.out)
        finally:
            browser.close()
    for name, size in written:
        print(f"{args.out / name}.png  {size // 1024} KiB")
    print(f"{len(written)} screenshots in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
