"""disputes on partner ladders

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A dispute may climb a partner ladder of the policy (SPEC 10) instead of the council's own: it records the
ladder, the organisation on the other side, that organisation's reference, the contact named for each named
stage, and the named stage it waits to enter while the IRO has named nobody for it. Every dispute before
this one climbs the council's own ladder, so the ladder defaults to "own" and the contacts to none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs, not a batch: on SQLite a batch copies the table and drops the old one, which the
    # foreign keys of stage entries, audit entries and notifications refuse once there are disputes.
    op.add_column("disputes", sa.Column("ladder", sa.String(length=64), server_default="own", nullable=False))
    fk_name = op.f("fk_disputes_organisation_id_organisations")
    op.add_column(
        "disputes",
        sa.Column("organisation_id", sa.String(length=64), sa.ForeignKey("organisations.id", name=fk_name)),
        inline_references=True,
    )
    op.add_column("disputes", sa.Column("their_reference", sa.String(length=64), nullable=True))
    op.add_column("disputes", sa.Column("contacts", sa.JSON(), server_default="{}", nullable=False))
    op.add_column("disputes", sa.Column("awaiting_contact_for", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        # Dropping the column drops its foreign key with it (SQLite never named it: see the upgrade).
        batch_op.drop_column("awaiting_contact_for")
        batch_op.drop_column("contacts")
        batch_op.drop_column("their_reference")
        batch_op.drop_column("organisation_id")
        batch_op.drop_column("ladder")
