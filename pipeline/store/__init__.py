"""Event store: events, operator reviews, audit log, API tokens and evidence retention in SQLite or PostgreSQL.

One code path for the embedded SQLite file (`data_dir/events.db`) and a PostgreSQL URL; evidence files
live under `data_dir/evidence/`. `EventStore` is the facade the engine (via `apply` on the event bus),
the API, the live service and the CLI use; each job is a module of its own behind it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Self, TextIO

from sqlalchemy import Engine

from pipeline.errors import CctvError
from pipeline.events import EventChange
from pipeline.store.audit import AuditCheck, AuditEntry, AuditLog
from pipeline.store.cluster import Lease, Leases, NodeInfo, NodeNameTaken
from pipeline.store.db import MAX_LIMIT, Database, alembic_config, driver_message, migrate
from pipeline.store.events import (
    ACTIONS,
    EventNotFound,
    EventRecords,
    Review,
    ReviewState,
    StoreChange,
    StoredEvent,
    StoreSubscriber,
)
from pipeline.store.notify import Listener, Notifier
from pipeline.store.retention import EVIDENCE_DIR, ORPHAN_GRACE_S, Retention, RetentionPolicy, evidence_path
from pipeline.store.tokens import ROLES, Role, TokenInfo, TokenRecord, Tokens, TokenState

__all__ = [
    "ACTIONS",
    "EVIDENCE_DIR",
    "MAX_LIMIT",
    "ROLES",
    "AuditCheck",
    "AuditEntry",
    "EventNotFound",
    "EventStore",
    "Lease",
    "Leases",
    "Listener",
    "NodeInfo",
    "NodeNameTaken",
    "Review",
    "RetentionPolicy",
    "ReviewState",
    "Role",
    "StoreChange",
    "StoreSubscriber",
    "StoredEvent",
    "TokenInfo",
    "TokenRecord",
    "TokenState",
    "alembic_config",
    "driver_message",
    "migrate",
]


class EventStore:
    """The store's facade: one database shared by events, audit, tokens and retention."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.events = EventRecords(db)
        self.audits = AuditLog(db)
        self.tokens = Tokens(db)
        self.retention = Retention(db)
        self.leases = Leases(db)  # a cluster's nodes and who runs which camera

    @classmethod
    def open(cls, target: str | Path, data_dir: str | Path | None = None, clock: Callable[[], float] = time.time) -> EventStore:
        """Open a data dir (SQLite `events.db` in it) or a database URL (then `data_dir` holds the evidence).

        Migrates to head and reconciles evidence with the rows before returning.
        """
        store = cls(Database.open(target, data_dir, clock))
        store.reconcile()
        return store

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def data_dir(self) -> Path:
        return self.db.data_dir

    @property
    def clock(self) -> Callable[[], float]:
        return self.db.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.db.clock = clock

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- events and reviews (store/events.py); committed changes go to subscribers -------------------

    def subscribe(self, subscriber: StoreSubscriber, *, cluster_wide: bool = False) -> None:
        """Be told every committed change: start, update, end, evidence, review; `cluster_wide`: also those
        the other nodes of a cluster commit (once `join_cluster` listens for them)."""
        self.events.subscribers.append(subscriber)
        if cluster_wide:
            self.events.cluster_subscribers.append(subscriber)

    def join_cluster(self, node: str) -> Listener:
        """Tell the other nodes of every change committed here, and listen for theirs (start the listener)."""
        if self.engine.dialect.name != "postgresql":
            raise CctvError(
                f"a cluster node needs a PostgreSQL service.database, not {self.engine.dialect.name}: "
                "every node shares the events, leases and change notifications through it"
            )
        self.events.announcer = Notifier(node)
        return Listener(self.db, self.events, node, self.events.publish_remote)

    def apply(self, change: EventChange) -> None:
        """An event bus subscriber: one change written."""
        self.events.apply([change])

    def apply_all(self, changes: Sequence[EventChange]) -> None:
        """Changes written in order in one transaction (all or none)."""
        self.events.apply(changes)

    def end_interrupted(self, cameras: Iterable[str]) -> list[str]:
        return self.events.end_interrupted(cameras)

    def get(self, event_id: str) -> StoredEvent:
        return self.events.get(event_id)

    def query(self, **filters: Any) -> tuple[list[StoredEvent], str | None]:
        return self.events.query(**filters)

    def review(
        self, event_id: str, action: str, operator: str, note: str | None = None, source: str | None = None
    ) -> Review:
        return self.events.review(event_id, action, operator, note, source)

    def reviews(self, event_id: str) -> list[Review]:
        return self.events.reviews(event_id)

    def set_evidence(
        self,
        event_id: str,
        clip: str | None = None,
        snapshot: str | None = None,
        thumbnail: str | None = None,
        raw_clip: str | None = None,
        tracks: str | None = None,
    ) -> StoredEvent:
        return self.events.set_evidence(event_id, clip, snapshot, thumbnail, raw_clip, tracks)

    # -- audit (store/audit.py) -------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        event_id: str | None = None,
        detail: dict[str, Any] | None = None,
        *,
        camera: str | None = None,
        source: str | None = None,
    ) -> AuditEntry:
        return self.audits.audit(actor, action, event_id, detail, camera=camera, source=source)

    def audit_view(
        self,
        actor: str,
        kind: str,
        event_id: str,
        detail: dict[str, Any] | None = None,
        *,
        camera: str | None = None,
        source: str | None = None,
    ) -> None:
        self.audits.audit_view(actor, kind, event_id, detail, camera=camera, source=source)

    def audit_log(
        self, limit: int = 50, cursor: str | None = None, *, cameras: Collection[str] | None = None
    ) -> tuple[list[AuditEntry], str | None]:
        return self.audits.audit_log(limit, cursor, cameras=cameras)

    def audit_verify(self) -> AuditCheck:
        return self.audits.verify()

    def audit_export_csv(self, out: str | Path | TextIO, since: float | None = None, until: float | None = None) -> int:
        return self.audits.export_csv(out, since, until)

    def audit_purge(self, max_age_seconds: float) -> int:
        return self.audits.purge(max_age_seconds)

    # -- API tokens (store/tokens.py) -------------------------------------------------------------

    def create_token(
        self,
        name: str,
        role: str,
        expires_in: float | None = None,
        cameras: list[str] | None = None,
        groups: list[str] | None = None,
    ) -> str:
        return self.tokens.create_token(name, role, expires_in, cameras, groups)

    def verify_token(self, token: str) -> TokenInfo | None:
        return self.tokens.verify_token(token)

    def list_tokens(self) -> list[TokenRecord]:
        return self.tokens.list_tokens()

    def create_session(self, signed_in: TokenInfo, hours: float, source: str | None = None) -> str:
        return self.tokens.create_session(signed_in, hours, source)

    def end_session(self, token: str, source: str | None = None) -> bool:
        return self.tokens.end_session(token, source)

    def revoke_tokens(self, name: str, actor: str = "tokens", source: str | None = None) -> int:
        return self.tokens.revoke_tokens(name, actor, source)

    # -- evidence files (store/retention.py) ------------------------------------------------------

    def evidence_path(self, relative: str) -> Path:
        return evidence_path(self.data_dir, relative)

    def retain(self, policy: RetentionPolicy) -> list[str]:
        return self.retention.retain(policy)

    def reconcile(
        self, grace_seconds: float = ORPHAN_GRACE_S, cameras: Collection[str] | None = None
    ) -> tuple[list[str], list[str]]:
        return self.retention.reconcile(grace_seconds, cameras)
