"""Behaviour events and readable evidence: the scene object an alarm is about, an abandoned object's owner and
time left, a fall's time; the raw clip kept beside the annotated one.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = {
    "object_id": sa.Integer,
    "owner_track_id": sa.Integer,
    "left_at": sa.Float,
    "fell_at": sa.Float,
    "raw_clip": sa.String(512),
}


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for name, kind in COLUMNS.items():
            batch.add_column(sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
