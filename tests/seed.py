"""Disputes walked through the real use cases on given dates, for the annual report's tests, and past years
as a council's spreadsheet holds them, for `import-history`'s.

`seed_years` rebuilds the seed's two years (Central Bedfordshire's IRO annual report 2017-18): 9 disputes
raised in 2016-17 and 18 in 2017-18, all for looked-after children. Most are resolved at Team Manager,
some at Head of Corporate Parenting, a small number reach Head of Service, and none reaches the Assistant
Director or CAFCASS.
"""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.access import Actor
from dispute_service.inputs import ActionInput
from dispute_service.models import Dispute
from dispute_service.report.history import COLUMNS
from states.policy import Policy
from tests.factories import AD, HOCP, HOS, IRO, TM, fetch, fire_timer, raise_dispute

OWNERS = {
    "quality_assurance": TM,
    "team_manager": TM,
    "head_of_corporate_parenting": HOCP,
    "head_of_service": HOS,
    "assistant_director": AD,
}
HOUR = timedelta(hours=1)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Ladder:
    """Drives disputes through `raise_dispute` and `apply_trigger`, each at the moment it is given."""

    sessions: sessionmaker[Session]
    policy: Policy

    def raise_(self, at: datetime, **fields: Any) -> uuid.UUID:
        return raise_dispute(self.sessions, self.policy, at, **fields).dispute.id

    def act(
        self, dispute_id: uuid.UUID, trigger: str, at: datetime, actor: Actor = IRO, **fields: Any
    ) -> Dispute:
        defaults: dict[str, Any] = {
            "escalate": {"reason": "Not satisfied"},
            "reopen": {"reason": "The agreed action did not happen"},
            "withdraw": {"reason": "No longer needed"},
            "resolve": {"outcome": "Plan agreed", "outcome_code": "action_agreed"},
            "respond": {"response": "We will act"},
            "refer_to_cafcass": {"reason": "Ladder exhausted", "referred_on": at.date()},
            "close": {"outcome": "CAFCASS secured a plan"},
            "amend": {"reason": "Recorded wrongly"},
        }.get(trigger, {})
        data = ActionInput(**{**defaults, **fields})
        return transactions.apply_trigger(
            self.sessions, self.policy, dispute_id, trigger, actor, data, at
        ).dispute

    def respond(self, dispute_id: uuid.UUID, at: datetime, stage: str) -> Dispute:
        return self.act(dispute_id, "respond", at, OWNERS[stage])

    def timeout(self, dispute: Dispute) -> Dispute:
        """The scheduler's automatic escalation, at the moment it is due."""
        assert dispute.escalate_at is not None
        fired = fire_timer(
            self.sessions, self.policy, dispute.id, dispute.stage_entry_seq, dispute.escalate_at
        )
        assert fired == "timeout"
        return fetch(self.sessions, dispute.id)


@dataclass
class Climbed:
    dispute_id: uuid.UUID
    raised_at: datetime
    resolved_at: datetime
    stage: str
    automatic: int
    manual: int
    responses: int
    late: int


def climb(ladder: Ladder, raised_at: datetime, moves: str, *, late: bool = False, **fields: Any) -> Climbed:
    """Raise at Quality Assurance, move up once per letter of `moves` (`a` a timeout, `m` a response and a
    manual escalation), then the stage's owner responds (late if asked) and the IRO resolves."""
    dispute_id = ladder.raise_(raised_at, **fields)
    with ladder.sessions() as session:
        dispute = session.get_one(Dispute, dispute_id)
    at = raised_at
    for move in moves:
        if move == "a":
            dispute = ladder.timeout(dispute)
            at = dispute.stage_entered_at
        else:
            at += HOUR
            ladder.respond(dispute_id, at, dispute.stage)
            at += HOUR
            dispute = ladder.act(dispute_id, "escalate", at)
    assert dispute.due_at is not None
    at = dispute.due_at + HOUR if late else at + HOUR
    responded = ladder.respond(dispute_id, at, dispute.stage)
    at += HOUR
    ladder.act(dispute_id, "resolve", at)
    return Climbed(
        dispute_id=dispute_id,
        raised_at=raised_at,
        resolved_at=at,
        stage=responded.stage,
        automatic=moves.count("a"),
        manual=moves.count("m"),
        responses=moves.count("m") + 1,
        late=int(late),
    )


# (stage resolved at, moves, late final response) per dispute.
SEED_2016 = [
    *[("team_manager", "m", False)] * 4,
    *[("team_manager", "a", False)] * 2,
    ("head_of_corporate_parenting", "mm", False),
    ("head_of_corporate_parenting", "am", True),
    ("head_of_service", "mma", False),
]
SEED_2017 = [
    *[("team_manager", "m", False)] * 6,
    ("team_manager", "m", True),
    *[("team_manager", "a", False)] * 3,
    ("team_manager", "a", True),
    *[("head_of_corporate_parenting", "mm", False)] * 2,
    *[("head_of_corporate_parenting", "am", False)] * 2,
    ("head_of_corporate_parenting", "aa", True),
    ("head_of_service", "mam", False),
    ("head_of_service", "aaa", False),
]
CATEGORY_CYCLE = [
    ["permanency_delay"],
    ["care_planning_timescale"],
    ["placement_choice", "contact"],
    ["independent_visitor"],
    ["permanency_delay", "education"],
    ["independent_living"],
]


@dataclass
class SeedYears:
    previous: list[Climbed] = field(default_factory=list)
    this: list[Climbed] = field(default_factory=list)
    categories: Counter[str] = field(default_factory=Counter)


def seed_years(ladder: Ladder) -> SeedYears:
    """9 disputes in 2016-17 and 18 in 2017-18, each raised, climbed and resolved within its year."""
    seeded = SeedYears()
    for i, (stage, moves, late) in enumerate(SEED_2016):
        climbed = climb(
            ladder, datetime(2016, 4, 11, 10, tzinfo=UTC) + timedelta(days=30 * i), moves, late=late
        )
        assert climbed.stage == stage
        seeded.previous.append(climbed)
    for i, (stage, moves, late) in enumerate(SEED_2017):
        categories = CATEGORY_CYCLE[i % len(CATEGORY_CYCLE)]
        raised_at = datetime(2017, 4, 10, 10, tzinfo=UTC) + timedelta(days=17 * i)
        climbed = climb(ladder, raised_at, moves, late=late, categories=categories)
        assert climbed.stage == stage
        seeded.this.append(climbed)
        seeded.categories.update(categories)
    return seeded


# --- past years as a council's spreadsheet, for import-history --------------------------------------------


def row(reference: str, **fields: str) -> dict[str, str]:
    return {
        "reference": reference,
        "child_ref": "LCS-9",
        "case_type": "looked_after",
        "categories": "permanency_delay",
        "raised_on": "2016-05-03",
        "highest_stage": "team_manager",
        "resolved_at_stage": "team_manager",
        "closed_on": "2016-05-20",
        "outcome": "resolved",
        **fields,
    }


def write(tmp_path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> Path:
    path = tmp_path / "history.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


# 2016-17 as a council's spreadsheet has it: 6 resolved at Team Manager, 2 at Head of Corporate
# Parenting, 1 at Head of Service; one dispute a month from April to December 2016.
SEED_2016_STAGES = ["team_manager"] * 6 + ["head_of_corporate_parenting"] * 2 + ["head_of_service"]
SEED_2016_ROWS = [
    row(
        f"ESC/16/{month:02d}",
        raised_on=f"2016-{month:02d}-10",
        closed_on=f"2016-{month:02d}-24",
        highest_stage=stage,
        resolved_at_stage=stage,
    )
    for month, stage in zip(range(4, 13), SEED_2016_STAGES, strict=True)
]
