"""The audit log: who viewed or changed what, and when. Rows are only ever added."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.store.db import Database, check_limit, decode_cursor, encode_cursor
from pipeline.store.models import AuditRow

VIEW_WINDOW_S = 60.0  # repeated views of one piece of evidence by one person within this are one view
VIEW_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    event_id: str | None
    detail: dict[str, Any] | None


def add_entry(
    db: Database, session: Session, actor: str, action: str, event_id: str | None, detail: dict[str, Any] | None
) -> AuditEntry:
    """An audit row inside the caller's transaction, so the change and its record commit together."""
    row = AuditRow(at=db.clock(), actor=actor, action=action, event_id=event_id, detail=detail)
    session.add(row)
    session.flush()
    return AuditEntry(row.id, row.at, actor, action, event_id, detail)


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._views: dict[tuple[str, str, str], float] = {}  # (actor, kind, event id) -> last audited view

    def audit(self, actor: str, action: str, event_id: str | None = None, detail: dict[str, Any] | None = None) -> AuditEntry:
        with self.db.sessions.begin() as session:
            return add_entry(self.db, session, actor, action, event_id, detail)

    def audit_view(self, actor: str, kind: str, event_id: str, detail: dict[str, Any] | None = None) -> None:
        """Audit that `actor` viewed an event's evidence, once per VIEW_WINDOW_S per actor, event and kind.

        A browser playing one clip sends a burst of range requests; each burst is one view.
        """
        key, now = (actor, kind, event_id), time.monotonic()
        if now - self._views.get(key, -VIEW_WINDOW_S) < VIEW_WINDOW_S:
            return
        if len(self._views) >= VIEW_CACHE_SIZE:
            self._views = {k: t for k, t in self._views.items() if now - t < VIEW_WINDOW_S}
        self._views[key] = now
        self.audit(actor, f"view_{kind}", event_id, detail)

    def audit_log(self, limit: int = 50, cursor: str | None = None) -> tuple[list[AuditEntry], str | None]:
        """Audit entries newest first, keyset-paginated like the event list."""
        check_limit(limit)
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit + 1)
        if cursor is not None:
            stmt = stmt.where(AuditRow.id < decode_cursor(cursor, 1)[0])
        with self.db.sessions() as session:
            rows = session.scalars(stmt).all()
        items = [AuditEntry(r.id, r.at, r.actor, r.action, r.event_id, r.detail) for r in rows[:limit]]
        return items, encode_cursor([items[-1].id]) if len(rows) > limit else None
