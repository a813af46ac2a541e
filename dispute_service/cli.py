"""`dispute-service`: every command reads the same settings as the server (DISPUTES_*, .env).

Each uses only the settings it needs (the database, the policy): a council's operator runs `migrate` or a
report from a shell that holds no API secret, so none of them applies the strict start's checks, which
`serve` alone runs.

These are the commands that need only the core. `api.cli` adds the ones that need the API (`serve`,
`token`, `openapi`) to this same app, so the core never refers to the API, not even by name.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from dispute_service.clock import utc_now
from dispute_service.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(help="Runs a local authority's IRO dispute resolution procedure.", no_args_is_help=True)
people_app = typer.Typer(help="The staff directory.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
organisations_app = typer.Typer(
    help="Organisations outside the council: partner agencies and other local authorities.",
    no_args_is_help=True,
)
contacts_app = typer.Typer(help="External contacts of the organisations.", no_args_is_help=True)
app.add_typer(people_app, name="people")
app.add_typer(organisations_app, name="organisations")
app.add_typer(contacts_app, name="contacts")
app.add_typer(audit_app, name="audit")


def _sessions(settings: Settings) -> sessionmaker[Session]:
    # Imported by the commands that open the database: SQLAlchemy is most of a second to import on this
    # machine, and `--help`, `due` and `token` need none of it.
    from dispute_service.database import make_engine, make_session_factory

    return make_session_factory(
        make_engine(settings.database_url, pool_size=2, max_overflow=2),
        audit_key=settings.audit_key,
        audit_keyring=settings.retired_audit_keys(),
    )


@app.command()
def migrate() -> None:
    """Run the database migrations."""
    from dispute_service.database import upgrade

    settings = Settings()
    # The audit key signs the seals that migration 0004 writes on each dispute's legacy chain.
    upgrade(settings.database_url, audit_key=settings.audit_key)
    typer.echo("database is up to date")


@people_app.command("import")
def people_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load the staff directory from a CSV with columns name, email, roles (roles separated by ';')."""
    from dispute_service.errors import InvalidInput
    from dispute_service.transactions import import_people

    settings = Settings()
    try:
        added, updated = import_people(_sessions(settings), file, utc_now(), audit_key=settings.audit_key)
    except InvalidInput as exc:
        for where, message in exc.errors:
            typer.echo(f"{where}: {message}", err=True)
        typer.echo("nothing was imported", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{added} added, {updated} updated")


@organisations_app.command("import")
def organisations_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load organisations from a CSV with columns id, name, kind (partner or other_authority).

    All or nothing: every bad row is named by its line number, and nothing is loaded.
    """
    from dispute_service.transactions import import_organisations

    _import(import_organisations, file)


@contacts_app.command("import")
def contacts_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load external contacts from a CSV with columns name, email, organisation (an organisation's id).

    All or nothing: every bad row is named by its line number, and nothing is loaded.
    """
    from dispute_service.transactions import import_contacts

    _import(import_contacts, file)


class _Import(Protocol):
    """An import's transaction: it records its changes in a chain keyed by the audit key."""

    def __call__(
        self, sessions: sessionmaker[Session], /, path: Path, now: datetime, *, audit_key: str
    ) -> tuple[int, int]: ...


def _import(load: _Import, file: Path) -> None:
    from dispute_service.errors import InvalidInput

    settings = Settings()
    try:
        added, updated = load(_sessions(settings), file, utc_now(), audit_key=settings.audit_key)
    except InvalidInput as exc:
        for where, message in exc.errors[:MAX_IMPORT_ERRORS_SHOWN]:
            typer.echo(f"{where}: {message}", err=True)
        if len(exc.errors) > MAX_IMPORT_ERRORS_SHOWN:
            typer.echo(f"... and {len(exc.errors) - MAX_IMPORT_ERRORS_SHOWN} more", err=True)
        typer.echo("nothing was imported", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{added} added, {updated} updated")


@app.command()
def due(
    start: Annotated[str, typer.Argument(help="When the stage starts, e.g. 2022-06-01T10:00 (local time)")],
    timescale: Annotated[
        str, typer.Argument(help="Working days like 5wd, or an ISO-8601 duration like PT30S")
    ],
) -> None:
    """Print the due time, the escalation time and each day skipped, with its reason."""
    from states.calendar import WorkingCalendar
    from states.timescale import parse_timescale

    policy = Settings().loaded_policy
    calendar = WorkingCalendar(policy.calendar)
    try:
        began = datetime.fromisoformat(start)
        parsed = parse_timescale(timescale)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if began.tzinfo is None:
        began = began.replace(tzinfo=calendar.tz)
    for line in calendar.explain_due(began, parsed):
        typer.echo(line)


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="GSEQ:HASH from `audit checkpoint` or an `audit.checkpoint` log line: fail unless the "
            "database still holds that entry with that hash, and the global chain extends it"
        ),
    ] = None,
) -> None:
    """Recompute every audit chain, the people changes and the partner changes, and name any entry that does
    not match."""
    from dispute_service import partner_changes, people_changes
    from dispute_service.audit import Checkpoint, verify_all

    settings = Settings()
    try:
        against = Checkpoint.parse(checkpoint) if checkpoint is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--checkpoint'") from None
    keys = [settings.audit_key, *settings.retired_audit_keys()]
    with _sessions(settings).begin() as session:
        checked, problems = verify_all(session, against)
        changes, people_problems = people_changes.verify(session, keys)
        partner_count, partner_problems = partner_changes.verify(session, keys)
    found = [*problems, *people_problems, *partner_problems]
    for problem in found:
        typer.echo(f"MISMATCH {problem}")
    counted = f"{checked} dispute(s), {changes} people change(s) and {partner_count} partner change(s)"
    if found:
        typer.echo(f"{len(found)} problem(s) in {counted}")
        raise typer.Exit(1)
    extends = f", and extend checkpoint {against[0]}" if against else ""
    typer.echo(f"ok: {counted}, every chain verifies{extends}")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Print the global audit chain's head (gseq, hash, time) as the service logs it: keep it where the
    database's administrators cannot write, and give it to `audit verify --checkpoint` later."""
    import json

    from dispute_service.audit import checkpoint

    settings = Settings()
    with _sessions(settings).begin() as session:
        point = checkpoint(session, utc_now())
    typer.echo(json.dumps({"event": "audit.checkpoint", **point.fields(), "checkpoint": str(point)}))


@app.command("purge-expired")
def purge_expired() -> None:
    """Delete page sessions, one-time codes, link sessions and idempotency keys over for a day or more.

    The scheduler does this every hour; this is for a council that runs the API without it. Runs until
    nothing is left, each run one bounded transaction.
    """
    from dispute_service.housekeeping import LIMIT, PurgeReport
    from dispute_service.housekeeping import purge_expired as purge

    sessions = _sessions(Settings())
    now = utc_now()
    total = PurgeReport()
    while True:
        report = purge(sessions, now)
        total += report
        if not report.reached(LIMIT):
            break
    typer.echo(", ".join(f"{count} {table}" for table, count in total.counts().items()) + " deleted")


REPORT_FORMATS = ("table", "json", "csv", "svg")
MAX_IMPORT_ERRORS_SHOWN = 50


@app.command()
def report(
    year: Annotated[
        int,
        typer.Option(
            min=1900, max=9998, help="The reporting year, by the year it starts in: 2017 for 2017-18"
        ),
    ],
    output_format: Annotated[
        str, typer.Option("--format", help="table (in the terminal), json, csv or svg")
    ] = "table",
) -> None:
    """The annual report: counts for the IRO annual report, as the disputes stood at the year's end."""
    import json

    from rich.console import Console

    from dispute_service.report import formats as report_formats
    from dispute_service.transactions import annual_report

    if output_format not in REPORT_FORMATS:
        raise typer.BadParameter(f"must be one of: {', '.join(REPORT_FORMATS)}", param_hint="'--format'")
    settings = Settings()
    result = annual_report(
        _sessions(settings), settings.loaded_policy, year, start_month=settings.report_year_start_month
    )
    if output_format == "table":
        report_formats.print_table(result, Console())
    elif output_format == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif output_format == "csv":
        typer.echo(report_formats.to_csv(result), nl=False)
    else:
        typer.echo(report_formats.to_svg(result), nl=False)


@app.command("import-history")
def import_history(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="CSV with columns reference, child_ref, case_type, categories, raised_on, highest_stage, "
            "resolved_at_stage, closed_on, outcome",
        ),
    ],
) -> None:
    """Load past years' disputes from a spreadsheet, so year-on-year figures work from the first day.

    All or nothing: a bad row is named by its line number and the reason, and nothing is loaded.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    from dispute_service.errors import InvalidInput
    from dispute_service.report.history import PROGRESS_FROM_ROWS, count_rows
    from dispute_service.transactions import import_history as load

    settings = Settings()
    failed: InvalidInput | None = None
    imported = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=count_rows(file) < PROGRESS_FROM_ROWS,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        try:
            imported = load(_sessions(settings), settings.loaded_policy, file, utc_now(), progress=progress)
        except InvalidInput as exc:
            failed = exc
    if failed is not None:
        for where, message in failed.errors[:MAX_IMPORT_ERRORS_SHOWN]:
            typer.echo(f"{where}: {message}", err=True)
        if len(failed.errors) > MAX_IMPORT_ERRORS_SHOWN:
            typer.echo(f"... and {len(failed.errors) - MAX_IMPORT_ERRORS_SHOWN} more", err=True)
        typer.echo("nothing was imported", err=True)
        raise typer.Exit(1)
    typer.echo(f"{imported} dispute(s) imported")
