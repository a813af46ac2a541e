"""Past years' disputes from a council's spreadsheet, so year-on-year figures work from the first day.

An imported dispute is history. It is raised at the highest stage it reached (the path there is not in
the spreadsheet, so no escalations are invented), ends as the spreadsheet says, and has no timers: the
sweep never touches it and nobody is reminded. Its audit entries have channel and actor `import`, and
chain like any other, so the report and `audit verify` treat it like any other dispute.

Events are dated at noon London time on the day given, well clear of midnight and of clock changes, so
the day (and the reporting year) is the one in the file. The import is all or nothing: every row is
checked first, and every bad row is named by its line number with the reason.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service import audit
from dispute_service.access import Actor
from dispute_service.errors import InvalidInput
from dispute_service.models import Dispute, Organisation, StageEntry
from dispute_service.policies import version_id
from dispute_service.stages import calendar_for
from states.machine import Position, machine_for
from states.policy import OWN_LADDER_ID, Ladder, Policy
from states.vocabulary import CASE_TYPES, CATEGORIES, REF_PATTERN, State, Trigger

COLUMNS = (
    "reference",
    "child_ref",
    "case_type",
    "categories",
    "raised_on",
    "highest_stage",
    "resolved_at_stage",
    "closed_on",
    "outcome",
)
ENDINGS = {
    "resolved": (Trigger.RESOLVE, State.RESOLVED),
    "withdrawn": (Trigger.WITHDRAW, State.WITHDRAWN),
    "closed": (Trigger.CLOSE, State.CLOSED),
}
# Optional: a file without them is all on the council's own ladder, as every file was before SPEC 10.
OPTIONAL_COLUMNS = ("ladder", "organisation")
OUTCOMES = tuple(ENDINGS)
IMPORT = "import"
IMPORTER = Actor(IMPORT, frozenset(), IMPORT)
EVENT_TIME = time(12, 0)
# The service gives out references of this form; an imported one could collide with a future dispute's.
_OWN_REFERENCE = re.compile(r"DR-\d{4}-\d+", re.IGNORECASE)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# As the API checks a child reference: what is loaded here ends up in emails' headers as well.
_REF = re.compile(REF_PATTERN)
_REF_CHARACTERS = "letters, digits and . _ / - only, starting with a letter or digit"
MAX_REFERENCE = 40
MAX_CHILD_REF = 64
FLUSH_EVERY = 500
# Below this many rows an import takes about a second, and a progress bar would only flicker.
PROGRESS_FROM_ROWS = 1_000

# (phase, rows done, rows in all): "checking" while rows are checked, then "loading".
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class HistoryRow:
    line: int
    reference: str
    child_ref: str
    case_type: str
    categories: list[str]
    raised_on: date
    highest_stage: str
    resolved_at_stage: str | None
    closed_on: date | None
    outcome: str | None
    ladder: str = OWN_LADDER_ID
    organisation: str | None = None


def import_history(
    session: Session,
    policy: Policy,
    path: Path,
    now: datetime,
    *,
    progress: Progress | None = None,
) -> int:
    """Load the file and return the number of disputes imported; all of it lands in the caller's
    transaction, or none of it does.

    Raises InvalidInput naming each bad line; nothing is loaded then.
    """
    tz = calendar_for(policy.calendar).tz
    raw = _read(path)
    report = progress or (lambda phase, done, total: None)
    rows = _check(session, policy, raw, now.astimezone(tz).date(), report)
    policy_id = version_id(session, policy, now)
    for first in range(0, len(rows), FLUSH_EVERY):
        session.add_all(
            _dispute(session, policy, policy_id, row, now) for row in rows[first : first + FLUSH_EVERY]
        )
        # In chunks, so a large file's objects need not all be held before the database sees them.
        session.flush()
        report("loading", min(first + FLUSH_EVERY, len(rows)), len(rows))
    return len(rows)


def count_rows(path: Path) -> int:
    """Rows in the file (lines less the header), cheaply, to decide whether a progress bar is worth it."""
    with path.open("rb") as handle:
        return max(0, sum(1 for _ in handle) - 1)


def _read(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for each record, numbered as a text editor shows the line it starts on."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise InvalidInput([("line 1", f"missing column(s): {', '.join(missing)}")])
            reader.fieldnames = header
            rows = []
            for record in reader:
                values = {k: v or "" for k, v in record.items() if k is not None}
                for name in OPTIONAL_COLUMNS:
                    values.setdefault(name, "")
                # The reader has just read the record's last line; a quoted cell may hold line breaks.
                line = reader.line_num - sum(v.count("\n") for v in values.values())
                rows.append((line, {k: v.strip() for k, v in values.items()}))
            return rows
    except UnicodeDecodeError as exc:
        raise InvalidInput([("file", f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    except csv.Error as exc:
        raise InvalidInput([("file", f"is not a readable CSV: {exc}")]) from None


def _check(
    session: Session,
    policy: Policy,
    raw: list[tuple[int, dict[str, str]]],
    today: date,
    report: Progress,
) -> list[HistoryRow]:
    errors: list[tuple[str, str]] = []
    rows: list[HistoryRow] = []
    seen: dict[str, int] = {}
    # A handful of organisations, read once: each row's is checked against them.
    kinds: dict[str, str] = dict(session.execute(select(Organisation.id, Organisation.kind)).all())
    for done, (line, values) in enumerate(raw, start=1):
        problems: list[str] = []
        row = _parse(policy, values, today, problems, kinds)
        reference = values["reference"]
        if reference and reference in seen:
            problems.append(f"reference {reference!r} is already on line {seen[reference]}")
        seen.setdefault(reference, line)
        errors.extend((f"line {line}", problem) for problem in problems)
        if row is not None and not problems:
            rows.append(HistoryRow(line=line, **row))
        if done % FLUSH_EVERY == 0 or done == len(raw):
            report("checking", done, len(raw))
    existing = _existing_references(session, [r.reference for r in rows])
    errors.extend(
        (f"line {r.line}", f"reference {r.reference!r} is already in the service")
        for r in rows
        if r.reference in existing
    )
    if errors:
        errors.sort(key=lambda e: int(e[0].split()[1]) if e[0].startswith("line ") else 0)
        raise InvalidInput(errors)
    return rows


def _parse(
    policy: Policy, v: dict[str, str], today: date, problems: list[str], kinds: dict[str, str]
) -> dict[str, Any] | None:
    ladder = _ladder(policy, v, problems)
    organisation = _organisation(ladder, v, problems, kinds)
    reference = v["reference"]
    if not reference:
        problems.append("reference is empty")
    elif len(reference) > MAX_REFERENCE:
        problems.append(f"reference is longer than {MAX_REFERENCE} characters")
    elif not _REF.fullmatch(reference):
        problems.append(f"reference {reference!r} may hold {_REF_CHARACTERS}")
    elif _OWN_REFERENCE.fullmatch(reference):
        problems.append(f"reference {reference!r} has the form DR-YYYY-NNNN, which the service gives out")
    child_ref = v["child_ref"]
    if not child_ref:
        problems.append("child_ref is empty: the case management system's ID for the child")
    elif len(child_ref) > MAX_CHILD_REF:
        problems.append(f"child_ref is longer than {MAX_CHILD_REF} characters")
    elif not _REF.fullmatch(child_ref):
        problems.append(f"child_ref {child_ref!r} may hold {_REF_CHARACTERS}")
    case_type = v["case_type"]
    if case_type not in CASE_TYPES:
        problems.append(f"case_type {case_type!r} is not one of: {', '.join(CASE_TYPES)}")
    categories = list(dict.fromkeys(c.strip() for c in v["categories"].split(";") if c.strip()))
    unknown = [c for c in categories if c not in CATEGORIES]
    if not categories or unknown:
        problems.append(
            f"categories {v['categories']!r} must be one or more of {', '.join(CATEGORIES)}, separated by ';'"
        )
    raised_on = _date(v, "raised_on", today, problems, required=True)
    closed_on = _date(v, "closed_on", today, problems, required=False)
    highest = _stage(ladder, v, "highest_stage", problems, required=True)
    resolved_at = _stage(ladder, v, "resolved_at_stage", problems, required=False)
    outcome = v["outcome"] or None
    if outcome is not None and outcome not in OUTCOMES:
        problems.append(f"outcome {outcome!r} is not one of: {', '.join(OUTCOMES)}, or empty while open")
    if outcome is None and v["closed_on"]:
        problems.append("closed_on is given but outcome is empty: an open dispute has no closed_on")
    if outcome is not None and not v["closed_on"]:
        problems.append(f"outcome is {outcome} but closed_on is empty")
    if raised_on is not None and closed_on is not None and closed_on < raised_on:
        problems.append(f"closed_on {closed_on} is before raised_on {raised_on}")
    if outcome == "resolved" and not v["resolved_at_stage"]:
        problems.append("outcome is resolved but resolved_at_stage is empty")
    if outcome != "resolved" and v["resolved_at_stage"]:
        problems.append("resolved_at_stage is given but the outcome is not resolved")
    if resolved_at is not None and highest is not None and resolved_at != highest:
        # A dispute only ever moves up, and is resolved where it stands: the two are the same stage.
        problems.append(
            f"resolved_at_stage {resolved_at!r} differs from highest_stage {highest!r}: "
            "a dispute is resolved at the highest stage it has reached"
        )
    if outcome == "closed" and case_type in CASE_TYPES and case_type != "looked_after":
        problems.append("outcome closed follows a CAFCASS referral, which is for looked-after children only")
    if outcome == "closed" and ladder is not None and not ladder.is_own:
        problems.append("outcome closed follows a CAFCASS referral, on the council's own ladder only")
    if problems or raised_on is None or highest is None or ladder is None:
        return None
    return {
        "reference": reference,
        "child_ref": child_ref,
        "case_type": case_type,
        "categories": categories,
        "raised_on": raised_on,
        "highest_stage": highest,
        "resolved_at_stage": resolved_at,
        "closed_on": closed_on,
        "outcome": outcome,
        "ladder": ladder.id,
        "organisation": organisation,
    }


def _ladder(policy: Policy, v: dict[str, str], problems: list[str]) -> Ladder | None:
    ladder_id = v["ladder"] or OWN_LADDER_ID
    try:
        return policy.ladder(ladder_id)
    except KeyError:
        ids = ", ".join(ladder.id for ladder in policy.all_ladders)
        problems.append(f"ladder {ladder_id!r} is not a ladder of the policy: {ids}, or empty for own")
        return None


def _organisation(
    ladder: Ladder | None, v: dict[str, str], problems: list[str], kinds: dict[str, str]
) -> str | None:
    """The organisation on the other side: none on the council's own ladder, one of the ladder's kind on a
    partner ladder, as a raised dispute has."""
    organisation = v["organisation"] or None
    if ladder is None:
        return None
    if ladder.is_own:
        if organisation is not None:
            problems.append("organisation is given but the ladder is the council's own: give its ladder")
        return None
    if organisation is None:
        problems.append(f"organisation is empty: a dispute on the {ladder.id} ladder is with an organisation")
        return None
    kind = kinds.get(organisation)
    if kind is None:
        problems.append(f"organisation {organisation!r} is not in the service: add it first")
        return None
    if kind != ladder.organisation_kind:
        problems.append(
            f"organisation {organisation!r} is {kind}, but the {ladder.id} ladder is for "
            f"{ladder.organisation_kind}"
        )
        return None
    return organisation


def _date(v: dict[str, str], name: str, today: date, problems: list[str], *, required: bool) -> date | None:
    text = v[name]
    if not text:
        if required:
            problems.append(f"{name} is empty")
        return None
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        parsed = date.fromisoformat(text)
    except ValueError:
        problems.append(f"{name} {text!r} is not a date in the form YYYY-MM-DD")
        return None
    if parsed > today:
        problems.append(f"{name} {text} is in the future")
        return None
    return parsed


def _stage(
    ladder: Ladder | None, v: dict[str, str], name: str, problems: list[str], *, required: bool
) -> str | None:
    """A stage of the row's ladder (the council's own unless the row says otherwise)."""
    stage = v[name]
    if not stage:
        if required:
            problems.append(f"{name} is empty")
        return None
    if ladder is None:
        return None  # the ladder is refused already; its stages cannot be told
    if stage not in ladder.stage_ids:
        which = "the policy" if ladder.is_own else f"the {ladder.id} ladder"
        problems.append(f"{name} {stage!r} is not a stage of {which}: {', '.join(ladder.stage_ids)}")
        return None
    return stage


def _existing_references(session: Session, references: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(references), 500):
        chunk = references[i : i + 500]
        found.update(session.scalars(select(Dispute.reference).where(Dispute.reference.in_(chunk))))
    return found


def _dispute(session: Session, policy: Policy, policy_id: int, row: HistoryRow, now: datetime) -> Dispute:
    """The dispute as the spreadsheet leaves it, with its stage entry and audit entries."""
    tz = calendar_for(policy.calendar).tz
    raised_at = datetime.combine(row.raised_on, EVENT_TIME, tzinfo=tz).astimezone(UTC)
    # A partner ladder's named stage reads as owned by `external`: with no contact in the file, nobody.
    stage = policy.any_stage(row.highest_stage)
    start = machine_for(policy).start(stage.id)
    dispute = Dispute(
        id=uuid.uuid4(),
        reference=row.reference,
        child_ref=row.child_ref,
        sibling_refs=[],
        case_type=row.case_type,
        categories=row.categories,
        rating=None,
        # Nobody in the staff directory raised it; an IRO manager can reassign_iro an open one.
        iro_email=IMPORT,
        team_manager_email=None,
        stage=stage.id,
        state=start.state.value,
        owner_email=IMPORT if stage.owner_role == "iro" else None,
        owner_role=stage.owner_role,
        stage_entry_seq=1,
        stage_entered_at=raised_at,
        due_at=None,
        escalate_at=None,
        next_reminder_at=None,
        policy_id=policy_id,
        ladder=row.ladder,
        organisation_id=row.organisation,
        contacts={},
        raised_at=raised_at,
        updated_at=now,
        version=1,
        audit_seq=0,
        audit_hash=audit.GENESIS_HASH,
    )
    visit = StageEntry(
        dispute=dispute,
        seq=1,
        stage=stage.id,
        owner_email=dispute.owner_email,
        owner_role=stage.owner_role,
        entered_at=raised_at,
    )

    def event(trigger: Trigger, to_state: State | None, details: dict[str, Any], at: datetime) -> None:
        before = None if trigger is Trigger.RAISE else Position(dispute.stage, State(dispute.state))
        if to_state is not None:
            dispute.state = to_state.value
        audit.append(
            session,
            dispute,
            actor=IMPORTER,
            actor_role=None,
            trigger=trigger.value,
            before=before,
            before_times=(None, None),
            texts={},
            details={**details, "imported": True},
            now=at,
        )
        dispute.version = dispute.audit_seq

    raise_details: dict[str, Any] = {"start_stage": stage.id, "child_ref": dispute.child_ref}
    if row.ladder != OWN_LADDER_ID:
        # As a raised partner dispute's entry says it; the council's own keep exactly the entries they had.
        raise_details |= {"ladder": row.ladder, "organisation": row.organisation}
    event(Trigger.RAISE, None, raise_details, raised_at)
    if row.outcome is None or row.closed_on is None:
        return dispute
    closed_at = datetime.combine(row.closed_on, EVENT_TIME, tzinfo=tz).astimezone(UTC)
    if row.outcome == "closed":
        # Closing follows a CAFCASS referral. Its date is not in the file: it is dated no earlier than known.
        at_top = stage.id == policy.last_stage.id
        event(
            Trigger.REFER_TO_CAFCASS,
            State.REFERRED if at_top else None,
            {"alongside": not at_top, "referred_on": None, "cafcass_reference": None},
            closed_at,
        )
    trigger, ended = ENDINGS[row.outcome]
    details: dict[str, Any] = {}
    if row.outcome == "resolved":
        dispute.resolved_at, dispute.resolved_stage = closed_at, stage.id
        details = {"outcome_code": None, "resolved_stage": stage.id}
    elif row.outcome == "closed":
        details = {"outcome_code": None}
    dispute.ended_at = closed_at
    visit.left_at = closed_at
    event(trigger, ended, details, closed_at)
    return dispute
