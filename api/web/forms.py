"""Forms on the pages: the use cases' refusals as GOV.UK error messages, and the values a form sends."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dispute_service.errors import InvalidInput

# The longest name and address a directory form takes, as the API's schemas do.
MAX_NAME = 200
MAX_EMAIL = 320


@dataclass
class FormErrors:
    """Field -> message, in the order found; `summary` lists them for the error summary, each linking to
    its field by id."""

    messages: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, errors: Sequence[tuple[str, str]], labels: dict[str, str]) -> FormErrors:
        found = cls()
        for name, message in errors:
            # "categories[0]" and "sibling_refs[1]" are about the one field on the form.
            base = name.split("[", 1)[0].split(".", 1)[0]
            label = labels.get(base, base.replace("_", " ").capitalize())
            # "is required", "must not be empty" read on from the field's name; a sentence of its own
            # ("a human_rights_breach concern starts at ...") stands alone.
            reads_on = message.startswith(("is ", "must ", "name ", "unknown ", "has ", "names "))
            found.add(base, f"{label} {message}" if reads_on else message[:1].upper() + message[1:])
        return found

    def add(self, name: str, message: str) -> None:
        self.messages.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def get(self, name: str) -> dict[str, str] | None:
        """The GOV.UK macro's `errorMessage` for a field, or None."""
        message = self.messages.get(name)
        return {"text": message} if message else None

    def summary(self, anchors: dict[str, str] | None = None) -> list[dict[str, str]]:
        anchors = anchors or {}
        return [{"text": m, "href": "#" + anchors.get(n, n)} for n, m in self.messages.items()]


def digits(text: str | None, most: int) -> bool:
    """ASCII digits only, 1 to `most` of them: str.isdigit() also takes "²", which int() refuses, and an
    unbounded run of digits is a slow int()."""
    return text is not None and re.fullmatch(rf"[0-9]{{1,{most}}}", text) is not None


def refuse_nul(fields: Iterable[tuple[str, Any]]) -> None:
    """A form holding the NUL character is refused, as the API refuses it: PostgreSQL cannot store it, and
    no real input holds one. `fields`: (name, value) pairs, as a form's `multi_items()`."""
    bad = sorted({name for name, value in fields if isinstance(value, str) and "\x00" in value})
    if bad:
        raise InvalidInput([(name, "must not contain the NUL character") for name in bad])


def optional(value: str | None) -> str | None:
    """A form's empty field is an absent value."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def date_from(day: str | None, month: str | None, year: str | None) -> date | None | str:
    """A GOV.UK date input's three fields: a date, None when all are empty, or what is wrong."""
    parts = [optional(day), optional(month), optional(year)]
    if not any(parts):
        return None
    if not (digits(parts[0], 2) and digits(parts[1], 2) and digits(parts[2], 4)):
        return "must be a real date, with a day, month and year in numbers"
    d, m, y = (int(p or 0) for p in parts)
    if y < 1900 or y > 9999:
        return "must have a year of four digits"
    try:
        return date(y, m, d)
    except ValueError:
        return "must be a real date"
