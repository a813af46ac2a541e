"""renewal requests: /links/renew records the address, and the dispatcher looks it up

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Looking up expired links and queueing the renewal email while the request waited made the page answer a
known address later than an unknown one. The page now writes one row for any address, and the dispatcher,
which sends the email anyway, does the lookup in the transaction that deletes the row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "renewal_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renewal_requests")),
    )


def downgrade() -> None:
    op.drop_table("renewal_requests")
