"""partial indexes of the disputes on partner ladders and of the resolutions, for the annual report

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

The report's figures by ladder and organisation (SPEC 10) grouped every dispute by its ladder, which read a
row per dispute where the report's other figures come from indexes alone: on a million disputes the report
went from 0.7 s to 5 s. Disputes with partners are few, so the report reads theirs through a partial index of
them and takes the council's own from its totals. The year's total of disputes resolved, which those
figures need, comes from a partial index of the `resolve` entries holding each one's dispute.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_disputes_partners",
        "disputes",
        ["ladder", "organisation_id", "raised_at", "ended_at"],
        unique=False,
        postgresql_where=sa.text("ladder <> 'own'"),
        sqlite_where=sa.text("ladder <> 'own'"),
    )
    op.create_index(
        "ix_audit_entries_resolutions",
        "audit_entries",
        ["at", "dispute_id"],
        unique=False,
        postgresql_where=sa.text("\"trigger\" = 'resolve'"),
        sqlite_where=sa.text("\"trigger\" = 'resolve'"),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_resolutions", table_name="audit_entries")
    op.drop_index("ix_disputes_partners", table_name="disputes")
