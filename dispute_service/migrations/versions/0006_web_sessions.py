"""sessions for the pages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

The pages sign people in with OpenID Connect (or, in demo, a button). A session is kept on the server so
that sign-out and deactivation end it at once: the cookie names a row here by the SHA-256 of its token.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_email"), "web_sessions", ["email"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_email"), table_name="web_sessions")
    op.drop_table("web_sessions")
