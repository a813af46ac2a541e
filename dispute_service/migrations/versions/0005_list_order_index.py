"""an index in the list's order

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The dispute list is ordered newest first, `raised_at` then `id`, and pages by offset or by a cursor of
those two columns. An index on exactly them lets the database read a page straight off the index, in
order, rather than sort every matching row; for a cursor, it starts at the cursor. It replaces the index
on `raised_at` alone, which it covers.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.create_index("ix_disputes_raised_at_id", ["raised_at", "id"], unique=False)
        batch_op.drop_index("ix_disputes_raised_at")


def downgrade() -> None:
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.create_index("ix_disputes_raised_at", ["raised_at"], unique=False)
        batch_op.drop_index("ix_disputes_raised_at_id")
