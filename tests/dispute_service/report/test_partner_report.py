"""The annual report of a year with disputes on all three ladders of the default policy (SPEC 10): the
council's own (the seed's year), NHS partners and another local authority. `by_ladder`, `by_organisation`
and the partners' sentences in the JSON, the CSV, the SVG's words and the terminal table, and the seed's
own figures and sentences exactly as they are without partners.

Expected figures come from what each test did, never from the report's own queries. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import Contact, Organisation
from dispute_service.report.formats import print_table, to_csv, to_svg
from dispute_service.transactions import annual_report
from states.policy import Policy
from tests.factories import fetch
from tests.report_checks import SVG_NS, assert_csv_matches, assert_svg_bars
from tests.seed import Ladder, at, seed_years

NURSE, DOCTOR, OTHER_TRUST_NURSE = "nurse@nhs.example", "doctor@nhs.example", "nurse@other-trust.example"
THEIR_TM, THEIR_HOS = "tm@shire.example", "hos@shire.example"
ZERO = {"raised": 0, "escalations": 0, "resolved": 0, "open": 0}
# The seed's 2017-18 on the council's own ladder: 18 raised, 12 timeouts and 15 escalations, all resolved.
SEED_OWN = {"raised": 18, "escalations": 27, "resolved": 18, "open": 0}


def add_partners(sessions: sessionmaker[Session], now: datetime) -> None:
    """Two NHS trusts (partners) and a neighbouring council (another authority), with their contacts."""
    with sessions.begin() as session:
        for org_id, name, kind in (
            ("nhs_trust", "An NHS trust", "partner"),
            ("other_trust", "Another NHS trust", "partner"),
            ("shire", "Shire County Council", "other_authority"),
        ):
            session.add(Organisation(id=org_id, name=name, kind=kind, created_at=now, updated_at=now))
        session.flush()
        for email, org_id in (
            (NURSE, "nhs_trust"),
            (DOCTOR, "nhs_trust"),
            (OTHER_TRUST_NURSE, "other_trust"),
            (THEIR_TM, "shire"),
            (THEIR_HOS, "shire"),
        ):
            session.add(
                Contact(
                    email=email,
                    name="A Contact",
                    organisation_id=org_id,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )


@dataclass
class PartnerYear:
    resolved_nhs: uuid.UUID
    open_nhs: uuid.UUID
    withdrawn_shire: uuid.UUID


def partner_year(ladder: Ladder) -> PartnerYear:
    """In 2017-18: an NHS trust's dispute that times out to the designated doctor and is resolved, another
    trust's left open over the year's end, and a neighbouring council's that times out once and is
    withdrawn. Three raised with partners, two escalations, one resolved, one open."""
    add_partners(ladder.sessions, at(2017, 4, 1))

    def raise_on(when: datetime, **fields: Any) -> uuid.UUID:
        return ladder.raise_(when, team_manager_email=None, **fields)

    resolved_nhs = raise_on(
        at(2017, 6, 5, 10), ladder="health", respondent_email=NURSE, contacts={"designated_doctor": DOCTOR}
    )
    assert ladder.timeout(fetch(ladder.sessions, resolved_nhs)).stage == "designated_doctor"
    ladder.act(resolved_nhs, "resolve", at(2017, 7, 3, 10))

    open_nhs = raise_on(at(2018, 3, 20, 10), ladder="health", respondent_email=OTHER_TRUST_NURSE)

    withdrawn_shire = raise_on(
        at(2017, 9, 4, 10),
        ladder="other_authority",
        respondent_email=THEIR_TM,
        contacts={"their_head_of_service": THEIR_HOS},
        their_reference="SHIRE/17/4",
    )
    assert ladder.timeout(fetch(ladder.sessions, withdrawn_shire)).stage == "their_head_of_service"
    ladder.act(withdrawn_shire, "withdraw", at(2017, 10, 2, 10))
    return PartnerYear(resolved_nhs, open_nhs, withdrawn_shire)


@pytest.fixture
def three_ladders(ladder: Ladder) -> PartnerYear:
    seed_years(ladder)
    return partner_year(ladder)


PARTNER_SENTENCE = "2 disputes were raised with partner agencies (NHS partners: 2), with 1 escalation."
AUTHORITY_SENTENCE = (
    "1 dispute was raised with other local authorities (Another local authority: 1), with 1 escalation."
)


def test_the_json_breaks_the_year_down_by_ladder_and_by_organisation(
    three_ladders: PartnerYear, sessions: sessionmaker[Session], policy: Policy
) -> None:
    r = annual_report(sessions, policy, 2017).to_dict()

    assert r["by_ladder"] == {
        "own": SEED_OWN,
        "health": {"raised": 2, "escalations": 1, "resolved": 1, "open": 1},
        "other_authority": {"raised": 1, "escalations": 1, "resolved": 0, "open": 0},
    }
    assert list(r["by_organisation"]) == ["nhs_trust", "other_trust", "shire"]
    assert r["by_organisation"] == {
        "nhs_trust": {"raised": 1, "escalations": 1, "resolved": 1, "open": 0},
        "other_trust": {"raised": 1, "escalations": 0, "resolved": 0, "open": 1},
        "shire": {"raised": 1, "escalations": 1, "resolved": 0, "open": 0},
    }
    # The totals are the breakdowns' sums: the same stage moves and the same open disputes.
    assert r["raised"]["this_year"] == 21 == sum(f["raised"] for f in r["by_ladder"].values())
    assert r["escalations"] == {"automatic": 12 + 2, "manual": 15}
    assert sum(r["escalations"].values()) == sum(f["escalations"] for f in r["by_ladder"].values())
    assert r["open_at_year_end"] == 1 == sum(f["open"] for f in r["by_ladder"].values())
    # The seed's sentences, unchanged, then one for partner agencies and one for other authorities.
    assert r["sentences"] == [
        "The number of escalations has increased this year to 21 for Looked After Children "
        "from 9 the previous year.",
        "The number of escalations has stayed the same this year at 0 for children subject to "
        "Child Protection Plans.",
        "The number of escalations has stayed the same this year at 0 for Care Leavers.",
        PARTNER_SENTENCE,
        AUTHORITY_SENTENCE,
    ]
    # The partner stages reached are told after the council's own, in the policy's order, and only those.
    assert list(r["highest_stage"])[: len(policy.stage_ids)] == list(policy.stage_ids)
    assert list(r["highest_stage"].items())[len(policy.stage_ids) :] == [
        ("designated_nurse", 1),
        ("designated_doctor", 1),
        ("their_head_of_service", 1),
    ]
    assert r["resolved_at_stage"]["designated_doctor"] == 1


def test_the_year_before_and_after_hold_no_partner_sentence(
    three_ladders: PartnerYear, sessions: sessionmaker[Session], policy: Policy
) -> None:
    before = annual_report(sessions, policy, 2016).to_dict()
    assert before["by_organisation"] == {}
    assert before["by_ladder"]["health"] == before["by_ladder"]["other_authority"] == ZERO
    assert len(before["sentences"]) == 3
    # 2018-19: nothing raised with a partner, so no sentence; but the dispute left open at the end of
    # 2017-18 is still open at the end of 2018-19, and counted for its organisation.
    after = annual_report(sessions, policy, 2018).to_dict()
    assert len(after["sentences"]) == 3
    assert after["by_organisation"] == {"other_trust": {**ZERO, "open": 1}}
    # Its timer would have fired in 2018-19 had the sweep run; nobody ran it, so nothing moved.
    assert after["by_ladder"]["health"] == {**ZERO, "open": 1}


def test_a_partner_dispute_from_the_year_before_counts_where_its_figures_fall(
    ladder: Ladder, sessions: sessionmaker[Session], policy: Policy
) -> None:
    """The partners' figures come from their own rows, the council's from the totals less theirs: a
    dispute raised in 2017-18 and resolved in 2018-19 counts there as resolved, its timeout in 2017-18
    stays there, and the disputes that ended in 2017-18 count nowhere in 2018-19."""
    years = partner_year(ladder)
    # It times out in March 2018 with no designated doctor named, so it waits for the IRO.
    waiting = ladder.timeout(fetch(sessions, years.open_nhs))
    assert waiting.state == "awaiting_iro_decision" and waiting.updated_at < at(2018, 4, 1)
    ladder.act(years.open_nhs, "resolve", at(2018, 6, 4, 10))
    own = ladder.raise_(at(2018, 7, 2, 10))
    ladder.act(own, "escalate", at(2018, 7, 9, 10))

    r = annual_report(sessions, policy, 2018).to_dict()
    assert r["by_organisation"] == {"other_trust": {**ZERO, "resolved": 1}}
    assert r["by_ladder"] == {
        "own": {"raised": 1, "escalations": 1, "resolved": 0, "open": 1},
        "health": {**ZERO, "resolved": 1},
        "other_authority": ZERO,
    }
    assert r["escalations"] == {"automatic": 0, "manual": 1} and r["open_at_year_end"] == 1
    before = annual_report(sessions, policy, 2017).to_dict()
    assert before["by_organisation"]["other_trust"] == {**ZERO, "raised": 1, "escalations": 1, "open": 1}


def test_the_csv_holds_every_figure_of_the_json_and_the_sentences_by_kind(
    three_ladders: PartnerYear, sessions: sessionmaker[Session], policy: Policy
) -> None:
    result = annual_report(sessions, policy, 2017)
    rows = list(csv.DictReader(io.StringIO(to_csv(result), newline="")))
    assert_csv_matches(rows, result.to_dict())
    figures = {(row["measure"], row["breakdown"]): row["value"] for row in rows}
    assert figures[("by_ladder", "health.raised")] == "2"
    assert figures[("by_ladder", "own.escalations")] == "27"
    assert figures[("by_organisation", "shire.escalations")] == "1"
    assert figures[("sentence", "partner")] == PARTNER_SENTENCE
    assert figures[("sentence", "other_authority")] == AUTHORITY_SENTENCE


def test_the_chart_stays_the_councils_own_ladder_and_says_the_partners_in_words(
    three_ladders: PartnerYear, sessions: sessionmaker[Session], policy: Policy
) -> None:
    result = annual_report(sessions, policy, 2017)
    svg = to_svg(result)
    assert_svg_bars(svg, result)  # one bar per own stage per year, no more
    root = ET.fromstring(svg)
    title, desc = root.find(f"{SVG_NS}title"), root.find(f"{SVG_NS}desc")
    assert title is not None and desc is not None
    assert title.text == (
        "Disputes raised on the council's own ladder, by the highest stage reached: 2016-17 and 2017-18"
    )
    assert (desc.text or "").endswith(
        " Not drawn: the disputes raised in 2017-18 on partner ladders, 2 on NHS partners, "
        "1 on Another local authority."
    )


def test_the_table_shows_both_breakdowns_by_name(
    three_ladders: PartnerYear, sessions: sessionmaker[Session], policy: Policy
) -> None:
    console = Console(file=io.StringIO(), width=160)
    print_table(annual_report(sessions, policy, 2017), console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for shown in ("By ladder", "NHS partners", "By organisation", "Shire County Council", PARTNER_SENTENCE):
        assert shown in text


def test_the_seed_year_alone_reads_as_before_in_every_format(
    ladder: Ladder, sessions: sessionmaker[Session], policy: Policy
) -> None:
    """No partner disputes: the own-ladder chart and its words are as they always were, no partner
    sentence, and the partner ladders at zero."""
    seed_years(ladder)
    result = annual_report(sessions, policy, 2017)
    r = result.to_dict()
    assert r["by_ladder"] == {"own": SEED_OWN, "health": ZERO, "other_authority": ZERO}
    assert r["by_organisation"] == {}
    assert len(r["sentences"]) == 3
    root = ET.fromstring(to_svg(result))
    title, desc = root.find(f"{SVG_NS}title"), root.find(f"{SVG_NS}desc")
    assert title is not None and desc is not None
    assert title.text == "Disputes raised, by the highest stage reached: 2016-17 and 2017-18"
    assert "partner" not in (desc.text or "")
    sentences = [row for row in csv.DictReader(io.StringIO(to_csv(result))) if row["measure"] == "sentence"]
    assert [row["breakdown"] for row in sentences] == ["looked_after", "child_protection", "care_leaver"]
