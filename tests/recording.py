"""What a piece of work asks of the database: its transactions, each with the statements it ran."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


class Transactions(list[list[str]]):
    """One list of statements per BEGIN, in order."""

    def writing(self) -> list[list[str]]:
        return [t for t in self if any(s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE") for s in t)]


@contextmanager
def record_transactions(engine: Engine) -> Iterator[Transactions]:
    seen = Transactions()

    def begin(conn: Any) -> None:
        seen.append([])

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.strip().upper().startswith("BEGIN"):
            return  # SQLite's BEGIN IMMEDIATE, issued from the begin event itself
        if seen:
            seen[-1].append(sql.strip())

    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(engine, "begin", begin)
        event.remove(engine, "before_cursor_execute", statement)
