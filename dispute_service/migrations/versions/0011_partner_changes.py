"""the partner changes: an append-only, keyed chain of every change to the organisations and contacts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

A contact decides who may act on a partner dispute by email link (SPEC 10), so a change to the contacts or
their organisations (a contact added or moved, someone deactivated) is kept as the staff directory's are
(0003): append-only in the database itself, and chained under the audit key, in a chain of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_changes")),
        sa.UniqueConstraint("seq", name=op.f("uq_partner_changes_seq")),
    )
    op.create_index("ix_partner_changes_subject", "partner_changes", ["subject_kind", "subject_id"])
    guards = _SQLITE_GUARDS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS partner_changes_no_update")
        op.execute("DROP TRIGGER IF EXISTS partner_changes_no_delete")
    else:
        op.execute("DROP FUNCTION IF EXISTS partner_changes_append_only() CASCADE")
    op.drop_index("ix_partner_changes_subject", table_name="partner_changes")
    op.drop_table("partner_changes")


# As for people_changes (0003): the database refuses to rewrite or remove a change, whoever asks. Tests drop
# these triggers to simulate tampering.
_SQLITE_GUARDS = [
    "CREATE TRIGGER partner_changes_no_update BEFORE UPDATE ON partner_changes "
    "BEGIN SELECT RAISE(ABORT, 'partner_changes is append-only'); END",
    "CREATE TRIGGER partner_changes_no_delete BEFORE DELETE ON partner_changes "
    "BEGIN SELECT RAISE(ABORT, 'partner_changes is append-only'); END",
]
_POSTGRES_GUARDS = [
    """CREATE FUNCTION partner_changes_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'partner_changes is append-only'; END;
    $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER partner_changes_no_update BEFORE UPDATE ON partner_changes "
    "FOR EACH ROW EXECUTE FUNCTION partner_changes_append_only()",
    "CREATE TRIGGER partner_changes_no_delete BEFORE DELETE ON partner_changes "
    "FOR EACH ROW EXECUTE FUNCTION partner_changes_append_only()",
    "CREATE TRIGGER partner_changes_no_truncate BEFORE TRUNCATE ON partner_changes "
    "FOR EACH STATEMENT EXECUTE FUNCTION partner_changes_append_only()",
]
