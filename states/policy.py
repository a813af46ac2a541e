"""The policy file: the council's ladder of stages, the partner ladders beside it, their timescales and
the working-day calendar."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from importlib import resources
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from states.timescale import Timescale, parse_timescale
from states.vocabulary import EXTERNAL, ORGANISATION_KINDS, ROLES

BANK_HOLIDAYS = ("england-and-wales", "none")
# The council's own ladder is the top-level [[stages]]; a partner ladder may not take its id.
OWN_LADDER_ID = "own"
OWN_LADDER_TITLE = "The council's own ladder"
# What follows a partner ladder's last stage. Only the IRO's decision for now: referral to CAFCASS is a
# stage of the council's own ladder, not of a partner's.
LADDER_ENDS = ("iro_decision",)
NAMED_OWNER = "named"

_STAGE_ID = re.compile(r"[a-z][a-z0-9_]*")
_CLOCK = re.compile(r"\d{2}:\d{2}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECTIONS = ("calendar", "rules", "stages", "ladders")
_CALENDAR_KEYS = ("timezone", "bank_holidays", "closure_days", "close_of_business", "start_of_business")
_RULE_KEYS = ("reopen_within", "remind_iro_after", "link_valid_after_due")
_STAGE_KEYS = ("id", "title", "owner_role", "respond_within", "reminders")
_LADDER_KEYS = ("id", "title", "organisation_kind", "end", "stages")
_LADDER_STAGE_KEYS = ("id", "title", "owner_role", "owner", "respond_within", "reminders")

T = TypeVar("T")


@dataclass(frozen=True)
class CalendarConfig:
    timezone: str
    bank_holidays: str | None  # None: no bank holidays at all
    closure_days: tuple[date, ...]
    close_of_business: time
    start_of_business: time


@dataclass(frozen=True)
class Rules:
    reopen_within: Timescale
    remind_iro_after: Timescale
    link_valid_after_due: Timescale


@dataclass(frozen=True)
class Stage:
    id: str
    title: str
    owner_role: str
    respond_within: Timescale | None
    reminders: tuple[Timescale, ...]


@dataclass(frozen=True)
class LadderStage:
    """A stage of a partner ladder. Every one has a due date: after the last, the ladder's `end` follows."""

    id: str
    title: str
    owner_role: str | None  # None: owner = "named", the IRO names the contact for each dispute
    respond_within: Timescale
    reminders: tuple[Timescale, ...]

    @property
    def is_named(self) -> bool:
        return self.owner_role is None


@dataclass(frozen=True)
class Ladder:
    id: str
    title: str
    # None and None for the council's own ladder: it is no organisation's, and its last stage (cafcass)
    # is itself the end.
    organisation_kind: str | None
    end: str | None
    stages: tuple[Stage | LadderStage, ...]

    @property
    def is_own(self) -> bool:
        return self.id == OWN_LADDER_ID

    @property
    def stage_ids(self) -> tuple[str, ...]:
        return tuple(stage.id for stage in self.stages)

    def stage(self, stage_id: str) -> Stage | LadderStage:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)


@dataclass(frozen=True)
class Policy:
    calendar: CalendarConfig
    rules: Rules
    stages: tuple[Stage, ...]  # the council's own ladder, the only one the disputes climb so far
    ladders: tuple[Ladder, ...]  # the partner ladders, in file order
    text: str
    sha256: str

    @property
    def own_ladder(self) -> Ladder:
        return Ladder(
            id=OWN_LADDER_ID, title=OWN_LADDER_TITLE, organisation_kind=None, end=None, stages=self.stages
        )

    @property
    def all_ladders(self) -> tuple[Ladder, ...]:
        return (self.own_ladder, *self.ladders)

    def ladder(self, ladder_id: str) -> Ladder:
        for ladder in self.all_ladders:
            if ladder.id == ladder_id:
                return ladder
        raise KeyError(ladder_id)

    def ladder_of(self, stage_id: str) -> Ladder:
        """The ladder a stage belongs to; stage ids are unique across every ladder, so there is one."""
        for ladder in self.all_ladders:
            if stage_id in ladder.stage_ids:
                return ladder
        raise KeyError(stage_id)

    @property
    def stage_ids(self) -> tuple[str, ...]:
        return tuple(stage.id for stage in self.stages)

    @property
    def first_stage(self) -> Stage:
        return self.stages[0]

    @property
    def last_stage(self) -> Stage:
        return self.stages[-1]

    def index(self, stage_id: str) -> int:
        for position, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return position
        raise KeyError(stage_id)

    def stage(self, stage_id: str) -> Stage:
        return self.stages[self.index(stage_id)]

    def any_stage(self, stage_id: str) -> Stage:
        """A stage of any ladder, as the council's own stages are described: a partner ladder's named stage
        has the owner role `external` (its owner is the contact named for the dispute). Stage ids are
        unique across ladders, so a dispute's stage alone says which this is."""
        for ladder in self.all_ladders:
            for stage in ladder.stages:
                if stage.id != stage_id:
                    continue
                if isinstance(stage, Stage):
                    return stage
                return Stage(
                    id=stage.id,
                    title=stage.title,
                    owner_role=stage.owner_role or EXTERNAL,
                    respond_within=stage.respond_within,
                    reminders=stage.reminders,
                )
        raise KeyError(stage_id)

    def with_calendar(self, calendar: CalendarConfig) -> Policy:
        # The ladder stays the version a dispute was raised under; holidays and closures are always current.
        return dataclasses.replace(self, calendar=calendar)


class PolicyError(ValueError):
    """Every problem found in a policy file, each as (key path, message)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("\n".join(f"{key}: {message}" for key, message in errors))


def default_policy_text() -> str:
    return resources.files("states").joinpath("default_policy.toml").read_text(encoding="utf-8")


def load_default_policy() -> Policy:
    return parse_policy(default_policy_text())


def parse_policy(text: str) -> Policy:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([("(file)", f"invalid TOML: {exc}")]) from exc
    errors = _Errors()
    errors.unknown_keys("", document, _SECTIONS)
    calendar = _calendar(errors, _table(errors, document, "calendar"))
    rules = _rules(errors, _table(errors, document, "rules"))
    stages = _stages(errors, document.get("stages"))
    ladders = _ladders(errors, document.get("ladders", []))
    _unique_stage_ids(errors, document)
    if errors or calendar is None or rules is None or stages is None or ladders is None:
        raise PolicyError(errors.items)
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Policy(calendar=calendar, rules=rules, stages=stages, ladders=ladders, text=text, sha256=sha256)


class _Errors:
    """Collects every problem, so that one run of the validator reports them all."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, key: str, message: str) -> None:
        self.items.append((key, message))

    def unknown_keys(self, prefix: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
        for key in table:
            if key not in known:
                self.add(f"{prefix}{key}", f"unknown key (expected one of: {', '.join(known)})")

    def check(self, key: str, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except ValueError as exc:
            self.add(key, str(exc))
            return None


def _table(errors: _Errors, document: dict[str, Any], name: str) -> dict[str, Any] | None:
    table = document.get(name)
    if table is None:
        errors.add(name, f"missing required table [{name}]")
    elif not isinstance(table, dict):
        errors.add(name, f"expected a table [{name}]")
        return None
    return table


def _calendar(errors: _Errors, table: dict[str, Any] | None) -> CalendarConfig | None:
    if table is None:
        return None
    errors.unknown_keys("calendar.", table, _CALENDAR_KEYS)
    timezone = errors.check("calendar.timezone", lambda: _timezone(_required(table, "timezone")))
    bank_holidays = errors.check("calendar.bank_holidays", lambda: _bank_holidays(table))
    closure_days = _closure_days(errors, table.get("closure_days", []))
    close = errors.check("calendar.close_of_business", lambda: _clock(_required(table, "close_of_business")))
    start = errors.check("calendar.start_of_business", lambda: _clock(_required(table, "start_of_business")))
    if start is not None and close is not None and start >= close:
        errors.add("calendar.start_of_business", "must be earlier than close_of_business")
    if timezone is None or bank_holidays is None or closure_days is None or close is None or start is None:
        return None
    return CalendarConfig(
        timezone=timezone,
        bank_holidays=None if bank_holidays == "none" else bank_holidays,
        closure_days=closure_days,
        close_of_business=close,
        start_of_business=start,
    )


def _rules(errors: _Errors, table: dict[str, Any] | None) -> Rules | None:
    if table is None:
        return None
    errors.unknown_keys("rules.", table, _RULE_KEYS)
    parsed = {
        key: errors.check(f"rules.{key}", functools.partial(_timescale, table, key)) for key in _RULE_KEYS
    }
    remind = parsed["remind_iro_after"]
    if remind is not None and remind.is_zero:
        # A zero interval would remind the IRO again on every sweep.
        errors.add("rules.remind_iro_after", "must be greater than zero")
        return None
    reopen, link = parsed["reopen_within"], parsed["link_valid_after_due"]
    if reopen is None or remind is None or link is None:
        return None
    return Rules(reopen_within=reopen, remind_iro_after=remind, link_valid_after_due=link)


def _stages(errors: _Errors, value: object) -> tuple[Stage, ...] | None:
    if value is None:
        errors.add("stages", "missing required [[stages]]")
        return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        errors.add("stages", "expected an array of tables ([[stages]])")
        return None
    if len(value) < 2:
        errors.add("stages", f"at least 2 stages are needed, found {len(value)}")
    stages = [_stage(errors, f"stages[{i}]", table, i == len(value) - 1) for i, table in enumerate(value)]
    if any(stage is None for stage in stages):
        return None
    return tuple(stage for stage in stages if stage is not None)


def _stage(errors: _Errors, path: str, table: dict[str, Any], is_last: bool) -> Stage | None:
    errors.unknown_keys(f"{path}.", table, _STAGE_KEYS)
    stage_id = errors.check(f"{path}.id", lambda: _stage_id(_required(table, "id")))
    title = errors.check(f"{path}.title", lambda: _title(_required(table, "title")))
    owner_role = errors.check(f"{path}.owner_role", lambda: _role(_required(table, "owner_role")))
    respond_within = None
    if is_last and "respond_within" in table:
        errors.add(f"{path}.respond_within", "the last stage ends the ladder and must not have a timescale")
    elif not is_last:
        respond_within = errors.check(f"{path}.respond_within", lambda: _timescale(table, "respond_within"))
    reminders = _reminders(errors, path, table.get("reminders", []))
    if is_last and table.get("reminders"):
        errors.add(f"{path}.reminders", "the last stage has no due date, so it cannot have reminders")
    if stage_id is None or title is None or owner_role is None or reminders is None:
        return None
    if respond_within is None and not is_last:
        return None
    return Stage(
        id=stage_id, title=title, owner_role=owner_role, respond_within=respond_within, reminders=reminders
    )


def _ladders(errors: _Errors, value: object) -> tuple[Ladder, ...] | None:
    # A policy without [[ladders]] is valid: a council need not work with partners through the service.
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        errors.add("ladders", "expected an array of tables ([[ladders]])")
        return None
    ladders = [_ladder(errors, f"ladders[{i}]", table) for i, table in enumerate(value)]
    first_at: dict[str, int] = {}
    for i, table in enumerate(value):
        ladder_id = table.get("id")
        if not isinstance(ladder_id, str) or ladder_id == OWN_LADDER_ID:
            continue
        if ladder_id in first_at:
            errors.add(
                f"ladders[{i}].id", f"duplicate ladder id {ladder_id!r} (also ladders[{first_at[ladder_id]}])"
            )
        first_at.setdefault(ladder_id, i)
    if any(ladder is None for ladder in ladders):
        return None
    return tuple(ladder for ladder in ladders if ladder is not None)


def _ladder(errors: _Errors, path: str, table: dict[str, Any]) -> Ladder | None:
    errors.unknown_keys(f"{path}.", table, _LADDER_KEYS)
    ladder_id = errors.check(f"{path}.id", lambda: _ladder_id(_required(table, "id")))
    title = errors.check(f"{path}.title", lambda: _title(_required(table, "title")))
    kind = errors.check(
        f"{path}.organisation_kind",
        lambda: _one_of(_required(table, "organisation_kind"), ORGANISATION_KINDS),
    )
    end = errors.check(f"{path}.end", lambda: _one_of(_required(table, "end"), LADDER_ENDS))
    stages = _ladder_stages(errors, path, table.get("stages"))
    if ladder_id is None or title is None or kind is None or end is None or stages is None:
        return None
    return Ladder(id=ladder_id, title=title, organisation_kind=kind, end=end, stages=stages)


def _ladder_stages(errors: _Errors, path: str, value: object) -> tuple[LadderStage, ...] | None:
    if value is None:
        errors.add(f"{path}.stages", "missing required [[ladders.stages]]")
        return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        errors.add(f"{path}.stages", "expected an array of tables ([[ladders.stages]])")
        return None
    if not value:
        errors.add(f"{path}.stages", "at least 1 stage is needed, found 0")
        return None
    stages = [_ladder_stage(errors, f"{path}.stages[{i}]", table) for i, table in enumerate(value)]
    if any(stage is None for stage in stages):
        return None
    return tuple(stage for stage in stages if stage is not None)


def _ladder_stage(errors: _Errors, path: str, table: dict[str, Any]) -> LadderStage | None:
    errors.unknown_keys(f"{path}.", table, _LADDER_STAGE_KEYS)
    stage_id = errors.check(f"{path}.id", lambda: _stage_id(_required(table, "id")))
    title = errors.check(f"{path}.title", lambda: _title(_required(table, "title")))
    owner = _ladder_stage_owner(errors, path, table)
    # Every stage of a partner ladder is timed: after the last, the IRO decides, so it too needs a due date.
    respond_within = errors.check(f"{path}.respond_within", lambda: _timescale(table, "respond_within"))
    reminders = _reminders(errors, path, table.get("reminders", []))
    if stage_id is None or title is None or owner is None or respond_within is None or reminders is None:
        return None
    return LadderStage(
        id=stage_id,
        title=title,
        owner_role=None if owner == NAMED_OWNER else owner,
        respond_within=respond_within,
        reminders=reminders,
    )


def _ladder_stage_owner(errors: _Errors, path: str, table: dict[str, Any]) -> str | None:
    """The stage's council role, or NAMED_OWNER when the IRO names a contact for each dispute."""
    if "owner_role" in table and "owner" in table:
        errors.add(f"{path}.owner", 'give either owner_role (a council role) or owner = "named", not both')
        return None
    if "owner_role" in table:
        return errors.check(f"{path}.owner_role", lambda: _role(table["owner_role"]))
    if "owner" in table:
        return errors.check(f"{path}.owner", lambda: _named(table["owner"]))
    errors.add(
        f"{path}.owner",
        'missing required key: owner = "named" (the IRO names the contact) or owner_role (a council role)',
    )
    return None


def _unique_stage_ids(errors: _Errors, document: dict[str, Any]) -> None:
    # A dispute's stage id alone says which ladder it is on, so no id may appear twice anywhere: not within
    # the council's ladder, nor within or across partner ladders, nor in both.
    first_at: dict[str, str] = {}
    for path, table in _stage_tables(document):
        stage_id = table.get("id")
        if not isinstance(stage_id, str):
            continue
        if stage_id in first_at:
            errors.add(f"{path}.id", f"duplicate stage id {stage_id!r} (also {first_at[stage_id]})")
        first_at.setdefault(stage_id, path)


def _stage_tables(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every stage's table with its key path, the council's first; anything malformed is left out, as its
    own check has already said what is wrong with it."""

    def tables(value: object) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            return []
        return [item for item in value if isinstance(item, dict)]

    found = [(f"stages[{i}]", table) for i, table in enumerate(tables(document.get("stages")))]
    for i, ladder in enumerate(tables(document.get("ladders"))):
        found += [
            (f"ladders[{i}].stages[{j}]", table) for j, table in enumerate(tables(ladder.get("stages")))
        ]
    return found


def _reminders(errors: _Errors, path: str, value: object) -> tuple[Timescale, ...] | None:
    if not isinstance(value, list):
        errors.add(f"{path}.reminders", 'expected a list of timescales, e.g. ["-2wd", "0wd"]')
        return None
    parsed = [
        errors.check(f"{path}.reminders[{i}]", functools.partial(parse_timescale, item, allow_negative=True))
        for i, item in enumerate(value)
    ]
    if any(reminder is None for reminder in parsed):
        return None
    return tuple(reminder for reminder in parsed if reminder is not None)


def _closure_days(errors: _Errors, value: object) -> tuple[date, ...] | None:
    if not isinstance(value, list):
        errors.add("calendar.closure_days", 'expected a list of dates like ["2018-12-27"]')
        return None
    days = [
        errors.check(f"calendar.closure_days[{i}]", functools.partial(_date, day))
        for i, day in enumerate(value)
    ]
    if any(day is None for day in days):
        return None
    return tuple(sorted({day for day in days if day is not None}))


def _required(table: dict[str, Any], key: str) -> object:
    if key not in table:
        raise ValueError("missing required key")
    return table[key]


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _timescale(table: dict[str, Any], key: str) -> Timescale:
    return parse_timescale(_string(_required(table, key)))


def _timezone(value: object) -> str:
    name = _string(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name like 'Europe/London')") from exc
    return name


def _bank_holidays(table: dict[str, Any]) -> str:
    value = _string(_required(table, "bank_holidays"))
    if value not in BANK_HOLIDAYS:
        raise ValueError(f"expected one of: {', '.join(BANK_HOLIDAYS)}; got {value!r}")
    return value


def _clock(value: object) -> time:
    text = _string(value)
    try:
        if not _CLOCK.fullmatch(text):
            raise ValueError
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a time like '17:00' (HH:MM), got {text!r}") from None


def _date(value: object) -> date:
    # TOML has its own date literal (2018-12-27, unquoted); accept it beside the quoted string.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = _string(value)
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a date like '2018-12-27' (YYYY-MM-DD), got {text!r}") from None


def _stage_id(value: object) -> str:
    text = _string(value)
    if not _STAGE_ID.fullmatch(text):
        raise ValueError(f"{text!r} is not a valid stage id (a-z, 0-9 and _, starting with a letter)")
    return text


def _ladder_id(value: object) -> str:
    text = _string(value)
    if not _STAGE_ID.fullmatch(text):
        raise ValueError(f"{text!r} is not a valid ladder id (a-z, 0-9 and _, starting with a letter)")
    if text == OWN_LADDER_ID:
        raise ValueError(f"{text!r} is the council's own ladder, the top-level [[stages]]; choose another id")
    return text


def _one_of(value: object, allowed: tuple[str, ...]) -> str:
    text = _string(value)
    if text not in allowed:
        raise ValueError(f"expected one of: {', '.join(allowed)}; got {text!r}")
    return text


def _named(value: object) -> str:
    if value != NAMED_OWNER:
        expected = f'expected "{NAMED_OWNER}" (the IRO names the contact), or owner_role for council staff'
        raise ValueError(f"{expected}; got {value!r}")
    return NAMED_OWNER


def _title(value: object) -> str:
    text = _string(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _role(value: object) -> str:
    text = _string(value)
    if text not in ROLES:
        raise ValueError(f"unknown role {text!r} (expected one of: {', '.join(ROLES)})")
    return text
