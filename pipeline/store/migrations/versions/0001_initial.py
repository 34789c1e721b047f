"""Initial schema: events, reviews, audit log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("camera", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128)),
        sa.Column("track_id", sa.Integer),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float),
        sa.Column("start_frame", sa.Integer, nullable=False),
        sa.Column("end_frame", sa.Integer),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("box", sa.JSON, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("zone", sa.String(128)),
        sa.Column("line", sa.String(128)),
        sa.Column("direction", sa.String(64)),
        sa.Column("count", sa.Integer),
        sa.Column("entered_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("review_state", sa.String(32), nullable=False, server_default="unreviewed"),
        sa.Column("clip", sa.String(512)),
        sa.Column("snapshot", sa.String(512)),
        sa.Column("thumbnail", sa.String(512)),
    )
    op.create_index("ix_events_start_id", "events", ["start", "id"])
    op.create_index("ix_events_camera", "events", ["camera"])
    op.create_index("ix_events_review_state", "events", ["review_state"])
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("operator", sa.String(128), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_reviews_event_id", "reviews", ["event_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(128)),
        sa.Column("detail", sa.JSON),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("reviews")
    op.drop_table("events")
