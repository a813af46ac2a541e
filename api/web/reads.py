"""A fresh read for a page shown after a refusal: the refused use case's transaction has rolled back, and
the page (the form again, or the dispute as it is now) is drawn from a new read-only one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dispute_service.database import reading

P = ParamSpec("P")
T = TypeVar("T")


async def read_afresh(
    request: Request, read: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    def run() -> T:
        with reading(request.app.state.sessions) as session:
            return read(session, *args, **kwargs)

    # On a worker thread, as every database call is: the event loop never waits on the database.
    return await run_in_threadpool(run)
