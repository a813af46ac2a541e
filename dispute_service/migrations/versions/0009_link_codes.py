"""one-time codes and link sessions, for reading a dispute by its email link

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Acting through a link needs only the link, but reading the dispute's texts on its page needs a one-time code
sent in a separate email (SPEC 10, "Reading by link"): a forwarded or intercepted action email alone then
shows no free text. Only keyed hashes are stored: of the code, and of the link session's token.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["link_id"], ["action_links.id"], name=op.f("fk_link_codes_link_id_action_links")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_codes")),
    )
    op.create_index(op.f("ix_link_codes_link_id"), "link_codes", ["link_id"], unique=False)
    op.create_table(
        "link_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["action_links.id"], name=op.f("fk_link_sessions_link_id_action_links")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_link_sessions_token_hash")),
    )
    op.create_index(op.f("ix_link_sessions_link_id"), "link_sessions", ["link_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_link_sessions_link_id"), table_name="link_sessions")
    op.drop_table("link_sessions")
    op.drop_index(op.f("ix_link_codes_link_id"), table_name="link_codes")
    op.drop_table("link_codes")
