"""Threads lent to requests for the whole of their transaction.

A request's one transaction starts in a dependency (the caller is looked up in it, so a stranger gets 401
before the body is even validated) and commits after the route returns. FastAPI would run each of those
steps on whichever thread of its shared pool is free. But a transaction holds locks between its steps
(SQLite's write lock from its first statement, PostgreSQL's row locks), and the requests waiting for those
locks would each hold a thread of the shared pool while they wait: with as many waiting requests as the
pool has threads, the holder never gets a thread to commit on, and every request waits until a timeout
(or, on PostgreSQL, for ever). So each request borrows one thread of its own for its whole transaction,
and a request that finds none free waits on the event loop, holding nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Worker:
    """One thread: everything a request's transaction does runs on it, in order."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # In a copy of the caller's context (as asyncio.to_thread does), so what runs on the thread, and
        # what its commit logs, carries the request's id bound by the app's middleware.
        context = contextvars.copy_context()
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.wrap_future(self._executor.submit(context.run, call))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


class Workers:
    def __init__(self, count: int) -> None:
        # As many as the database pool has connections: a transaction needs one of each.
        self._all = [Worker(f"request-{i}") for i in range(count)]
        self._idle: asyncio.Queue[Worker] = asyncio.Queue()
        for worker in self._all:
            self._idle.put_nowait(worker)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[Worker]:
        worker = await self._idle.get()
        try:
            yield worker
        finally:
            self._idle.put_nowait(worker)

    def shutdown(self) -> None:
        for worker in self._all:
            worker.shutdown()
