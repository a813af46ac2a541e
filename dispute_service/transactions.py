"""The use cases as transactions of their own, for callers that have no transaction to compose them in: the
command line, the demo loader, benchmarks and tests. Each is exactly one transaction around one core, and
takes the core's arguments after the session factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from dispute_service import disputes, partners, people, queries
from dispute_service.database import Sessions, read_snapshot
from dispute_service.report import annual, history

P = ParamSpec("P")
T = TypeVar("T")


def _in_transaction(core: Callable[Concatenate[Session, P], T]) -> Callable[Concatenate[Sessions, P], T]:
    def run(sessions: Sessions, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with sessions.begin() as session:
            return core(session, *args, **kwargs)

    return run


def _in_snapshot(core: Callable[Concatenate[Session, P], T]) -> Callable[Concatenate[Sessions, P], T]:
    def run(sessions: Sessions, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with read_snapshot(sessions) as session:
            return core(session, *args, **kwargs)

    return run


raise_dispute = _in_transaction(disputes.raise_dispute)
apply_trigger = _in_transaction(disputes.apply_trigger)
get_dispute = _in_transaction(queries.get_dispute)
list_disputes = _in_transaction(queries.list_disputes)
audit_log = _in_transaction(queries.audit_log)
import_people = _in_transaction(people.import_people)
import_history = _in_transaction(history.import_history)
annual_report = _in_snapshot(annual.annual_report)
import_organisations = _in_transaction(partners.import_organisations)
import_contacts = _in_transaction(partners.import_contacts)
