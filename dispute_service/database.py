"""Engines, sessions, transactions and migrations, on SQLite and PostgreSQL alike. SQLite gets WAL, a busy
timeout and BEGIN IMMEDIATE, so that the read that decides a change is made under the write lock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from dispute_service.config import DEV_SECRET

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Under the idle timeouts councils' firewalls and PostgreSQL proxies commonly apply (an hour or more).
POOL_RECYCLE_SECONDS = 1800
MIGRATIONS = Path(__file__).with_name("migrations")
# A session factory: the use cases' callers open their transactions from one.
Sessions = sessionmaker[Session]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def normalise_url(url: str) -> str:
    # Councils paste the URL their DBA gives them; psycopg 3 is the driver we ship.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 20, max_overflow: int = 40) -> Engine:
    # hide_parameters: a database error's message would otherwise carry the statement's values, such as
    # a dispute's summary, into a traceback in the logs.
    url = normalise_url(url)
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=60,
            hide_parameters=True,
        )
        _apply_sqlite_recipe(engine)
        return engine
    # No pre-ping, which is a round trip before every transaction: connections are recycled before a
    # server or a firewall is likely to drop them, and a request whose first statement finds its connection
    # dropped anyway begins again on a fresh one (api.deps.Transaction.begin_with).
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_timeout=60,
        hide_parameters=True,
    )


def _apply_sqlite_recipe(engine: Engine) -> None:
    writers = _writer_lock(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own deferred BEGIN lets a SELECT run outside the transaction and lose updates.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            # A reader in WAL mode sees a snapshot from its first SELECT and neither waits nor blocks.
            conn.exec_driver_sql("BEGIN")
            return
        # Writers queue in the process first: one waiting here wakes the moment the lock is free, where
        # one waiting in SQLite's busy handler sleeps in growing steps (up to 100 ms) and tries again,
        # which under a burst of writers put seconds on the slowest requests. Another process (the
        # command line) still meets the busy handler.
        dbapi_conn = conn.connection.dbapi_connection
        writers.acquire_for(dbapi_conn)
        try:
            # Take the write lock up front, so the read that decides a transition is inside it.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.release_for(dbapi_conn)
            raise

    # Released once COMMIT or ROLLBACK has run, not at the engine's commit event, which comes before it:
    # the next writer's BEGIN IMMEDIATE would otherwise meet the lock still held and sleep.
    dialect = engine.dialect
    plain_commit, plain_rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_conn: Any) -> None:
        try:
            plain_commit(dbapi_conn)
        finally:
            writers.release_for(dbapi_conn)

    def do_rollback(dbapi_conn: Any) -> None:
        try:
            plain_rollback(dbapi_conn)
        finally:
            writers.release_for(dbapi_conn)

    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]

    @event.listens_for(engine, "close")
    def _on_close(dbapi_conn: Any, _record: Any) -> None:
        writers.release_for(dbapi_conn)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_conn: Any, _record: Any, _exc: Any) -> None:
        writers.release_for(dbapi_conn)


class WriterLock:
    """The process's queue for one SQLite file's write lock, held by one connection at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: Any = None

    def acquire_for(self, dbapi_conn: Any) -> None:
        # Bounded like SQLite's own wait; past it, the BEGIN IMMEDIATE goes ahead and SQLite answers
        # "database is locked" as it would have.
        if self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            self._holder = dbapi_conn

    def release_for(self, dbapi_conn: Any) -> None:
        # The pool hands the dialect a proxy for the connection when it rolls back on return.
        dbapi_conn = getattr(dbapi_conn, "dbapi_connection", dbapi_conn)
        if self._holder is not None and self._holder is dbapi_conn:
            self._holder = None
            self._lock.release()


# One queue per database file, shared by every engine of the process on that file (the app's, the
# scheduler's and a test's own all queue together).
_WRITER_LOCKS: dict[str, WriterLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> WriterLock:
    key = str(Path(engine.url.database).resolve()) if engine.url.database else str(engine.url)
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, WriterLock())


# Where `audit.append` and `audit.verify_all` find the audit key and the retired ones: on the session
# factory's `info`, which every session it opens copies. The app, the command line, tests and benches all
# open their sessions here, so the key reaches the one function that signs entries without being threaded
# through every use case's signature. The default is the development key, which a strict server refuses.
AUDIT_KEY_INFO = "audit_key"
AUDIT_KEYRING_INFO = "audit_keyring"


def make_session_factory(
    engine: Engine, *, audit_key: str = DEV_SECRET, audit_keyring: Sequence[str] = ()
) -> sessionmaker[Session]:
    sessions = sessionmaker(
        engine,
        expire_on_commit=False,
        info={AUDIT_KEY_INFO: audit_key, AUDIT_KEYRING_INFO: tuple(audit_keyring)},
    )
    event.listen(sessions, "after_commit", _run_after_commit)
    event.listen(sessions, "after_transaction_end", _forget_after_commit)
    return sessions


_AFTER_COMMIT = "after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the transaction has committed, and never if it rolls back: a log line that says a
    change happened, or a wake-up for the email dispatcher, must not run ahead of the change itself."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, []):
        action()


def _forget_after_commit(session: Session, transaction: SessionTransaction) -> None:
    # Runs after `after_commit`; what is still here then belonged to a transaction that rolled back.
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


# An execution option that marks a transaction as one that only reads.
READ_ONLY = "dispute_service_read_only"


@contextmanager
def reading(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that only reads. On SQLite it begins without the write lock (a plain BEGIN), so it
    neither waits for writers nor holds them up; on PostgreSQL it is an ordinary transaction."""
    with sessions.begin() as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session


@contextmanager
def read_snapshot(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction that only reads, in which every query sees the same moment: REPEATABLE READ on
    PostgreSQL, where it must be chosen before the first query; a SQLite transaction is a snapshot
    already, from its first SELECT."""
    with sessions.begin() as session:
        options: dict[str, Any] = {READ_ONLY: True}
        if session.get_bind().dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        session.connection(execution_options=options)
        yield session


def insert_for(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT DO NOTHING on both engines we run on."""
    return sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert


def alembic_config(url: str) -> Config:
    # Imported here, as in `upgrade`: alembic (with mako) took a sixth of the server's start, and only a
    # migration needs it (`serve --no-migrate` never does).
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head", *, audit_key: str | None = None) -> None:
    """Migrate. `audit_key` signs the seals migration 0004 writes; without it, the settings' key is used."""
    from alembic import command  # only a migration needs alembic: see alembic_config

    cfg = alembic_config(url)
    if audit_key is not None:
        cfg.attributes[AUDIT_KEY_INFO] = audit_key
    command.upgrade(cfg, revision)
