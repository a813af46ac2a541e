"""One structlog pipeline for our events and for stdlib loggers (uvicorn, APScheduler, SQLAlchemy).

JSON to stdout, or a console renderer when stdout is a terminal, so a person reading along gets colours
and a log shipper gets one JSON object a line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging(log_format: str | None = None, level: int = logging.INFO) -> None:
    fmt = log_format or ("console" if sys.stdout.isatty() else "json")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    quiet_libraries()


def quiet_libraries() -> None:
    """Libraries that narrate routine work at INFO speak only of trouble."""
    # transitions narrates every callback; our own dispute.transitioned event says what matters.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    # The access log carries the full URL, and an email link's token is in its path.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # APScheduler logs every run of every job (the sweep runs each second): an idle service says nothing.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # A sweep that outlasts its interval on a busy machine makes APScheduler skip the next run, by design
    # (one sweep at a time), and warn each time. Nothing is lost (the running sweep carries on to the next
    # deadline) and nobody can act on it, so the scheduler itself speaks only of errors (a job that raised).
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
