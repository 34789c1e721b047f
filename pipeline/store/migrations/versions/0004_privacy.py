"""Privacy and access control: camera-scoped tokens, an audit log chained by hash (with the camera and the
client's address of each entry), and the boxes of every tracked object in an event's clip (for exports).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from pipeline.store.audit import GENESIS, PAGE, row_hash

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("cameras", sa.JSON))
        batch.add_column(sa.Column("groups", sa.JSON))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("tracks", sa.String(512)))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("camera", sa.String(128)))
        batch.add_column(sa.Column("source", sa.String(128)))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=False, server_default=""))
    _chain_audit_log()


def _chain_audit_log() -> None:
    """Hash-chain the rows already in the log, oldest first, a page at a time."""
    names = ("id", "actor", "action", "event_id", "camera", "source", "prev_hash", "hash")
    audit = sa.table("audit_log", *map(sa.column, names), sa.column("at", sa.Float), sa.column("detail", sa.JSON))
    link = sa.update(audit).where(audit.c.id == sa.bindparam("row_id"))
    link = link.values(prev_hash=sa.bindparam("prev"), hash=sa.bindparam("digest"))
    bind, prev, after = op.get_bind(), GENESIS, None
    while True:
        page = sa.select(audit).order_by(audit.c.id).limit(PAGE)
        rows = bind.execute(page if after is None else page.where(audit.c.id > after)).all()
        links = []
        for r in rows:
            digest = row_hash(r.id, r.at, r.actor, r.action, r.event_id, r.camera, r.source, r.detail, prev)
            links.append({"row_id": r.id, "prev": prev, "digest": digest})
            prev = digest
        if links:
            bind.execute(link, links)
        if len(rows) < PAGE:
            return
        after = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        for name in ("camera", "source", "prev_hash", "hash"):
            batch.drop_column(name)
    with op.batch_alter_table("events") as batch:
        batch.drop_column("tracks")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("cameras")
        batch.drop_column("groups")
