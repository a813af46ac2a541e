"""`import-history`: past years from a council's spreadsheet, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.audit import verify_all
from dispute_service.errors import InvalidInput
from dispute_service.inputs import ActionInput
from dispute_service.models import AuditEntry, Dispute
from dispute_service.report.history import COLUMNS
from dispute_service.sweep import sweep
from dispute_service.transactions import annual_report, import_history
from states.policy import Policy
from tests.factories import ADMIN, IRO
from tests.report_checks import NONE_AT, counts
from tests.seed import SEED_2016_ROWS, SEED_2017, Ladder, climb, row, write

NOW = datetime(2018, 6, 1, 10, tzinfo=UTC)


@pytest.fixture
def load(
    sessions: sessionmaker[Session], staff: list[str], policy: Policy, tmp_path: Path
) -> Callable[..., int]:
    def run(rows: list[dict[str, str]], **kwargs: Any) -> int:
        return import_history(sessions, policy, write(tmp_path, rows), NOW, **kwargs)

    return run


def test_imported_history_gives_the_year_on_year_sentence_from_the_first_day(
    load: Callable[..., int], sessions: sessionmaker[Session], policy: Policy
) -> None:
    assert load(SEED_2016_ROWS) == 9
    ladder = Ladder(sessions, policy)
    for i, (_, moves, late) in enumerate(SEED_2017):
        climb(ladder, datetime(2017, 4, 10, 10, tzinfo=UTC) + timedelta(days=17 * i), moves, late=late)
    r = annual_report(sessions, policy, 2017).to_dict()
    assert r["raised"] == {"this_year": 18, "previous_year": 9, "change": 9}
    assert r["sentences"][0] == (
        "The number of escalations has increased this year to 18 for Looked After Children "
        "from 9 the previous year."
    )
    before = annual_report(sessions, policy, 2016).to_dict()
    assert before["highest_stage"] == {
        **NONE_AT,
        "team_manager": 6,
        "head_of_corporate_parenting": 2,
        "head_of_service": 1,
    }
    assert before["resolved_at_stage"] == before["highest_stage"]
    # The path up the ladder is not in the spreadsheet, so no escalations are invented for it.
    assert before["escalations"] == {"automatic": 0, "manual": 0}
    # Each closed two weeks after it was raised: 10 working days, less none (no bank holidays then).
    assert before["median_working_days_to_close"] == 10


def test_an_imported_dispute_is_history_with_import_entries_and_no_timers(
    load: Callable[..., int], sessions: sessionmaker[Session], policy: Policy
) -> None:
    load(
        [
            row("R-1"),
            row("W-1", outcome="withdrawn", resolved_at_stage="", highest_stage="head_of_service"),
            row("C-1", outcome="closed", resolved_at_stage="", highest_stage="cafcass"),
            row("C-2", outcome="closed", resolved_at_stage="", highest_stage="team_manager"),
            row("O-1", outcome="", resolved_at_stage="", closed_on="", raised_on="2018-03-31"),
        ]
    )
    with sessions() as session:
        found = {d.reference: d for d in session.scalars(select(Dispute))}
        entries = {
            ref: [
                (e.trigger, e.from_stage, e.to_stage, e.to_state, e.channel, e.actor)
                for e in session.scalars(
                    select(AuditEntry).where(AuditEntry.dispute_id == d.id).order_by(AuditEntry.seq)
                )
            ]
            for ref, d in found.items()
        }
        checked, problems = verify_all(session)
    assert (checked, problems) == (5, [])
    for d in found.values():
        assert (d.due_at, d.escalate_at, d.next_reminder_at) == (None, None, None)
        assert d.iro_email == "import"
        assert d.version == d.audit_seq
    imp = ("import", "import")
    assert entries["R-1"] == [
        ("raise", None, "team_manager", "awaiting_response", *imp),
        ("resolve", "team_manager", "team_manager", "resolved", *imp),
    ]
    assert entries["W-1"] == [
        ("raise", None, "head_of_service", "awaiting_response", *imp),
        ("withdraw", "head_of_service", "head_of_service", "withdrawn", *imp),
    ]
    assert entries["C-1"] == [
        ("raise", None, "cafcass", "awaiting_iro_decision", *imp),
        ("refer_to_cafcass", "cafcass", "cafcass", "referred", *imp),
        ("close", "cafcass", "cafcass", "closed", *imp),
    ]
    # Referred alongside the ladder: the stage stays where it was.
    assert entries["C-2"] == [
        ("raise", None, "team_manager", "awaiting_response", *imp),
        ("refer_to_cafcass", "team_manager", "team_manager", "awaiting_response", *imp),
        ("close", "team_manager", "team_manager", "closed", *imp),
    ]
    assert entries["O-1"] == [("raise", None, "team_manager", "awaiting_response", *imp)]
    # Dated at noon London time on the day given (BST on 31 March 2018).
    assert found["O-1"].raised_at == datetime(2018, 3, 31, 11, 0, tzinfo=UTC)
    assert (found["R-1"].resolved_stage, found["R-1"].ended_at) == (
        "team_manager",
        datetime(2016, 5, 20, 11, 0, tzinfo=UTC),
    )

    # Years later the sweep finds nothing to do with any of them.
    report = sweep(sessions, policy, lambda: datetime(2030, 1, 1, tzinfo=UTC))
    assert not report.fired


def test_an_open_imported_dispute_can_be_taken_over_and_finished(
    load: Callable[..., int], sessions: sessionmaker[Session], policy: Policy
) -> None:
    load([row("O-1", outcome="", resolved_at_stage="", closed_on="")])
    with sessions() as session:
        dispute_id = session.scalars(select(Dispute.id)).one()
    transactions.apply_trigger(
        sessions, policy, dispute_id, "reassign_iro", ADMIN, ActionInput(iro_email=IRO.email), NOW
    )
    done = transactions.apply_trigger(
        sessions,
        policy,
        dispute_id,
        "resolve",
        IRO,
        ActionInput(outcome="Agreed", outcome_code="action_agreed"),
        NOW,
    ).dispute
    assert done.state == "resolved"
    with sessions() as session:
        assert verify_all(session)[1] == []


def test_the_report_counts_imported_disputes_like_any_other(
    load: Callable[..., int], sessions: sessionmaker[Session], policy: Policy
) -> None:
    load(
        [
            # Monday 3 July 2017 to Monday 17 July: 10 working days.
            row("A", raised_on="2017-07-03", closed_on="2017-07-17", categories="contact;health"),
            # Friday 22 December 2017 to Wednesday 3 January 2018, less three bank holidays: 5.
            row("B", raised_on="2017-12-22", closed_on="2018-01-03", case_type="care_leaver"),
            row(
                "C", raised_on="2017-08-01", closed_on="2017-08-02", outcome="withdrawn", resolved_at_stage=""
            ),
            row(
                "D",
                raised_on="2017-09-01",
                closed_on="2017-10-02",
                outcome="closed",
                resolved_at_stage="",
                highest_stage="cafcass",
            ),
            # Still open, and one closed only after the year's end: both open at the end.
            row("E", raised_on="2018-02-01", closed_on="", outcome="", resolved_at_stage=""),
            row(
                "F",
                raised_on="2018-03-30",
                closed_on="2018-04-03",
                highest_stage="head_of_service",
                resolved_at_stage="head_of_service",
            ),
            row("G", raised_on="2016-06-01", closed_on="2016-06-15"),
        ]
    )
    r = annual_report(sessions, policy, 2017).to_dict()
    assert r["raised"] == {"this_year": 6, "previous_year": 1, "change": 5}
    assert r["by_case_type"] == {"looked_after": 5, "child_protection": 0, "care_leaver": 1}
    assert (
        r["by_category"]["permanency_delay"],
        r["by_category"]["contact"],
        r["by_category"]["health"],
    ) == (
        5,
        1,
        1,
    )
    assert r["highest_stage"] == {**NONE_AT, "team_manager": 4, "head_of_service": 1, "cafcass": 1}
    assert r["resolved_at_stage"] == {**NONE_AT, "team_manager": 2}
    assert (r["withdrawn"], r["cafcass_referrals"], r["open_at_year_end"]) == (1, 1, 2)
    # Closed by the year's end: A 10, B 5, C 1, D 21 (1 September to 2 October 2017).
    assert r["median_working_days_to_close"] == 7.5
    assert r["responses"] == {"on_time": 0, "late": 0}


# --- refusals: all or nothing ---------------------------------------------------------------------------


def test_a_bad_file_names_each_bad_line_and_loads_nothing(
    load: Callable[..., int], sessions: sessionmaker[Session]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        load(
            [
                row("ESC-1"),
                row("ESC-2", highest_stage="deputy_director", resolved_at_stage="", outcome="withdrawn"),
                row("ESC-3"),
                row("ESC-4", raised_on="31/03/2017"),
                row("ESC-5"),
            ]
        )
    assert refused.value.errors == [
        (
            "line 3",
            "highest_stage 'deputy_director' is not a stage of the policy: quality_assurance, team_manager, "
            "head_of_corporate_parenting, head_of_service, assistant_director, cafcass",
        ),
        ("line 5", "raised_on '31/03/2017' is not a date in the form YYYY-MM-DD"),
    ]
    assert counts(sessions) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"raised_on": "2017-02-30"}, "raised_on '2017-02-30' is not a date in the form YYYY-MM-DD"),
        ({"raised_on": ""}, "raised_on is empty"),
        ({"closed_on": "2017-13-01"}, "closed_on '2017-13-01' is not a date in the form YYYY-MM-DD"),
        (
            {"raised_on": "2018-06-02", "closed_on": "", "outcome": "", "resolved_at_stage": ""},
            "raised_on 2018-06-02 is in the future",
        ),
        ({"closed_on": "2016-05-01"}, "closed_on 2016-05-01 is before raised_on 2016-05-03"),
        (
            {"case_type": "adoption"},
            "case_type 'adoption' is not one of: looked_after, child_protection, care_leaver",
        ),
        ({"categories": "contact;pets"}, "categories 'contact;pets' must be one or more of"),
        ({"categories": ""}, "categories '' must be one or more of"),
        ({"child_ref": ""}, "child_ref is empty"),
        ({"reference": ""}, "reference is empty"),
        ({"reference": "DR-2016-0001"}, "has the form DR-YYYY-NNNN"),
        ({"reference": "x" * 41}, "reference is longer than 40 characters"),
        # A reference goes into emails' subjects and Message-IDs: a line break there could forge a header.
        ({"reference": "ESC-1\nBcc: x@example.com"}, "reference 'ESC-1\\nBcc: x@example.com' may hold"),
        ({"reference": "ESC\x07-1"}, "may hold letters, digits and . _ / - only"),
        ({"reference": "ESC 1"}, "may hold letters, digits and . _ / - only"),
        ({"child_ref": "LCS-9\r\nBcc: x@example.com"}, "child_ref 'LCS-9\\r\\nBcc: x@example.com' may"),
        ({"child_ref": "-LCS-9"}, "starting with a letter or digit"),
        ({"highest_stage": ""}, "highest_stage is empty"),
        (
            {"resolved_at_stage": "cafcass"},
            "resolved_at_stage 'cafcass' differs from highest_stage 'team_manager'",
        ),
        ({"resolved_at_stage": ""}, "outcome is resolved but resolved_at_stage is empty"),
        ({"outcome": "withdrawn"}, "resolved_at_stage is given but the outcome is not resolved"),
        (
            {"outcome": "sorted", "resolved_at_stage": ""},
            "outcome 'sorted' is not one of: resolved, withdrawn",
        ),
        ({"outcome": "", "resolved_at_stage": ""}, "closed_on is given but outcome is empty"),
        ({"closed_on": ""}, "outcome is resolved but closed_on is empty"),
        (
            {"outcome": "closed", "resolved_at_stage": "", "case_type": "care_leaver"},
            "CAFCASS referral, which is for looked-after children only",
        ),
    ],
)
def test_each_kind_of_bad_row_is_named_with_its_reason(
    load: Callable[..., int], sessions: sessionmaker[Session], bad: dict[str, str], reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        load([row("OK-1"), {**row("BAD"), **bad}])
    assert [where for where, _ in refused.value.errors] == ["line 3"]
    assert reason in refused.value.errors[0][1]
    assert counts(sessions) == (0, 0, 0, 0)


def test_references_must_be_unique_in_the_file_and_new_to_the_service(
    load: Callable[..., int], sessions: sessionmaker[Session]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        load([row("ESC-1"), row("ESC-2"), row("ESC-1")])
    assert refused.value.errors == [("line 4", "reference 'ESC-1' is already on line 2")]
    assert load([row("ESC-1")]) == 1
    # Loading the same file twice loads nothing the second time.
    with pytest.raises(InvalidInput) as again:
        load([row("ESC-2"), row("ESC-1")])
    assert again.value.errors == [("line 3", "reference 'ESC-1' is already in the service")]
    assert counts(sessions)[0] == 1


def test_columns_are_matched_by_header_name_and_a_missing_one_is_named(
    tmp_path: Path, sessions: sessionmaker[Session], staff: list[str], policy: Policy
) -> None:
    shuffled = tuple(reversed(COLUMNS)) + ("notes",)
    path = write(tmp_path, [{**row("ESC-1"), "notes": "ignored"}], shuffled)
    assert import_history(sessions, policy, path, NOW) == 1
    path = write(tmp_path, [row("ESC-2")], tuple(c for c in COLUMNS if c not in ("outcome", "closed_on")))
    with pytest.raises(InvalidInput) as refused:
        import_history(sessions, policy, path, NOW)
    assert refused.value.errors == [("line 1", "missing column(s): closed_on, outcome")]


def test_line_numbers_are_the_lines_a_text_editor_shows(
    tmp_path: Path, sessions: sessionmaker[Session], staff: list[str], policy: Policy
) -> None:
    header = ",".join(COLUMNS)
    good = "ESC-{n},LCS-1,looked_after,contact,2017-05-01,team_manager,team_manager,2017-05-02,resolved"
    text = "\ufeff" + "\r\n".join(
        [
            header,
            good.format(n=1),
            "",  # a blank line
            'ESC-2,LCS-1,looked_after,"contact;\nhealth",2017-05-01,team_manager,team_manager,2017-05-02,resolved',
            good.format(n=3).replace("2017-05-01", "tomorrow"),
        ]
    )
    path = tmp_path / "excel.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        import_history(sessions, policy, path, NOW)
    # The blank line 3 and the line break inside a quoted cell on line 4 both count.
    assert refused.value.errors == [("line 6", "raised_on 'tomorrow' is not a date in the form YYYY-MM-DD")]


def test_a_file_that_is_not_utf8_is_refused(
    tmp_path: Path, sessions: sessionmaker[Session], staff: list[str], policy: Policy
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((",".join(COLUMNS) + "\nESC-1,Zo\xe9\n").encode("latin-1"))
    with pytest.raises(InvalidInput) as refused:
        import_history(sessions, policy, path, NOW)
    assert refused.value.errors[0][0] == "file"
    assert counts(sessions) == (0, 0, 0, 0)


# --- large files ----------------------------------------------------------------------------------------


def test_a_large_file_reports_progress_while_checking_and_loading(
    load: Callable[..., int], sessions: sessionmaker[Session], policy: Policy
) -> None:
    rows = [row(f"ESC-{i}", raised_on="2017-05-01", closed_on="2017-05-15") for i in range(1_200)]
    seen: list[tuple[str, int, int]] = []
    assert load(rows, progress=lambda phase, done, total: seen.append((phase, done, total))) == 1_200
    assert [s for s in seen if s[0] == "checking"][-1] == ("checking", 1_200, 1_200)
    loading = [s for s in seen if s[0] == "loading"]
    assert [done for _, done, _ in loading] == [500, 1_000, 1_200]
    assert annual_report(sessions, policy, 2017).to_dict()["raised"]["this_year"] == 1_200
