"""Real databases for every test: a migrated SQLite file and, where DISPUTES_TEST_POSTGRES_URL is set, a
real PostgreSQL database. Each test gets its own copy, made from a template migrated once per run, and
each copy is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.config import Settings
from dispute_service.database import make_engine, make_session_factory, normalise_url, upgrade
from dispute_service.models import Person
from states.policy import Policy, load_default_policy
from tests.factories import GONE_EMAIL, STAFF, TEST_SECRET, FakeClock

PG_ENV = "DISPUTES_TEST_POSTGRES_URL"


def _pg_base() -> str | None:
    raw = os.environ.get(PG_ENV)
    return normalise_url(raw) if raw else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine | None]:
    base = _pg_base()
    if base is None:
        yield None
        return
    engine = create_engine(base, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=2)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the run asked for PostgreSQL: not reaching it is a failure, not a skip
        pytest.fail(f"{PG_ENV} is set but PostgreSQL does not answer: {exc}", pytrace=False)
    yield engine
    engine.dispose()


def _with_database(base: str, name: str) -> str:
    return make_url(base).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template(pg_admin: Engine | None) -> Iterator[str | None]:
    base = _pg_base()
    if pg_admin is None or base is None:
        yield None
        return
    name = f"disputes_tmpl_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    upgrade(_with_database(base, name))
    yield name
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and _pg_base() is None:
        pytest.skip(f"{PG_ENV} is not set (make test sets it; make test-fast leaves PostgreSQL out)")
    return str(request.param)


@pytest.fixture
def db_url(
    backend: str,
    tmp_path: Path,
    sqlite_template: Path,
    request: pytest.FixtureRequest,
) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / "disputes.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    template: str = request.getfixturevalue("pg_template")
    base = _pg_base()
    assert base is not None
    name = f"disputes_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _with_database(base, name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(db_url: str) -> Settings:
    # Strict-safe, so API tests run the app as a real deployment does (Mode.STRICT): secrets of 32 bytes
    # or more, and the mail server and link base on loopback (the defaults), which may go without TLS.
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        jwt_secret=TEST_SECRET,
        link_secret=TEST_SECRET,
        audit_key=TEST_SECRET,
        smtp_host="localhost",
        public_base_url="http://localhost:8000",
        scheduler_enabled=False,
        log_format="json",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, pool_size=5, max_overflow=60)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine, settings: Settings) -> sessionmaker[Session]:
    return make_session_factory(engine, audit_key=settings.audit_key)


@pytest.fixture
def policy() -> Policy:
    return load_default_policy()


@pytest.fixture
def staff(sessions: sessionmaker[Session], clock: FakeClock) -> list[str]:
    with sessions() as session, session.begin():
        for name, email, roles in STAFF:
            session.add(
                Person(
                    name=name,
                    email=email,
                    roles=roles,
                    active=email != GONE_EMAIL,
                    created_at=clock.now,
                    updated_at=clock.now,
                )
            )
    return [email for _, email, _ in STAFF]


@pytest.fixture
def token_for(settings: Settings) -> Callable[[str], dict[str, str]]:
    from api.auth import development_token

    def make(email: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {development_token(settings, email, datetime.now(UTC))}"}

    return make
