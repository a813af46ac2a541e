"""The browser tests' machinery, shared with `make screenshots` (scripts/screenshots.py): finding Chromium,
the real app served on a loopback port, a page that watches for console errors, and the checks every
page must pass (axe-core's WCAG 2.2 A and AA rules, reflow at 320 CSS pixels). Nothing here needs pytest.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import httpx2 as httpx
import uvicorn
from axe_playwright_python.base import AXE_SCRIPT  # axe-core as the package ships it (version: line 1)
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Response,
    ViewportSize,
    expect,
)
from sqlalchemy import select

from api.app import Mode, create_app
from api.web.errors import error_page
from api.web.render import environment, security_headers
from api.web.signin import SESSION_COOKIE
from dispute_service.clock import Clock, utc_now
from dispute_service.config import Settings
from dispute_service.database import make_engine, make_session_factory, upgrade
from dispute_service.demo import load_demo
from dispute_service.models import AuditText, Dispute
from notifications import links
from tests.factories import TEST_SECRET
from tests.mail import Mailbox
from tests.pages import SESSION_SECRET
from tests.processes import free_port, wait_until

# ---------------------------------------------------------------------------------------------- Chromium

CHROMIUM_ENV = "DISPUTES_CHROMIUM"
CI_ENV = "DISPUTES_CI"
INSTALL_HINT = (
    "browser tests SKIPPED: no Chromium found. Install it (Debian, Ubuntu: `apt-get install chromium`) "
    f"or set {CHROMIUM_ENV} to its path"
)


def find_chromium() -> str | None:
    """Chromium to drive: $DISPUTES_CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH. Playwright's
    own browser builds are never used (they are downloaded, and nothing may be downloaded here)."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        return named if os.path.isfile(named) and os.access(named, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def missing_chromium_message() -> str:
    named = os.environ.get(CHROMIUM_ENV)
    where = f"{CHROMIUM_ENV}={named} is not an executable file" if named else "no chromium on PATH"
    return f"Chromium is missing ({where}): `apt-get install chromium`, or set {CHROMIUM_ENV}"


def launch(playwright: Playwright, executable: str) -> Browser:
    # --no-sandbox: CI and these machines run as root, where Chromium's sandbox will not start.
    return playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])


# ----------------------------------------------------------------------------------------------- The app

# The demo people the pages are checked as (dispute_service/demo.py).
IRO = "iro@example.gov.uk"
TEAM_MANAGER = "tm@example.gov.uk"

# A page that breaks WCAG on purpose (an input without a label), mounted on the test app only, so a test
# can show that `assert_accessible` does fail.
BROKEN_PATH = "/test-only/broken"
_BROKEN = """{% extends "web/base.html" %}
{% block content %}
<h1 class="govuk-heading-l">Broken on purpose</h1>
<form method="get" action="/test-only/broken">
  <input class="govuk-input" type="text" name="nameless">
</form>
{% endblock %}"""


FAILING_PATH = "/test-only/fails"


def _mount_test_only_pages(app: FastAPI) -> None:
    @app.get("/test-only/error/{status}", include_in_schema=False)
    async def error(request: Request, status: int) -> HTMLResponse:
        # The error page as a refusal draws it, for a status a browser cannot easily be made to meet
        # (a rate limit's 429, a form's 413); the real 413 is met by a test sending a form too big.
        return error_page(request, status, "What the service says about it.")

    @app.get(FAILING_PATH, include_in_schema=False)
    async def fails() -> None:
        # A bug, as far as the app can tell: the 500 page is what a person then sees.
        raise RuntimeError("a failure only the test app has")

    @app.get(BROKEN_PATH, include_in_schema=False)
    async def broken(request: Request) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = (
            environment()
            .from_string(_BROKEN)
            .render(
                request=request,
                viewer=None,
                menu=[],
                csp_nonce=nonce,
                csrf_token=None,
                demo=True,
                title="Broken on purpose",
            )
        )
        return HTMLResponse(html, headers=security_headers(nonce, private=False))


@dataclass
class LiveServer:
    """The real app (demo mode, demo data, a fresh migrated SQLite file) served by uvicorn in a thread."""

    url: str
    app: FastAPI
    mailbox: Mailbox
    server: uvicorn.Server
    thread: threading.Thread
    database_url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.mailbox.stop()
        if self.thread.is_alive():
            raise AssertionError("the live server did not stop within 15s")


def live_settings(directory: Path, port: int, smtp_port: int, *, scheduler: bool, **changes: Any) -> Settings:
    # Every setting that changes what a page shows is given, so a DISPUTES_* variable in a developer's
    # shell cannot change the pages under test (sign-in by OpenID, for one).
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{directory / 'browser.db'}",
        "jwt_secret": TEST_SECRET,
        "link_secret": TEST_SECRET,
        "audit_key": TEST_SECRET,
        "session_secret": SESSION_SECRET,
        "oidc_issuer": None,
        "oidc_client_id": None,
        "oidc_client_secret": None,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_starttls": False,
        "smtp_tls": False,
        "public_base_url": f"http://127.0.0.1:{port}",
        "scheduler_enabled": scheduler,
        "log_format": "json",
        # Emails go out as soon as they are queued and the scheduler wakes: a journey waits on the mailbox.
        "dispatch_interval_seconds": 0.5,
        # The tests sign in dozens of times a minute from one address, as no person does.
        "sign_ins_per_client": 10_000,
    }
    return Settings(_env_file=None, **{**values, **changes})  # type: ignore[call-arg]


def start_live_server(
    directory: Path,
    *,
    scheduler: bool = False,
    clock: Clock = utc_now,
    test_only_pages: bool = True,
    ready_within: float = 30.0,
    port: int | None = None,
    settings_changes: dict[str, Any] | None = None,
) -> LiveServer:
    """Migrate a new SQLite file in `directory`, load the demo, and serve the app on a free loopback port
    until `stop()`. Its mail goes to an in-process SMTP server (`.mailbox`); the scheduler (which sends
    it) runs only when asked for."""
    # A port may be chosen beforehand: an OpenID provider needs the redirect URI before the app starts.
    port, smtp_port = port or free_port(), free_port()
    settings = live_settings(directory, port, smtp_port, scheduler=scheduler, **(settings_changes or {}))
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        sessions = make_session_factory(engine, audit_key=settings.audit_key)
        load_demo(sessions, settings.loaded_policy, clock(), audit_key=settings.audit_key)
    finally:
        engine.dispose()

    mailbox = Mailbox(smtp_port)
    mailbox.start()
    app = create_app(settings, mode=Mode.DEMO, clock=clock)
    if test_only_pages:
        _mount_test_only_pages(app)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on", workers=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    live = LiveServer(f"http://127.0.0.1:{port}", app, mailbox, server, thread, settings.database_url)
    thread.start()

    def ready() -> bool:
        if not thread.is_alive():
            raise AssertionError("the live server's thread ended before it was ready (see the log above)")
        try:
            return server.started and httpx.get(f"{live.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        # The limit counts from the start of the thread: a server that hangs in its lifespan fails here.
        wait_until(ready, ready_within, f"the live server on port {port} to answer /readyz")
        styles = httpx.get(f"{live.url}/static/govuk/govuk-frontend.min.css", timeout=5)
        if styles.status_code != 200:
            raise AssertionError(
                "GOV.UK Frontend's files are not served, so every page would be checked unstyled: "
                "run `npm ci` (make test does)"
            )
    except BaseException:
        live.stop()
        raise
    return live


@contextmanager
def live_server(directory: Path, **options: Any) -> Iterator[LiveServer]:
    server = start_live_server(directory, **options)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------- Pages


@dataclass
class Watch:
    """What went wrong in the browser while a page was open: console errors (a refused script or style
    under the content security policy among them), uncaught exceptions, and sub-resources that failed."""

    problems: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        # A document answering 404 on purpose logs "Failed to load resource"; responses are checked below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {message.text}")

    def response(self, response: Response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            self.problems.append(f"{response.status} for {response.request.resource_type} {response.url}")


DESKTOP = ViewportSize(width=1000, height=800)


def new_context(browser: Browser, base_url: str, **options: Any) -> tuple[BrowserContext, Page, Watch]:
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    watch = Watch()
    page.on("console", watch.console)
    page.on("pageerror", lambda error: watch.problems.append(f"uncaught exception: {error}"))
    page.on("response", watch.response)
    page.on("requestfailed", lambda request: watch.problems.append(f"request failed: {request.url}"))
    return context, page, watch


def go(page: Page, path: str, status: int = 200) -> Response:
    """Open `path` and check the status it answered with."""
    response = page.goto(path)
    assert response is not None, f"no response for {path}"
    assert response.status == status, f"{path} answered {response.status}, expected {status}"
    return response


def sign_in_as(page: Page, who: str, next_path: str = "/") -> str:
    """Sign in through the demo sign-in page, as a person named by their name or email, by pressing their
    button, then go on to `next_path`. Returns their email once signed in."""
    go(page, "/sign-in" + (f"?{urlencode({'next': next_path})}" if next_path != "/" else ""))
    button = page.get_by_role(
        "button", name=re.compile(rf"^Sign in as ({re.escape(who)} \(|.* \({re.escape(who)}\)$)", re.I)
    )
    expect(button, f"a demo sign-in button for {who}").to_have_count(1)
    email = button.locator("xpath=ancestor::form").locator("input[name=email]").input_value()
    button.click()
    # Signed in: off the sign-in pages (a refusal shows the sign-in page again), with a session cookie.
    page.wait_for_url(lambda url: not urlsplit(url).path.startswith("/sign-in"))
    assert SESSION_COOKIE in {c["name"] for c in page.context.cookies()}, (
        f"no session after signing in as {who}"
    )
    return email


def sign_out(page: Page) -> None:
    """Sign out with the menu's button (behind the menu toggle on a small screen)."""
    toggle = page.locator(".govuk-service-navigation__toggle")
    if toggle.is_visible() and toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    page.get_by_role("button", name=re.compile(r"^Sign out")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You have signed out")


class Shown(NamedTuple):
    """A page a browser test checks and `make screenshots` shows: its path, its screenshot's name, its
    main heading, and the status it answers with."""

    path: str
    name: str
    heading: str | re.Pattern[str]
    status: int = 200


IRO_MANAGER = "iro.manager@example.gov.uk"
ADMIN = "admin@example.gov.uk"

# Every page, by who is signed in to see it (None: nobody). A new page is one line here: the browser tests
# then open it, check its heading, run axe at desktop width and at 320 px and check it reflows, and
# `make screenshots` writes docs/screenshots/<name>.png. A path may name a demo dispute by its child's
# reference, `{dispute:LCS-100587}`, or an email link a demo dispute's stage owner would get,
# `{link:LCS-100201:respond}`, or the id of a demo dispute's summary text, `{summary:LCS-100587}`:
# `path_for` puts in the id or a freshly issued token.
PAGES: dict[str | None, list[Shown]] = {
    None: [
        Shown("/sign-in", "sign-in", "Sign in"),
        Shown("/accessibility", "accessibility-statement", "Accessibility statement"),
        Shown("/no-such-page", "page-not-found", "Page not found", 404),
        Shown(FAILING_PATH, "error-500", "Sorry, there is a problem with the service", 500),
        Shown("/links/{expired-link:LCS-100201:respond}", "error-410", "Link expired", 410),
        Shown("/test-only/error/429", "error-429", "Too many attempts", 429),
        Shown("/test-only/error/413", "error-413", "Too much was sent", 413),
        Shown("/links/{link:LCS-100201:respond}", "email-link-respond", "Respond to the dispute"),
        Shown("/links/{link:LCS-100342:resolve}", "email-link-resolve", "Resolve the dispute"),
        Shown("/links/done?action=respond", "email-link-done", "Done"),
        Shown("/links/no-such-token", "email-link-unknown", "Link not recognised", 404),
        Shown("/links/renew", "email-link-renew", "Ask for a fresh link"),
    ],
    IRO: [
        Shown("/", "your-disputes-iro", "Your disputes"),
        Shown("/disputes/new", "raise-a-dispute", "Raise a dispute"),
        Shown("/disputes/{dispute:LCS-100587}", "dispute", re.compile(r"DR-\d{4}-0003")),
        Shown("/disputes/{dispute:LCS-100815}", "dispute-resolved", re.compile(r"DR-\d{4}-0005")),
        Shown("/disputes/{dispute:LCS-100733}/actions/escalate", "action-escalate", "Escalate"),
        Shown("/disputes/{dispute:LCS-100587}/actions/hold", "action-hold", "Put on hold"),
        Shown("/disputes/{dispute:LCS-100587}/actions/amend", "action-amend", "Correct the details"),
        Shown("/disputes/{dispute:LCS-100940}", "dispute-partner", re.compile(r"DR-\d{4}-0006")),
        Shown("/disputes/{dispute:LCS-100940}/actions/name_contact", "action-name-contact", "Name a contact"),
        Shown("/disputes/{dispute:LCS-100940}/actions/reassign", "action-reassign-contact", "Reassign"),
        Shown("/people", "error-403", "You cannot do this", 403),
    ],
    TEAM_MANAGER: [
        Shown("/", "your-disputes-team-manager", "Your disputes"),
        Shown("/disputes/{dispute:LCS-100201}/actions/respond", "action-respond", "Respond"),
        Shown("/disputes/{dispute:LCS-100201}/actions/escalate", "error-409", "This cannot be done now", 409),
    ],
    IRO_MANAGER: [
        Shown("/disputes", "all-open-disputes", "All open disputes"),
        Shown(
            "/disputes?sort=raised&stage=quality_assurance", "all-open-disputes-filtered", "All open disputes"
        ),
        Shown("/reports/annual", "annual-report", re.compile(r"Annual report")),
    ],
    ADMIN: [
        Shown("/people", "people", "People"),
        Shown("/people/new", "add-a-person", re.compile(r"Add a person$")),
        Shown("/people/tm@example.gov.uk", "person", re.compile(r"Tara Manager$")),
        Shown("/organisations", "organisations", "Organisations"),
        Shown("/organisations/new", "add-an-organisation", re.compile(r"Add an organisation$")),
        Shown("/organisations/demo_nhs_trust", "organisation", re.compile(r"Demo NHS Trust$")),
        Shown("/contacts/new?organisation=demo_nhs_trust", "add-a-contact", re.compile(r"Add a contact$")),
        Shown("/contacts/nurse@nhs.example", "contact", re.compile(r"Nadia Nurse$")),
        Shown("/disputes/{dispute:LCS-100587}", "dispute-admin", re.compile(r"DR-\d{4}-0003")),
        Shown(
            "/disputes/{dispute:LCS-100587}/actions/redact?text={summary:LCS-100587}",
            "action-redact",
            "Redact a text",
        ),
    ],
}

_PLACE = re.compile(r"\{(dispute|summary|link|expired-link):([A-Za-z0-9._/-]+)(?::(\w+))?\}")


def path_for(shown: Shown, live: LiveServer) -> str:
    """The page's path with its demo dispute's id, or a fresh email link's token, put in."""
    if "{" not in shown.path:
        return shown.path
    # The app's own clock (make screenshots fixes it): a link expires, or not, by the time the app keeps.
    now = live.app.state.clock()
    engine = make_engine(live.database_url, pool_size=1, max_overflow=0)
    try:
        sessions = make_session_factory(engine, audit_key=TEST_SECRET)
        with sessions.begin() as session:

            def put(match: re.Match[str]) -> str:
                kind, child, trigger = match.groups()
                dispute = session.scalars(select(Dispute).where(Dispute.child_ref == child)).one()
                if kind == "dispute":
                    return str(dispute.id)
                if kind == "summary":
                    summary = select(AuditText.id).where(
                        AuditText.dispute_id == dispute.id, AuditText.kind == "summary"
                    )
                    return str(session.scalars(summary).one())
                # The link its current stage's owner would have been sent.
                return links.issue(
                    session,
                    TEST_SECRET,
                    person_email=dispute.owner_email or dispute.iro_email,
                    dispute=dispute,
                    trigger=trigger,
                    # An expired link ran out yesterday: its page is the 410 page.
                    expires_at=now + timedelta(days=-1 if kind == "expired-link" else 7),
                    now=now,
                )

            return _PLACE.sub(put, shown.path)
    finally:
        engine.dispose()


def every_page() -> list[tuple[str | None, Shown]]:
    return [(person, shown) for person, pages in PAGES.items() for shown in pages]


# ------------------------------------------------------------------------------------------- The checks

# axe-core's tags for WCAG 2.0, 2.1 and 2.2 at levels A and AA. axe has no "wcag22a" (WCAG 2.2 added no
# level-A rule that axe can test), and quietly ignores a tag it does not know, so `assert_accessible`
# checks that each tag names at least one rule.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
    results = page.evaluate("options => axe.run(document, options)", options)
    known = page.evaluate("tags => tags.filter(t => axe.getRules([t]).length === 0)", WCAG_TAGS)
    assert not known, f"axe-core knows no rule tagged {known}: the check would quietly skip them"
    # A run that checked nothing passes nothing: WCAG rules ran, and some passed.
    assert results["passes"], f"axe-core ran no WCAG rule on {page.url}"
    violations: list[dict[str, Any]] = results["violations"]
    return violations


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}: {node['html'][:160]}")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """axe-core's WCAG 2.0, 2.1 and 2.2 level A and AA rules on the page as it is now; any violation
    fails, listing each rule, its impact, what it asks for and where it failed."""
    violations = axe_violations(page)
    assert not violations, (
        f"{len(violations)} accessibility violation(s) on {page.url}:\n{describe_violations(violations)}"
    )


REFLOW_WIDTH = 320
SMALL = ViewportSize(width=REFLOW_WIDTH, height=800)
# A wide data table may scroll sideways inside this region, and only there (api/static/app.css).
SCROLL_REGION = '.app-table-scroll[role="region"][aria-labelledby][tabindex="0"]'

# Everything that sticks out of the viewport, and every box that scrolls sideways but an allowed table
# region. What a box clips or scrolls (the table in its region) cannot widen the page, so is left out.
_OVERFLOW_JS = """
([region]) => {
  const width = document.documentElement.clientWidth;
  const found = [];
  const describe = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.classList.length ? '.' + Array.from(el.classList).join('.') : '');
  const clipped = el => {
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (a === document.body || a === document.documentElement) return false;
      const o = getComputedStyle(a).overflowX;
      if (o !== 'visible') return true;
    }
    return false;
  };
  for (const r of document.querySelectorAll(region)) {
    const label = document.getElementById(r.getAttribute('aria-labelledby'));
    if (!label || !label.textContent.trim()) found.push(describe(r) + ': its aria-labelledby names no text');
  }
  for (const el of document.body.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    const scrolls = ['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
    if (scrolls && !el.matches(region)) found.push(describe(el) + ' scrolls sideways');
    if ((box.right > width + 1 || box.left < -1) && !clipped(el))
      found.push(`${describe(el)} spans ${Math.round(box.left)}..${Math.round(box.right)} px`);
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    if (!t.textContent.trim() || !t.parentElement) continue;
    const range = document.createRange();
    range.selectNodeContents(t);
    const box = range.getBoundingClientRect();
    if ((box.right > width + 1 || box.left < -1) && !clipped(t.parentElement) &&
        getComputedStyle(t.parentElement).overflowX === 'visible')
      found.push(`text "${t.textContent.trim().slice(0, 40)}" in ${describe(t.parentElement)} spans ` +
                 `${Math.round(box.left)}..${Math.round(box.right)} px`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, found: found.slice(0, 20)};
}
"""


def assert_reflows(page: Page) -> None:
    """At 320 CSS pixels wide (WCAG 1.4.10 Reflow), nothing scrolls sideways and nothing sticks out of
    the viewport, except a wide data table inside its labelled, focusable scroll region. The viewport is
    put back afterwards."""
    before = page.viewport_size
    page.set_viewport_size(SMALL)
    try:
        result = page.evaluate(_OVERFLOW_JS, [SCROLL_REGION])
    finally:
        if before is not None:
            page.set_viewport_size(before)
    problems = list(result["found"])
    if result["scrollWidth"] > REFLOW_WIDTH:
        problems.insert(0, f"the page is {result['scrollWidth']} px wide")
    assert not problems, f"{page.url} does not reflow at {REFLOW_WIDTH} px:\n- " + "\n- ".join(problems)


def check_page(page: Page) -> None:
    """The checks every page passes: axe at desktop width and at 320 px, and reflow at 320 px."""
    assert_accessible(page)
    assert_reflows(page)
    before = page.viewport_size
    page.set_viewport_size(SMALL)
    try:
        assert_accessible(page)
    finally:
        if before is not None:
            page.set_viewport_size(before)
