"""the people changes: an append-only, keyed chain of every change to the staff directory

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Who may act is decided by the staff directory, so a change to it (a role granted, someone deactivated) is
kept as the audit log is: append-only in the database itself, and chained under the audit key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("person_email", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people_changes")),
        sa.UniqueConstraint("seq", name=op.f("uq_people_changes_seq")),
    )
    with op.batch_alter_table("people_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_changes_person_email"), ["person_email"], unique=False)
    guards = _SQLITE_GUARDS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS people_changes_no_update")
        op.execute("DROP TRIGGER IF EXISTS people_changes_no_delete")
    else:
        op.execute("DROP FUNCTION IF EXISTS people_changes_append_only() CASCADE")
    with op.batch_alter_table("people_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_changes_person_email"))
    op.drop_table("people_changes")


# As for audit_entries (0001): the database refuses to rewrite or remove a change, whoever asks. Tests drop
# these triggers to simulate tampering.
_SQLITE_GUARDS = [
    "CREATE TRIGGER people_changes_no_update BEFORE UPDATE ON people_changes "
    "BEGIN SELECT RAISE(ABORT, 'people_changes is append-only'); END",
    "CREATE TRIGGER people_changes_no_delete BEFORE DELETE ON people_changes "
    "BEGIN SELECT RAISE(ABORT, 'people_changes is append-only'); END",
]
_POSTGRES_GUARDS = [
    """CREATE FUNCTION people_changes_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'people_changes is append-only'; END;
    $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER people_changes_no_update BEFORE UPDATE ON people_changes "
    "FOR EACH ROW EXECUTE FUNCTION people_changes_append_only()",
    "CREATE TRIGGER people_changes_no_delete BEFORE DELETE ON people_changes "
    "FOR EACH ROW EXECUTE FUNCTION people_changes_append_only()",
    "CREATE TRIGGER people_changes_no_truncate BEFORE TRUNCATE ON people_changes "
    "FOR EACH STATEMENT EXECUTE FUNCTION people_changes_append_only()",
]
