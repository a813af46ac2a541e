"""the keyed audit chain: HMAC entries, a global chain across disputes, and a seal on every legacy chain

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-15

Until now an entry's hash was a plain SHA-256, which anyone with write access to the database can
recompute after an edit. From here on each entry is an HMAC under the audit key (`key_id` names it) and
takes a place (`gseq`, `gprev_hash`) in one chain across all disputes, whose head is the one row of
`audit_head`. Entries already written keep their formula and a null `gseq`; each dispute gets one keyed
`seal` entry committing to its legacy head, so a legacy entry rewritten and rehashed breaks the seal.

The columns are added in place (SQLite's ALTER TABLE ADD COLUMN, no table copy), so the triggers that
refuse UPDATE and DELETE on audit_entries (0001) stay as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

from dispute_service import audit
from dispute_service.config import Settings
from dispute_service.database import AUDIT_KEY_INFO
from dispute_service.models import AuditEntry, AuditHead, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MIGRATION_CHANNEL = "migration"
SYSTEM_ACTOR = "system"


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("gseq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("gprev_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_entries_gseq", "audit_entries", ["gseq"], unique=True)
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("gseq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    _seal_legacy_chains()


def downgrade() -> None:
    # The seals and keyed entries are append-only evidence: turning them back into the legacy format
    # would mean deleting them, which is exactly what the chain exists to reveal.
    raise NotImplementedError("the keyed audit chain cannot be downgraded; restore a backup instead")


_disputes = sa.table(
    "disputes",
    sa.column("id", sa.Uuid()),
    sa.column("stage", sa.String()),
    sa.column("state", sa.String()),
    sa.column("due_at", UTCDateTime()),
    sa.column("escalate_at", UTCDateTime()),
    sa.column("raised_at", UTCDateTime()),
    sa.column("audit_seq", sa.Integer()),
    sa.column("audit_hash", sa.String()),
)

_TIMES = {"at", "due_at_before", "due_at_after", "escalate_at_before", "escalate_at_after"}
_ENTRY_COLUMNS = (
    "dispute_id seq at actor actor_role channel trigger from_stage to_stage from_state to_state "
    "due_at_before due_at_after escalate_at_before escalate_at_after text_id text_sha256 details "
    "prev_hash hash key_id gseq gprev_hash"
).split()
_entries = sa.table(
    "audit_entries",
    *(
        sa.column(name, UTCDateTime() if name in _TIMES else sa.Uuid() if name == "dispute_id" else None)
        for name in _ENTRY_COLUMNS
    ),
)


def _seal_legacy_chains() -> None:
    """One keyed `seal` entry per dispute, in the order they were raised, each the next in the global chain.

    Bookkeeping: the dispute's version is unchanged; its audit head moves to the seal.
    """
    bind = op.get_bind()
    key = context.config.attributes.get(AUDIT_KEY_INFO) or Settings().audit_key
    now = datetime.now(UTC)
    head = AuditHead(id=audit.HEAD_ID, gseq=0, hash=audit.GENESIS_HASH)
    rows = bind.execute(
        sa.select(_disputes).where(_disputes.c.audit_seq > 0).order_by(_disputes.c.raised_at, _disputes.c.id)
    ).all()
    for row in rows:
        seal = AuditEntry(
            dispute_id=row.id,
            seq=row.audit_seq + 1,
            at=now,
            actor=SYSTEM_ACTOR,
            actor_role=None,
            channel=MIGRATION_CHANNEL,
            trigger=audit.SEAL,
            from_stage=row.stage,
            to_stage=row.stage,
            from_state=row.state,
            to_state=row.state,
            due_at_before=row.due_at,
            due_at_after=row.due_at,
            escalate_at_before=row.escalate_at,
            escalate_at_after=row.escalate_at,
            text_id=None,
            text_sha256=None,
            details=audit.canonical_json({"legacy_seq": row.audit_seq, "legacy_hash": row.audit_hash}),
            prev_hash=row.audit_hash,
            hash="",
        )
        audit.sign(seal, head, key)
        bind.execute(sa.insert(_entries).values({c.name: getattr(seal, c.name) for c in _entries.columns}))
        bind.execute(
            sa.update(_disputes)
            .where(_disputes.c.id == row.id)
            .values(audit_seq=seal.seq, audit_hash=seal.hash)
        )
    bind.execute(sa.insert(AuditHead).values(id=head.id, gseq=head.gseq, hash=head.hash))
