"""indexes for the annual report

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The annual report reads a year's disputes several times over (by case type, stage and state, for the
median, and their ids for responses); one index holding exactly those columns lets each pass read the
index alone. Disputes still open at a year's end are found from `ended_at`. The year's responses, on time
or late, are read from a small index of `respond` entries only, which carries their `{"late": ...}`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

REPORT_COLUMNS = ["raised_at", "ended_at", "case_type", "stage", "state", "id"]


def upgrade() -> None:
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.create_index("ix_disputes_ended_at", ["ended_at"], unique=False)
        batch_op.create_index("ix_disputes_report", REPORT_COLUMNS, unique=False)
    respond = sa.text("\"trigger\" = 'respond'")
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_audit_entries_responses",
            "audit_entries",
            ["at", "dispute_id"],
            postgresql_include=["details"],
            postgresql_where=respond,
        )
    else:
        op.create_index(
            "ix_audit_entries_responses",
            "audit_entries",
            ["at", "dispute_id", "details"],
            sqlite_where=respond,
        )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_responses", table_name="audit_entries")
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.drop_index("ix_disputes_report")
        batch_op.drop_index("ix_disputes_ended_at")
