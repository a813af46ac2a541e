from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from dispute_service.database import make_engine
from dispute_service.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
