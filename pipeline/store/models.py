"""ORM tables of the event store; the Alembic migrations create exactly these."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    """Everything the engine produced for one event, plus what the operator and retention did to it."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    camera: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(128))
    track_id: Mapped[int | None] = mapped_column(Integer)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float | None] = mapped_column(Float)
    start_frame: Mapped[int] = mapped_column(Integer)
    end_frame: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    box: Mapped[list[float]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer)
    zone: Mapped[str | None] = mapped_column(String(128))
    line: Mapped[str | None] = mapped_column(String(128))
    direction: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int | None] = mapped_column(Integer)
    entered_at: Mapped[float | None] = mapped_column(Float)
    object_id: Mapped[int | None] = mapped_column(Integer)
    owner_track_id: Mapped[int | None] = mapped_column(Integer)
    left_at: Mapped[float | None] = mapped_column(Float)
    fell_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)  # wall clock (Unix seconds): retention ages by it
    updated_at: Mapped[float] = mapped_column(Float)
    review_state: Mapped[str] = mapped_column(String(32), default="unreviewed", server_default="unreviewed")
    clip: Mapped[str | None] = mapped_column(String(512))  # evidence paths, relative to the data dir
    raw_clip: Mapped[str | None] = mapped_column(String(512))  # the clip's frames with nothing drawn
    snapshot: Mapped[str | None] = mapped_column(String(512))
    thumbnail: Mapped[str | None] = mapped_column(String(512))
    tracks: Mapped[str | None] = mapped_column(String(512))  # the boxes of every tracked object in the clip (export)
    interrupted: Mapped[bool] = mapped_column(  # ended by the service: the run that raised it was killed
        Boolean, default=False, server_default=false()
    )

    __table_args__ = (
        Index("ix_events_start_id", "start", "id"),
        Index("ix_events_camera", "camera"),
        Index("ix_events_review_state", "review_state"),
        Index("ix_events_created_at", "created_at"),
    )


class ReviewRow(Base):
    """One operator decision on one event; the event keeps only the latest as its state."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    operator: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float)


class AuditRow(Base):
    """Who did what and when; event_id is kept as plain text so the log outlives its events."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    camera: Mapped[str | None] = mapped_column(String(128))  # what a camera-scoped admin may see of the log
    source: Mapped[str | None] = mapped_column(String(128))  # where the request came from (client address)
    prev_hash: Mapped[str] = mapped_column(String(64))  # the previous row's hash: rows form a chain
    hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of this row's fields and prev_hash


class TokenRow(Base):
    """An API token: only its SHA-256 is kept, so a leaked database cannot be replayed against the API."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cameras: Mapped[list[str] | None] = mapped_column(JSON)  # the cameras it may see (with `groups`; both null: all)
    groups: Mapped[list[str] | None] = mapped_column(JSON)  # camera groups of the site config it may see


class NodeRow(Base):
    """A `cctv serve --node` process of a cluster: where its API answers and how many cameras it may run."""

    __tablename__ = "cluster_nodes"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    url: Mapped[str] = mapped_column(String(512))  # its API, for frames of the cameras it runs
    capacity: Mapped[int] = mapped_column(Integer)  # cameras it may run (0: an API-only node)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)  # wall clock: a node silent for a lease's length is gone


class LeaseRow(Base):
    """The one node that runs a camera until `expires_at`, unless it renews; its camera's state as last renewed."""

    __tablename__ = "camera_leases"

    camera: Mapped[str] = mapped_column(String(128), primary_key=True)
    node: Mapped[str] = mapped_column(String(128), index=True)
    acquired_at: Mapped[float] = mapped_column(Float)
    renewed_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    status: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the camera as its node's API shows it
