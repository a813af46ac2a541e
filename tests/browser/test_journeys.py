"""Whole journeys through the pages in Chromium, as the people they are for make them: an IRO raises a
dispute through the form (errors first), the team manager answers, the IRO escalates and the next
manager resolves; a manager follows the link in a real email; the dashboards and the report; signing in
through a real OpenID provider; and raising and answering with the keyboard alone. axe-core and the
320 px reflow check run on each of our pages a journey reaches, in the state it reaches them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import support
from tests.browser.support import (
    ADMIN,
    IRO,
    IRO_MANAGER,
    TEAM_MANAGER,
    check_page,
    go,
    sign_in_as,
    sign_out,
)
from tests.mail import full_text
from tests.oidc_provider import openid_provider
from tests.processes import free_port, wait_until

REFERENCE = re.compile(r"DR-\d{4}-\d{4}")


def _heading(page: Page) -> str:
    return page.get_by_role("heading", level=1).inner_text().strip()


def _raise(page: Page, child_ref: str, summary: str = "The permanence plan has drifted.") -> str:
    """Raise a dispute through the form, signed in as an IRO; the dispute page's path."""
    go(page, "/disputes/new")
    page.get_by_label("Child reference").fill(child_ref)
    page.get_by_label("Looked after child").check()
    page.get_by_label("Permanency delay").check()
    page.get_by_label("Summary", exact=True).fill(summary)
    page.get_by_label("Team manager", exact=True).select_option(TEAM_MANAGER)
    page.get_by_role("button", name="Raise the dispute").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(REFERENCE)
    return urlsplit(page.url).path


def _summary_value(page: Page, key: str) -> str:
    key_cell = page.locator("dt", has_text=re.compile(rf"^\s*{key}\s*$"))
    row = page.locator(".govuk-summary-list__row", has=key_cell)
    return row.locator("dd").inner_text().strip()


def test_an_iro_raises_a_dispute_through_the_form_after_correcting_its_errors(page: Page) -> None:
    sign_in_as(page, IRO)
    go(page, "/disputes/new")
    page.get_by_label("Summary", exact=True).fill("Kept when the form comes back.")
    page.get_by_role("button", name="Raise the dispute").click()
    expect(page).to_have_title(re.compile(r"^Error: Raise a dispute"))
    summary = page.locator(".govuk-error-summary")
    # GOV.UK Frontend moves focus to the summary, so a screen reader announces the errors at once.
    expect(summary).to_be_focused()
    # Child reference, case type, concerns and team manager were left out.
    expect(summary.get_by_role("link")).to_have_count(4)
    check_page(page)
    # Each error links to its field.
    summary.get_by_role("link", name=re.compile("^Child reference")).click()
    expect(page.get_by_label("Child reference")).to_be_focused()
    expect(page.get_by_label("Summary", exact=True)).to_have_value("Kept when the form comes back.")
    page.get_by_label("Child reference").fill("LCS-300001")
    page.get_by_label("Care leaver").check()
    page.get_by_label("Human rights breach", exact=False).check()
    page.get_by_label("Team manager", exact=True).select_option(TEAM_MANAGER)
    page.get_by_role("button", name="Raise the dispute").click()
    # A human rights breach cannot start at the Quality Assurance stage: the rule is shown on its field.
    expect(page.locator("#start_stage-error")).to_contain_text("human_rights_breach concern starts at")
    check_page(page)
    page.get_by_label("Team Manager", exact=True).check()
    page.get_by_label("Reason for starting at a later stage", exact=False).fill("Rights at stake.")
    page.get_by_role("button", name="Raise the dispute").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(REFERENCE)
    expect(page.locator(".govuk-notification-banner")).to_contain_text("raised")
    assert _summary_value(page, "Stage") == "Team Manager"
    assert _summary_value(page, "Child reference") == "LCS-300001"
    check_page(page)


def test_the_team_manager_answers_the_iro_escalates_and_the_next_manager_resolves(page: Page) -> None:
    sign_in_as(page, IRO)
    dispute = _raise(page, "LCS-300002")
    sign_out(page)

    sign_in_as(page, "Tara Manager")
    go(page, "/")
    page.get_by_role("link", name=_reference_of(page, "LCS-300002")).click()
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Done: acknowledge")
    page.get_by_role("link", name="Respond").click()
    check_page(page)
    page.get_by_label("Your response").fill("A planning meeting is booked for next week.")
    page.get_by_role("button", name="Respond").click()
    assert _summary_value(page, "State") == "Responded"
    check_page(page)
    sign_out(page)

    sign_in_as(page, IRO)
    go(page, dispute)
    page.get_by_role("link", name="Escalate").click()
    page.get_by_label("Your reason").fill("No date for the final hearing.")
    page.get_by_role("button", name="Escalate").click()
    assert _summary_value(page, "Stage") == "Team Manager"
    sign_out(page)

    sign_in_as(page, TEAM_MANAGER)
    go(page, dispute)
    page.get_by_role("link", name="Resolve").click()
    page.get_by_label("What was agreed").fill("The plan now names a date.")
    page.get_by_label("Plan changed").check()
    page.get_by_role("button", name="Resolve").click()
    assert _summary_value(page, "State") == "Resolved"
    # The timeline, newest first, tells the whole story.
    timeline = page.locator(".app-timeline")
    expect(timeline.locator("h3")).to_have_text(
        ["Resolved", "Escalated", "Responded", "Acknowledged", "Raised the dispute"]
    )
    expect(timeline).to_contain_text("A planning meeting is booked for next week.")
    check_page(page)


def _reference_of(page: Page, child_ref: str) -> str:
    row = page.locator("tr", has=page.locator("td", has_text=re.compile(rf"^\s*{child_ref}\s*$")))
    return row.get_by_role("link").inner_text().strip()


def test_a_stale_form_shows_the_dispute_changed_page(
    browser: Browser, live_server: support.LiveServer
) -> None:
    iro_context, iro, _ = support.new_context(browser, live_server.url)
    tm_context, tm, _ = support.new_context(browser, live_server.url)
    try:
        sign_in_as(iro, IRO)
        dispute = _raise(iro, "LCS-300003")
        go(iro, dispute + "/actions/escalate")
        sign_in_as(tm, TEAM_MANAGER)
        go(tm, dispute)
        tm.get_by_role("button", name="Acknowledge").click()
        expect(tm.locator(".govuk-notification-banner")).to_contain_text("Done")
        # The IRO sends the form they opened before the team manager acted.
        iro.get_by_label("Your reason").fill("Going up.")
        iro.get_by_role("button", name="Escalate").click()
        expect(iro.get_by_role("heading", level=1)).to_have_text("This dispute changed")
        expect(iro.locator(".app-timeline")).to_contain_text("Acknowledged")
        assert _summary_value(iro, "Stage").startswith("Quality Assurance")
        check_page(iro)
    finally:
        iro_context.close()
        tm_context.close()


def test_all_open_disputes_filters_and_sorts_and_the_report_page_downloads(page: Page) -> None:
    sign_in_as(page, IRO_MANAGER)
    go(page, "/disputes")
    total = page.locator("p", has_text=re.compile(r"open disputes? found")).inner_text()
    page.get_by_label("Stage").select_option(label="Head of Corporate Parenting")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("p", has_text=re.compile("found"))).to_have_text("1 open dispute found.")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("LCS-100587")
    check_page(page)
    page.get_by_label("Stage").select_option(label="Any stage")
    page.get_by_label("Overdue only").check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("p", has_text=re.compile("found"))).to_have_text("0 open disputes found.")
    page.get_by_label("Overdue only").uncheck()
    page.get_by_label("Sort by").select_option("raised")
    page.get_by_role("button", name="Apply filters").click()
    assert page.locator("p", has_text=re.compile("found")).inner_text() == total
    assert "sort=raised" in page.url

    go(page, "/reports/annual")
    chart = page.locator("img[src*='chart.svg']")
    expect(chart).to_have_attribute("alt", re.compile(r"\w+"))
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0"), "the chart did not load"
    check_page(page)
    # The downloads, fetched with the page's own session as the browser would (a click would download).
    for name, media in (("CSV", "text/csv"), ("SVG", "image/svg+xml")):
        href = page.get_by_role("link", name=re.compile(name)).first.get_attribute("href")
        assert href, f"no {name} link"
        answer = page.request.get(href)
        assert answer.status == 200 and answer.headers["content-type"].startswith(media), (
            name,
            answer.status,
        )


def test_an_admin_changes_roles_on_the_people_page_and_a_refusal_is_shown_on_the_form(page: Page) -> None:
    sign_in_as(page, ADMIN)
    go(page, "/people/admin@example.gov.uk")
    # The last admin cannot give up the role: the page says so on the form.
    page.get_by_label("IRO manager", exact=False).check()
    page.get_by_label("Admin", exact=True).uncheck()
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    expect(page.locator(".govuk-error-summary")).to_contain_text("admin")
    check_page(page)


@pytest.fixture(scope="module")
def mailing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.LiveServer]:
    """A live server whose scheduler sends the emails, to the in-process SMTP server."""
    with support.live_server(tmp_path_factory.mktemp("mailing"), scheduler=True) as server:
        yield server


def test_a_manager_follows_the_link_in_a_real_email_and_responds(
    browser: Browser, mailing_server: support.LiveServer
) -> None:
    context, page, watch = support.new_context(browser, mailing_server.url)
    try:
        sign_in_as(page, IRO)
        _raise(page, "LCS-300004")
        reference = _heading(page)
    finally:
        context.close()

    def emailed() -> bool:
        return any(reference in str(m["Subject"]) for m in mailing_server.mailbox.to(TEAM_MANAGER))

    wait_until(emailed, 30, f"the team manager's email about {reference}")
    [message] = [m for m in mailing_server.mailbox.to(TEAM_MANAGER) if reference in str(m["Subject"])]
    text = full_text(message)
    assert "LCS-300004" in text and "The permanence plan has drifted" not in text, "no free text in email"
    found = re.search(rf"^Respond:\r?\n({re.escape(mailing_server.url)}/links/[A-Za-z0-9_-]+)", text, re.M)
    assert found, text

    # Opened in a browser that has never signed in, as from a mail client.
    context, page, watch = support.new_context(browser, mailing_server.url)
    try:
        go(page, found.group(1))
        expect(page.get_by_role("heading", level=1)).to_have_text("Respond to the dispute")
        check_page(page)
        page.get_by_label("Your response").fill("We will hold a review.")
        page.get_by_role("button", name="Respond").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Done")
        check_page(page)
        # The link is spent: opened again, it says so.
        go(page, found.group(1), 409)
        check_page(page)
        assert not watch.problems, watch.problems
    finally:
        context.close()


CLIENT_ID = "dispute-service-browser"
CLIENT_SECRET = "browser-client-secret-0123456789abcdef"


def test_signing_in_through_a_real_openid_provider(browser: Browser, tmp_path: Path) -> None:
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/auth/callback"
    with openid_provider(
        free_port(), CLIENT_ID, CLIENT_SECRET, redirect_uri, tmp_path / "provider.log"
    ) as issuer:
        changes = {"oidc_issuer": issuer, "oidc_client_id": CLIENT_ID, "oidc_client_secret": CLIENT_SECRET}
        with support.live_server(tmp_path, port=port, settings_changes=changes) as live:
            context, page, _ = support.new_context(browser, live.url)
            try:
                go(page, "/disputes/new")
                expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
                check_page(page)
                page.get_by_role("button", name="Sign in with your council account").click()
                # The provider's own pages: its login form (any password), then its consent, if asked.
                page.locator("input[name=login]").fill(IRO)
                page.locator("input[name=password]").fill("any")
                page.locator("button[type=submit]").first.click()
                for _ in range(5):
                    if page.url.startswith(live.url):
                        break
                    page.locator("button[type=submit]").first.click()
                # Back on this service, signed in, on the page first asked for.
                page.wait_for_url(f"{live.url}/disputes/new")
                expect(page.get_by_role("heading", level=1)).to_have_text("Raise a dispute")
                expect(page.get_by_role("contentinfo")).to_contain_text(f"Signed in as {IRO}")
                check_page(page)
            finally:
                context.close()


def _tab_to(page: Page, selector: str, presses: int = 120) -> None:
    """Press Tab until the element matching `selector` has focus, as a keyboard user moves through a page."""
    # A key that followed a link or sent a form may still be loading the next page.
    page.wait_for_load_state("load")
    for _ in range(presses):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} could not be reached with the Tab key on {page.url}")


def test_raising_and_responding_with_the_keyboard_alone(page: Page) -> None:
    go(page, "/sign-in")
    # The first Tab reaches the skip link, which takes focus to the main content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    _tab_to(page, "form[action='/sign-in/demo']:has(input[value='iro@example.gov.uk']) button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/$"))

    _tab_to(page, "a[href='/disputes/new'].govuk-button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/disputes/new")
    _tab_to(page, "#child_ref")
    page.keyboard.type("LCS-300005")
    _tab_to(page, "#case_type")
    page.keyboard.press("Space")
    _tab_to(page, "#categories")
    page.keyboard.press("Space")
    _tab_to(page, "#summary")
    page.keyboard.type("Raised with the keyboard alone.")
    _tab_to(page, "#team_manager_email")
    page.keyboard.type("Tara")
    _tab_to(page, "form[action='/disputes/new'] button.govuk-button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(REFERENCE)
    reference = _heading(page)
    dispute_path = urlsplit(page.url).path
    assert _summary_value(page, "Child reference") == "LCS-300005"
    assert _summary_value(page, "Waiting on") == TEAM_MANAGER

    _tab_to(page, "form[action='/sign-out'] button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("You have signed out")

    go(page, "/sign-in")
    _tab_to(page, "form[action='/sign-in/demo']:has(input[value='tm@example.gov.uk']) button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/$"))
    _tab_to(page, f"a.govuk-link[href='{dispute_path}']")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{dispute_path}")
    _tab_to(page, "a.govuk-button[href$='/actions/respond']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/actions/respond")
    _tab_to(page, "#response")
    page.keyboard.type("Answered with the keyboard alone.")
    _tab_to(page, "form button.govuk-button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(reference)
    assert _summary_value(page, "State") == "Responded"


def test_a_form_too_big_to_send_gets_the_413_page(page: Page) -> None:
    sign_in_as(page, IRO)
    go(page, "/disputes/new")
    # More than the 2 MiB a form may be: pasted in, as a person might paste a whole document.
    page.locator("#summary").evaluate("(box) => { box.value = 'x'.repeat(2200000); }")
    page.get_by_role("button", name="Raise the dispute").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Too much was sent")
    check_page(page)
