"""One vocabulary: states, triggers, case types, categories, outcome codes, roles, organisation kinds and the
text limit are defined in states/ and taken from there by the API schemas, the API routes and the emails.

A value written out again in one of those files is a second definition that can drift (a renamed trigger
whose email link silently stops working, a category the API refuses). The check reads the files' syntax
trees, so a string in a docstring or a sentence never matches: only a whole string constant equal to a
vocabulary value does.
"""

from __future__ import annotations

import ast
from pathlib import Path

from states.vocabulary import (
    LINK_TRIGGERS,
    MAX_TEXT,
    CaseType,
    Category,
    OrganisationKind,
    OutcomeCode,
    Role,
    State,
    Trigger,
)

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("api/schemas.py", "api/routes/*.py", "notifications/*.py")

# Plain English words among the categories ("contact", "health", ...) would match a route name or a sentence
# fragment, so only the categories that could be nothing else are checked.
VOCABULARY: dict[str | int, str] = {
    **{c.value: "category" for c in Category if "_" in c.value},
    **{r.value: "role" for r in Role},
    **{k.value: "organisation kind" for k in OrganisationKind},
    **{o.value: "outcome code" for o in OutcomeCode},
    **{c.value: "case type" for c in CaseType},
    **{t.value: "trigger" for t in Trigger},
    **{s.value: "state" for s in State},
    MAX_TEXT: "text limit",
}

# (file, value): why that file may write the value out. Each entry must still be needed.
ALLOWED: dict[tuple[str, str | int], str] = {
    ("api/routes/disputes.py", "iro"): "the name of a field of the dispute's JSON, not the role",
    ("api/routes/disputes.py", "hold"): "the name of a field of the dispute's JSON, not the trigger",
    ("notifications/render.py", "responded"): "an email template's name, not the state",
    ("notifications/render.py", "resolved"): "an email template's name, not the state",
    ("notifications/render.py", "withdrawn"): "an email template's name, not the state",
    ("notifications/render.py", "closed"): "an email template's name, not the state",
    ("notifications/render.py", "referred"): "an email template's name, not the state",
    ("notifications/dispatcher.py", "resolved"): "the 'resolved' email template's name, not the state",
}


def _files() -> list[str]:
    found = sorted({p.relative_to(ROOT).as_posix() for pattern in CHECKED for p in ROOT.glob(pattern)})
    assert found, "no files to check: has the layout changed?"
    return found


def _docstrings(tree: ast.Module) -> set[int]:
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, owners)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _written_out(source: str) -> list[tuple[int, str | int]]:
    tree = ast.parse(source)
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and id(node) not in skip
        and type(node.value) in (str, int)
        and node.value in VOCABULARY
    ]


def _found() -> list[tuple[str, int, str | int]]:
    return [
        (path, line, value) for path in _files() for line, value in _written_out((ROOT / path).read_text())
    ]


def test_the_vocabulary_is_not_written_out_where_it_should_be_taken_from_states() -> None:
    found = [
        f"{path}:{line}: {value!r} ({VOCABULARY[value]}) is written out; take it from states.vocabulary"
        for path, line, value in _found()
        if (path, value) not in ALLOWED
    ]
    assert not found, "\n".join(found)


def test_every_allowed_exception_is_still_needed() -> None:
    seen = {(path, value) for path, _, value in _found()}
    stale = sorted(str(key) for key in set(ALLOWED) - seen)
    assert not stale, f"remove these from ALLOWED: {stale}"


def test_the_check_finds_a_value_written_out_and_skips_docstrings() -> None:
    # Guards the guard: the Literal list and the limit the API schemas used to have are caught.
    source = "\n".join(
        [
            '"""resolved"""',
            'CaseType = Literal["looked_after", "care_leaver"]',
            "summary = Field(max_length=20_000)",
        ]
    )
    assert sorted(_written_out(source), key=str) == [(2, "care_leaver"), (2, "looked_after"), (3, 20_000)]


def test_every_link_trigger_has_a_label_and_a_page() -> None:
    from api.routes.links import _ACTIONS
    from notifications.render import LINK_LABELS

    assert set(LINK_LABELS) == set(LINK_TRIGGERS)
    assert set(_ACTIONS) == set(LINK_TRIGGERS)


def test_link_triggers_are_triggers_a_caller_may_use() -> None:
    from states.vocabulary import ACTION_TRIGGERS, IRO_LINK_TRIGGERS, OWNER_LINK_TRIGGERS

    assert set(LINK_TRIGGERS) == set(OWNER_LINK_TRIGGERS) | set(IRO_LINK_TRIGGERS)
    assert len(set(LINK_TRIGGERS)) == len(LINK_TRIGGERS)
    assert set(LINK_TRIGGERS) <= set(ACTION_TRIGGERS)
