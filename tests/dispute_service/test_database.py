"""The engines: a database error's message never carries the values of the statement that failed."""

from __future__ import annotations

from typing import Any

import pytest


def test_a_database_error_never_carries_free_text_into_a_traceback(engine: Any) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as raised, engine.begin() as conn:
        statement = text("INSERT INTO no_such_table (body) VALUES (:body)")
        conn.execute(statement, {"body": "SECRET-SUMMARY Jamie"})
    assert "SECRET" not in str(raised.value) and "Jamie" not in str(raised.value)
