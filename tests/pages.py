"""Reading the pages in tests: the CSRF token and hidden fields of a page's forms."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

# The session secret of every test app that serves pages.
SESSION_SECRET = "session-secret-0123456789abcdef0123"


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def form_fields(html: str, action: str) -> dict[str, Any]:
    """The hidden fields of the form posting to `action`."""
    start = html.index(f'action="{action}"')
    end = html.index("</form>", start)
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', html[start:end]))


def post_link(client: Any, token: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Use an email link as a person does: open its page (which gives the browser the form's CSRF token
    and its cookie), then send the form. A page that is refused has no form, and the post goes without."""
    return client.post(f"/links/{token}", data={**open_link(client, token), **(data or {})}, **kwargs)


def open_link(client: Any, token: str) -> dict[str, str]:
    """Open a link's page: the form's CSRF token (its cookie is now the client's), or nothing when the
    page is a refusal and has no form."""
    page = client.get(f"/links/{token}")
    return {"csrf_token": csrf_of(page.text)} if page.status_code == 200 else {}


class _TableReader(HTMLParser):
    """The text of each cell of one table, row by row (its header row first)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.depth = 0  # tables open inside the one wanted, itself included
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or dict(attrs).get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The cells' text of the table with this id, header row first; whitespace collapsed."""
    reader = _TableReader(table_id)
    reader.feed(html)
    assert reader.rows, f"no table {table_id!r} on the page"
    return reader.rows


def error_summary(html: str) -> list[tuple[str, str]]:
    """(link target, words) of each error in the page's GOV.UK error summary."""
    start = html.index('class="govuk-error-summary"')
    end = html.index("</ul>", start)
    return [
        (href, unescape(" ".join(text.split())))
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', html[start:end], re.S)
    ]


def inline_error(html: str, field_id: str) -> str:
    """The words of the inline error message of the field with this id (GOV.UK's `{id}-error`)."""
    found = re.search(
        rf'<p id="{re.escape(field_id)}-error" class="govuk-error-message">(.*?)</p>', html, re.S
    )
    assert found, f"no error message for {field_id!r}"
    text = re.sub(r'<span class="govuk-visually-hidden">[^<]*</span>', "", found.group(1))
    return unescape(" ".join(text.split()))
