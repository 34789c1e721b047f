"""The audit log: who viewed or changed what, when, for which camera and from where.

Rows are only ever added, and purged oldest first once past `service.retention.audit_days`. Each row holds
the SHA-256 of its content and of the row before it, so an edited or deleted row breaks the chain (Korean
privacy law asks that every access be recorded and the record kept safe from tampering).
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import ColumnElement, delete, func, select, text
from sqlalchemy.orm import Session

from pipeline.store.db import Database, check_limit, decode_cursor, encode_cursor
from pipeline.store.models import AuditRow

VIEW_WINDOW_S = 60.0  # repeated views of one piece of evidence by one person within this are one view
VIEW_CACHE_SIZE = 10_000
GENESIS = "0" * 64  # the prev_hash of the first row ever written
CHAIN_LOCK = 0x6363_7476_6175_6474  # PostgreSQL advisory lock key ("cctvaudt") that serialises appenders
PURGE_ACTION = "audit.purge"
PAGE = 1000  # rows per query when walking the whole log
CSV_HEADER = ("id", "at", "at_utc", "actor", "action", "event_id", "camera", "source", "detail", "hash")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    event_id: str | None
    detail: dict[str, Any] | None
    camera: str | None = None
    source: str | None = None
    hash: str = ""


@dataclass(frozen=True, slots=True)
class AuditCheck:
    """What `AuditLog.verify` found: an intact chain, or the first row where it breaks and why."""

    ok: bool
    rows: int  # entries checked (all of them when ok)
    first_bad_id: int | None = None  # the altered or rewritten row, or the first one after missing rows
    problem: str | None = None
    head: str | None = None  # the newest entry's hash (genesis for an empty log) when ok: keep a copy elsewhere


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(
    row_id: int,
    at: float,
    actor: str,
    action: str,
    event_id: str | None,
    camera: str | None,
    source: str | None,
    detail: dict[str, Any] | None,
    prev_hash: str,
) -> str:
    """SHA-256 hex of a row's canonical JSON; the one definition, also used by the migration that backfills."""
    content = [row_id, at, actor, action, event_id, camera, source, detail, prev_hash]
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def _content_hash(row: AuditRow) -> str:
    return row_hash(
        row.id, row.at, row.actor, row.action, row.event_id, row.camera, row.source, row.detail, row.prev_hash
    )


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(row.id, row.at, row.actor, row.action, row.event_id, row.detail, row.camera, row.source, row.hash)


def _insert(db: Database, session: Session, row: AuditRow) -> AuditRow:
    """Add `row` to the caller's transaction, not yet linked, and hold the chain's lock until it commits.

    PostgreSQL: an advisory lock, taken before the insert so the row's id comes after every committed
    appender's. SQLite: the insert itself takes the database's one write lock.
    """
    if db.engine.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    row.prev_hash = row.hash = ""  # set by _link once the row has its id
    session.add(row)
    session.flush()
    return row


def _link(session: Session, row: AuditRow) -> None:
    """Chain `row` to the row with the greatest id below it; call while holding the lock `_insert` took."""
    prev = session.scalar(select(AuditRow.hash).where(AuditRow.id < row.id).order_by(AuditRow.id.desc()).limit(1))
    row.prev_hash = GENESIS if prev is None else prev
    row.hash = _content_hash(row)
    session.flush()


def add_entry(
    db: Database,
    session: Session,
    actor: str,
    action: str,
    event_id: str | None,
    detail: dict[str, Any] | None,
    *,
    camera: str | None = None,
    source: str | None = None,
) -> AuditEntry:
    """An audit row inside the caller's transaction, so the change and its record commit together.

    The chain cannot fork: the row is linked while its transaction holds a lock every appender takes and
    keeps until commit (PostgreSQL's advisory lock; SQLite's write lock), so no other row can commit between
    it and the row it links to, and that row (the greatest id below) is already committed and visible
    (PostgreSQL's default READ COMMITTED reads what committed before each statement). A threading.Lock
    would add nothing, and would not cover other processes (`cctv token` beside `cctv serve`).
    camera: the camera the entry concerns; source: where the request came from (the client's address).
    """
    row = AuditRow(
        at=float(db.clock()), actor=actor, action=action, event_id=event_id, detail=detail, camera=camera, source=source
    )  # float: an int clock would read back as a float and no longer match the hash
    _insert(db, session, row)
    _link(session, row)
    return _entry(row)


def _break(prev: AuditRow | None, row: AuditRow, starts: set[str]) -> tuple[int, str] | None:
    """(bad row id, problem) where `row` does not follow `prev` (None: it is the first row), else None."""
    if _content_hash(row) != row.hash:
        return row.id, f"audit row {row.id} was altered (its hash does not match its content)"
    if prev is None and row.prev_hash not in starts:
        return row.id, (
            f"audit rows missing before row {row.id} (its prev_hash is neither the genesis hash "
            f"nor the last hash recorded by the newest {PURGE_ACTION} entry)"
        )
    if prev is not None and row.prev_hash != prev.hash:
        if row.id == prev.id + 1:  # nothing between them: the earlier row was rewritten, hash and all
            return prev.id, f"audit row {prev.id} was rewritten (row {row.id}'s prev_hash is not its hash)"
        gap = f"audit rows missing between {prev.id} and {row.id}"
        return row.id, f"{gap} (row {row.id}'s prev_hash is not row {prev.id}'s hash)"
    return None


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._views: dict[tuple[str, str, str], float] = {}  # (actor, kind, event id) -> last audited view

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
        with self.db.sessions.begin() as session:
            return add_entry(self.db, session, actor, action, event_id, detail, camera=camera, source=source)

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
        """Audit that `actor` viewed an event's evidence, once per VIEW_WINDOW_S per actor, event and kind.

        A browser playing one clip sends a burst of range requests; each burst is one view.
        """
        key, now = (actor, kind, event_id), time.monotonic()
        if now - self._views.get(key, -VIEW_WINDOW_S) < VIEW_WINDOW_S:
            return
        if len(self._views) >= VIEW_CACHE_SIZE:
            self._views = {k: t for k, t in self._views.items() if now - t < VIEW_WINDOW_S}
        self._views[key] = now
        self.audit(actor, f"view_{kind}", event_id, detail, camera=camera, source=source)

    def audit_log(
        self, limit: int = 50, cursor: str | None = None, *, cameras: Collection[str] | None = None
    ) -> tuple[list[AuditEntry], str | None]:
        """Audit entries newest first, keyset-paginated like the event list.

        cameras: only the entries about these cameras (a camera-scoped admin); None: every entry.
        """
        check_limit(limit)
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit + 1)
        if cameras is not None:
            stmt = stmt.where(AuditRow.camera.in_(sorted(cameras)))
        if cursor is not None:
            stmt = stmt.where(AuditRow.id < decode_cursor(cursor, int)[0])
        with self.db.sessions() as session:
            rows = session.scalars(stmt).all()
        items = [_entry(r) for r in rows[:limit]]
        return items, encode_cursor([items[-1].id]) if len(rows) > limit else None

    def _rows(self, *where: ColumnElement[bool]) -> Iterator[AuditRow]:
        """Audit rows in id order, a page per query, so a long log is never in memory at once."""
        after: int | None = None
        while True:
            stmt = select(AuditRow).where(*where).order_by(AuditRow.id).limit(PAGE)
            if after is not None:
                stmt = stmt.where(AuditRow.id > after)
            with self.db.sessions() as session:
                page = session.scalars(stmt).all()
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].id

    def verify(self) -> AuditCheck:
        """Walk the chain oldest first: each row must match its hash and link to the row before it.

        The first row must link to the genesis hash, or to the last hash the newest `audit.purge` entry
        recorded. What the chain cannot show by itself: newest rows deleted (or the whole log rewritten,
        hash by hash) leave a shorter chain that is still whole. Only a copy of the head hash kept
        elsewhere (`cctv audit verify` prints it) shows that.
        """
        with self.db.sessions() as session:
            purge = session.scalar(
                select(AuditRow.detail).where(AuditRow.action == PURGE_ACTION).order_by(AuditRow.id.desc()).limit(1)
            )
        starts = {GENESIS} | ({str(purge.get("last_hash"))} if isinstance(purge, dict) else set())
        prev: AuditRow | None = None
        count = 0
        for row in self._rows():
            broken = _break(prev, row, starts)
            if broken is not None:
                return AuditCheck(False, count, *broken)
            prev, count = row, count + 1
        return AuditCheck(True, count, head=GENESIS if prev is None else prev.hash)

    def export_csv(self, out: str | Path | TextIO, since: float | None = None, until: float | None = None) -> int:
        """Write the entries with since <= at < until, oldest first, as CSV (CSV_HEADER); returns how many.

        `out` is a path or a text file opened with newline="". Read a page at a time: years of log are fine.
        """
        if isinstance(out, str | Path):
            with Path(out).open("w", newline="", encoding="utf-8") as file:
                return self.export_csv(file, since, until)
        where: list[ColumnElement[bool]] = []
        if since is not None:
            where.append(AuditRow.at >= since)
        if until is not None:
            where.append(AuditRow.at < until)
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        count = 0
        for r in self._rows(*where):
            at_utc = datetime.fromtimestamp(r.at, UTC).isoformat(timespec="milliseconds")
            detail = "" if r.detail is None else _canonical(r.detail)
            writer.writerow([r.id, r.at, at_utc, r.actor, r.action, r.event_id, r.camera, r.source, detail, r.hash])
            count += 1
        return count

    def purge(self, max_age_seconds: float) -> int:
        """Delete the entries older than `max_age_seconds`, oldest first; returns how many.

        Kept apart from evidence retention: the record of access is kept longer than the footage. In the
        same transaction an `audit.purge` entry records {"through_id", "last_hash", "count"}, so `verify`
        accepts a chain that now starts after through_id. The oldest entry not past the cutoff stops the
        purge, so no younger entry goes even if the clock once went back.
        """
        now = float(self.db.clock())
        cutoff = now - max_age_seconds
        with self.db.sessions() as session:  # closing without commit rolls back: nothing to purge
            oldest = session.scalar(select(AuditRow.at).order_by(AuditRow.id).limit(1))
            if oldest is None or oldest >= cutoff:  # the common case: no lock taken, nothing written
                return 0
            entry = _insert(self.db, session, AuditRow(at=now, actor="retention", action=PURGE_ACTION, event_id=None))
            kept = session.scalar(select(func.min(AuditRow.id)).where(AuditRow.at >= cutoff, AuditRow.id < entry.id))
            doomed = AuditRow.id < (entry.id if kept is None else kept)
            last = session.execute(
                select(AuditRow.id, AuditRow.hash).where(doomed).order_by(AuditRow.id.desc()).limit(1)
            ).one_or_none()
            if last is None:  # another purge took them since the check above
                return 0
            count = session.scalar(select(func.count()).select_from(AuditRow).where(doomed)) or 0
            entry.detail = {"through_id": last.id, "last_hash": last.hash, "count": count}
            _link(session, entry)  # before the delete: the entry links to the head even when every row goes
            session.execute(delete(AuditRow).where(AuditRow.id <= last.id))
            session.commit()
        return count
