"""`import-history` with the optional `ladder` and `organisation` columns (SPEC 10): past disputes with
partner agencies and other local authorities, their stages of that ladder, refused by line when wrong."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.audit import verify_all
from dispute_service.errors import InvalidInput
from dispute_service.models import AuditEntry, Dispute, Organisation
from dispute_service.report.history import COLUMNS
from dispute_service.transactions import annual_report, import_history
from states.policy import Policy
from tests.report_checks import counts
from tests.seed import row, write

NOW = datetime(2018, 6, 1, 10, tzinfo=UTC)
WITH_LADDERS = (*COLUMNS, "ladder", "organisation")


@pytest.fixture
def load(
    sessions: sessionmaker[Session], staff: list[str], policy: Policy, tmp_path: Path
) -> Callable[..., int]:
    with sessions.begin() as session:
        for org_id, name, kind in (
            ("nhs_trust", "An NHS trust", "partner"),
            ("shire", "Shire County Council", "other_authority"),
        ):
            session.add(Organisation(id=org_id, name=name, kind=kind, created_at=NOW, updated_at=NOW))

    def run(rows: list[dict[str, str]], **kwargs: Any) -> int:
        return import_history(sessions, policy, write(tmp_path, rows, WITH_LADDERS), NOW, **kwargs)

    return run


def nhs(reference: str, **fields: str) -> dict[str, str]:
    return row(
        reference,
        ladder="health",
        organisation="nhs_trust",
        highest_stage="designated_doctor",
        resolved_at_stage="designated_doctor",
        raised_on="2017-05-02",
        closed_on="2017-05-30",
        **fields,
    )


def shire(reference: str, **fields: str) -> dict[str, str]:
    return row(
        reference,
        ladder="other_authority",
        organisation="shire",
        highest_stage="their_team_manager",
        resolved_at_stage="",
        raised_on="2017-06-01",
        closed_on="",
        outcome="",
        **fields,
    )


def test_the_import_reads_ladder_and_organisation_and_the_report_counts_them(
    load: Callable[..., int], sessions: sessionmaker[Session], policy: Policy
) -> None:
    # An empty ladder is the council's own, as in a file without the columns.
    own = row("OWN-1", raised_on="2017-04-20", closed_on="2017-05-02", ladder="", organisation="")
    assert load([own, nhs("NHS-1"), shire("SHIRE-1")]) == 3

    with sessions() as session:
        disputes = {d.reference: d for d in session.scalars(select(Dispute))}
        raised = {
            entry.dispute_id: entry.details
            for entry in session.scalars(select(AuditEntry).where(AuditEntry.trigger == "raise"))
        }
        assert verify_all(session)[1] == []
    assert (disputes["OWN-1"].ladder, disputes["OWN-1"].organisation_id) == ("own", None)
    assert (disputes["NHS-1"].ladder, disputes["NHS-1"].organisation_id) == ("health", "nhs_trust")
    assert (disputes["NHS-1"].stage, disputes["NHS-1"].state) == ("designated_doctor", "resolved")
    assert (disputes["SHIRE-1"].ladder, disputes["SHIRE-1"].stage) == (
        "other_authority",
        "their_team_manager",
    )
    assert disputes["SHIRE-1"].ended_at is None and disputes["SHIRE-1"].escalate_at is None
    # The raise entry names the ladder and the organisation as a raised partner dispute's does; the
    # council's own entry stays as it always was.
    assert '"ladder":"health"' in raised[disputes["NHS-1"].id]
    assert '"organisation":"nhs_trust"' in raised[disputes["NHS-1"].id]
    assert "ladder" not in raised[disputes["OWN-1"].id]

    r = annual_report(sessions, policy, 2017).to_dict()
    assert r["by_ladder"] == {
        "own": {"raised": 1, "escalations": 0, "resolved": 1, "open": 0},
        "health": {"raised": 1, "escalations": 0, "resolved": 1, "open": 0},
        "other_authority": {"raised": 1, "escalations": 0, "resolved": 0, "open": 1},
    }
    assert list(r["by_organisation"]) == ["nhs_trust", "shire"]
    assert r["sentences"][3:] == [
        "1 dispute was raised with partner agencies (NHS partners: 1), with no escalations.",
        "1 dispute was raised with other local authorities (Another local authority: 1), "
        "with no escalations.",
    ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            {"ladder": "education"},
            "ladder 'education' is not a ladder of the policy: own, health, other_authority",
        ),
        (
            {"organisation": ""},
            "organisation is empty: a dispute on the health ladder is with an organisation",
        ),
        ({"organisation": "nowhere"}, "organisation 'nowhere' is not in the service"),
        (
            {"organisation": "shire"},
            "organisation 'shire' is other_authority, but the health ladder is for partner",
        ),
        (
            {"highest_stage": "team_manager", "resolved_at_stage": "", "outcome": "withdrawn"},
            "highest_stage 'team_manager' is not a stage of the health ladder: designated_nurse, "
            "designated_doctor, icb_director_of_nursing",
        ),
        (
            {"highest_stage": "designated_nurse", "resolved_at_stage": "their_director"},
            "resolved_at_stage 'their_director' is not a stage of the health ladder",
        ),
        (
            {"outcome": "closed", "resolved_at_stage": ""},
            "outcome closed follows a CAFCASS referral, on the council's own ladder only",
        ),
        (
            {"ladder": "own", "highest_stage": "team_manager", "resolved_at_stage": "team_manager"},
            "organisation is given but the ladder is the council's own",
        ),
    ],
)
def test_a_bad_ladder_or_organisation_is_named_by_line(
    load: Callable[..., int], sessions: sessionmaker[Session], bad: dict[str, str], reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        load([nhs("OK-1"), {**nhs("BAD"), **bad}])
    assert [where for where, _ in refused.value.errors] == ["line 3"]
    assert reason in refused.value.errors[0][1]
    assert counts(sessions) == (0, 0, 0, 0)


def test_a_file_without_the_columns_is_all_on_the_councils_own_ladder(
    sessions: sessionmaker[Session], staff: list[str], policy: Policy, tmp_path: Path
) -> None:
    assert import_history(sessions, policy, write(tmp_path, [row("OWN-1")]), NOW) == 1
    with sessions() as session:
        dispute = session.scalars(select(Dispute)).one()
    assert (dispute.ladder, dispute.organisation_id) == ("own", None)
