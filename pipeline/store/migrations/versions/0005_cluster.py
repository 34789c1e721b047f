"""Cluster: the nodes of a site and the lease by which exactly one of them runs each camera; events ended
because the run that raised them was killed say so.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("interrupted", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "cluster_nodes",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    op.create_table(
        "camera_leases",
        sa.Column("camera", sa.String(128), primary_key=True),
        sa.Column("node", sa.String(128), nullable=False, index=True),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("renewed_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("status", sa.JSON),
    )


def downgrade() -> None:
    op.drop_table("camera_leases")
    op.drop_table("cluster_nodes")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("interrupted")
