"""Event store service: persists engine events, operator reviews, the audit log and evidence paths.

One code path for the embedded SQLite file (`data_dir/events.db`) and a PostgreSQL URL. Evidence files
live under `data_dir/evidence/`; the database and those files are kept in agreement by clearing a
path in the database first and unlinking afterwards, so a crash can only leave an orphan file, which
`reconcile()` (run on open) removes, as it clears any path whose file has gone missing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Self, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, Engine, and_, create_engine, event, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import CctvError
from pipeline.events import Event, EventChange
from pipeline.store.models import AuditRow, EventRow, ReviewRow, TokenRow

ReviewState = Literal["unreviewed", "acknowledged", "false_positive", "escalated"]
ACTIONS: dict[str, ReviewState] = {  # review action -> the state it leaves the event in
    "acknowledge": "acknowledged",
    "false_positive": "false_positive",
    "escalate": "escalated",
    "reopen": "unreviewed",
}
Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")  # each role may do what the ones before it may
EVIDENCE = ("clip", "snapshot", "thumbnail")
EVIDENCE_DIR = "evidence"
EVENT_FIELDS = tuple(f.name for f in fields(Event))
ORPHAN_GRACE_S = 60.0  # a recorder may be writing a file whose path is not stored yet
MAX_LIMIT = 1000
TOKEN_CACHE_S = 5.0
VIEW_WINDOW_S = 60.0
TOKEN_CACHE_SIZE = 10_000
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_HAS_EVIDENCE = or_(*(getattr(EventRow, k).is_not(None) for k in EVIDENCE))


class EventNotFound(CctvError):
    """No event has that id (an API answers 404)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event: Event
    created_at: float
    updated_at: float
    review_state: ReviewState
    clip: str | None
    snapshot: str | None
    thumbnail: str | None


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    event_id: str
    action: str
    operator: str
    note: str | None
    at: float


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    event_id: str | None
    detail: dict[str, Any] | None


def _stored(row: EventRow) -> StoredEvent:
    values = {name: getattr(row, name) for name in EVENT_FIELDS}
    event_ = Event(**{**values, "box": tuple(row.box)})
    state = cast(ReviewState, row.review_state)
    return StoredEvent(event_, row.created_at, row.updated_at, state, row.clip, row.snapshot, row.thumbnail)


def _encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError):
        raise CctvError(f"bad cursor {cursor!r}: pass the next_cursor of a previous page") from None
    if not isinstance(key, list) or len(key) != arity:
        raise CctvError(f"bad cursor {cursor!r}: pass the next_cursor of a previous page")
    return key


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise CctvError(f"limit must be 1..{MAX_LIMIT}, got {limit}")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the API read while the engine writes; SQLite leaves foreign keys off unless asked."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _engine(url: str) -> Engine:
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise CctvError(f"cannot use database URL {url!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(connection: Connection) -> Config:
    """Alembic's config built in code, so migrations run from an installed package with no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a fresh database gets every table, an older one the rest)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


class EventStore:
    """The service layer the engine (via `apply` on the EventBus), the API and retention share."""

    def __init__(self, engine: Engine, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.clock = clock
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._views: dict[tuple[str, str, str], float] = {}  # (actor, kind, event id) -> last audited view
        self._token_cache: dict[str, tuple[float, tuple[str, Role, float | None] | None]] = {}

    @classmethod
    def open(cls, target: str | Path, data_dir: str | Path | None = None, clock: Callable[[], float] = time.time) -> EventStore:
        """Open a data dir (SQLite `events.db` in it) or a database URL (then `data_dir` holds the evidence).

        Migrates to head and reconciles evidence with the rows before returning.
        """
        text = str(target)
        if "://" in text:
            if data_dir is None:
                raise CctvError("a database URL needs a data dir too: evidence files live on disk")
            url, root = text, Path(data_dir)
        else:
            root = Path(data_dir) if data_dir is not None else Path(text)
            Path(text).mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{Path(text).resolve() / 'events.db'}"
        root.mkdir(parents=True, exist_ok=True)
        engine = _engine(url)
        try:
            migrate(engine)
        except OperationalError as exc:
            engine.dispose()
            raise CctvError(f"cannot open event database: {str(exc.orig).strip().splitlines()[0]}") from None
        store = cls(engine, root.resolve(), clock)
        store.reconcile()
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- events -----------------------------------------------------------------------------------

    def apply(self, change: EventChange) -> None:
        """Upsert the event of one bus change; review state, evidence and created_at are kept."""
        values = {name: getattr(change.event, name) for name in EVENT_FIELDS}
        values["box"] = [float(v) for v in change.event.box]
        now = self.clock()
        with self._sessions.begin() as session:
            row = session.get(EventRow, change.event.id, with_for_update=True)
            if row is None:
                session.add(EventRow(**values, created_at=now, updated_at=now, review_state="unreviewed"))
                return
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now

    def end_interrupted(self, cameras: Iterable[str]) -> list[str]:
        """End the events of `cameras` a killed run left open, at their last update; returns their ids.

        Only for the live service at start-up, whose event times are wall-clock seconds like updated_at.
        """
        with self._sessions.begin() as session:
            rows = session.scalars(select(EventRow).where(EventRow.end.is_(None), EventRow.camera.in_(list(cameras))))
            ids = []
            for row in rows:
                row.end = max(row.start, row.updated_at)
                ids.append(row.id)
            if ids:
                self._audit(session, "service", "end_interrupted", None, {"events": ids})
            return ids

    def get(self, event_id: str) -> StoredEvent:
        with self._sessions() as session:
            return _stored(self._row(session, event_id))

    @staticmethod
    def _row(session: Session, event_id: str) -> EventRow:
        row = session.get(EventRow, event_id)
        if row is None:
            raise EventNotFound(f"no event {event_id!r}")
        return row

    def query(
        self,
        camera: str | None = None,
        rule: str | None = None,
        type: str | None = None,
        label: str | None = None,
        review_state: str | None = None,
        since: float | None = None,
        until: float | None = None,
        min_score: float | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[StoredEvent], str | None]:
        """Events newest start first (ties by id); `next_cursor` is None on the last page.

        Keyset pagination: a page never repeats or skips an event even while new ones arrive.
        """
        _check_limit(limit)
        if review_state is not None and review_state not in ACTIONS.values():
            raise CctvError(f"unknown review state {review_state!r}; use one of {', '.join(ACTIONS.values())}")
        equal = {"camera": camera, "rule": rule, "type": type, "label": label, "review_state": review_state}
        where: list[ColumnElement[bool]] = [getattr(EventRow, k) == v for k, v in equal.items() if v is not None]
        if since is not None:
            where.append(EventRow.start >= since)
        if until is not None:
            where.append(EventRow.start < until)
        if min_score is not None:
            where.append(EventRow.score >= min_score)
        if cursor is not None:
            start, last_id = _decode_cursor(cursor, 2)
            where.append(or_(EventRow.start < start, and_(EventRow.start == start, EventRow.id > last_id)))
        stmt = select(EventRow).where(*where).order_by(EventRow.start.desc(), EventRow.id).limit(limit + 1)
        with self._sessions() as session:
            rows = session.scalars(stmt).all()
        items = [_stored(row) for row in rows[:limit]]
        more = len(rows) > limit
        return items, _encode_cursor([items[-1].event.start, items[-1].event.id]) if more else None

    # -- reviews and audit ------------------------------------------------------------------------

    def review(self, event_id: str, action: str, operator: str, note: str | None = None) -> Review:
        """Record an operator decision, set the event's state to match, and audit it, in one transaction."""
        if action not in ACTIONS:
            raise CctvError(f"unknown review action {action!r}; use one of {', '.join(ACTIONS)}")
        now = self.clock()
        with self._sessions.begin() as session:
            row = self._row(session, event_id)
            row.review_state = ACTIONS[action]
            row.updated_at = now
            review = ReviewRow(event_id=event_id, action=action, operator=operator, note=note, at=now)
            session.add(review)
            session.add(AuditRow(at=now, actor=operator, action=f"review.{action}", event_id=event_id, detail={"note": note}))
            session.flush()
            return Review(review.id, event_id, action, operator, note, now)

    def reviews(self, event_id: str) -> list[Review]:
        """The event's review history, oldest first."""
        with self._sessions() as session:
            self._row(session, event_id)
            rows = session.scalars(select(ReviewRow).where(ReviewRow.event_id == event_id).order_by(ReviewRow.id))
            return [Review(r.id, r.event_id, r.action, r.operator, r.note, r.at) for r in rows]

    def audit(self, actor: str, action: str, event_id: str | None = None, detail: dict[str, Any] | None = None) -> AuditEntry:
        with self._sessions.begin() as session:
            return self._audit(session, actor, action, event_id, detail)

    def audit_view(self, actor: str, kind: str, event_id: str, detail: dict[str, Any] | None = None) -> None:
        """Audit that `actor` viewed an event's evidence, once per VIEW_WINDOW_S per actor, event and kind.

        A browser playing one clip sends a burst of range requests; each burst is one view.
        """
        key, now = (actor, kind, event_id), time.monotonic()
        if now - self._views.get(key, -VIEW_WINDOW_S) < VIEW_WINDOW_S:
            return
        if len(self._views) >= TOKEN_CACHE_SIZE:
            self._views = {k: t for k, t in self._views.items() if now - t < VIEW_WINDOW_S}
        self._views[key] = now
        self.audit(actor, f"view_{kind}", event_id, detail)

    def _audit(
        self, session: Session, actor: str, action: str, event_id: str | None, detail: dict[str, Any] | None
    ) -> AuditEntry:
        row = AuditRow(at=self.clock(), actor=actor, action=action, event_id=event_id, detail=detail)
        session.add(row)
        session.flush()
        return AuditEntry(row.id, row.at, actor, action, event_id, detail)

    def audit_log(self, limit: int = 50, cursor: str | None = None) -> tuple[list[AuditEntry], str | None]:
        """Audit entries newest first, paginated like `query`."""
        _check_limit(limit)
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit + 1)
        if cursor is not None:
            stmt = stmt.where(AuditRow.id < _decode_cursor(cursor, 1)[0])
        with self._sessions() as session:
            rows = session.scalars(stmt).all()
        items = [AuditEntry(r.id, r.at, r.actor, r.action, r.event_id, r.detail) for r in rows[:limit]]
        return items, _encode_cursor([items[-1].id]) if len(rows) > limit else None

    # -- API tokens -------------------------------------------------------------------------------

    def create_token(self, name: str, role: str, expires_in: float | None = None) -> str:
        """Issue a bearer token; the plain token is returned once and only its hash is stored."""
        if role not in ROLES:
            raise CctvError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires_at = None if expires_in is None else now + expires_in
        with self._sessions.begin() as session:
            row = TokenRow(token_hash=_token_hash(token), name=name, role=role, created_at=now, expires_at=expires_at)
            session.add(row)
            self._audit(session, "tokens", "token.create", None, {"name": name, "role": role, "expires_at": expires_at})
        return token

    def verify_token(self, token: str) -> tuple[str, Role] | None:
        """(name, role) of a live token; None for an unknown, revoked or expired one.

        Lookups are remembered for TOKEN_CACHE_S, so a console's stream of range requests costs no
        query each; a revocation made by another process (`cctv token`) applies within that time.
        """
        digest = _token_hash(token)
        cached = self._token_cache.get(digest)
        if cached is None or time.monotonic() - cached[0] > TOKEN_CACHE_S:
            with self._sessions() as session:
                row = session.scalar(select(TokenRow).where(TokenRow.token_hash == digest))
            found = None if row is None or row.revoked else (row.name, cast(Role, row.role), row.expires_at)
            if len(self._token_cache) >= TOKEN_CACHE_SIZE:
                self._token_cache.clear()
            cached = self._token_cache[digest] = (time.monotonic(), found)
        found = cached[1]
        if found is None or (found[2] is not None and found[2] <= self.clock()):
            return None
        return found[0], found[1]

    def revoke_tokens(self, name: str) -> int:
        """Revoke every token issued under `name`; returns how many were live."""
        with self._sessions.begin() as session:
            rows = session.scalars(select(TokenRow).where(TokenRow.name == name, TokenRow.revoked.is_(False))).all()
            for row in rows:
                row.revoked = True
            self._token_cache.clear()
            if rows:
                self._audit(session, "tokens", "token.revoke", None, {"name": name, "count": len(rows)})
            return len(rows)

    # -- evidence and retention -------------------------------------------------------------------

    def evidence_path(self, relative: str) -> Path:
        """Absolute path of a stored evidence path; refuses anything outside `data_dir/evidence`."""
        path = (self.data_dir / relative).resolve()
        if Path(relative).is_absolute() or not path.is_relative_to(self.data_dir / EVIDENCE_DIR):
            raise CctvError(f"evidence path {relative!r} must be relative to the data dir, under {EVIDENCE_DIR}/")
        return path

    def set_evidence(
        self, event_id: str, clip: str | None = None, snapshot: str | None = None, thumbnail: str | None = None
    ) -> StoredEvent:
        """Point the event at its evidence files (paths relative to the data dir); None leaves a path as is."""
        given = {k: v for k, v in {"clip": clip, "snapshot": snapshot, "thumbnail": thumbnail}.items() if v is not None}
        for relative in given.values():
            self.evidence_path(relative)
        with self._sessions.begin() as session:
            row = self._row(session, event_id)
            for name, value in given.items():
                setattr(row, name, value)
            row.updated_at = self.clock()
            return _stored(row)

    def retain(self, max_age_seconds: float | None = None, max_clip_bytes: int | None = None) -> list[str]:
        """Delete evidence, oldest event first: all of it past max_age, then clips until under the byte budget.

        Event rows, reviews and the audit log stay. Returns the deleted relative paths.
        """
        cutoff = None if max_age_seconds is None else self.clock() - max_age_seconds
        doomed: list[str] = []
        with self._sessions.begin() as session:
            oldest_first = select(EventRow).order_by(EventRow.created_at, EventRow.start, EventRow.id)
            rows = session.scalars(oldest_first.where(_HAS_EVIDENCE)).all()
            clip_bytes = sum(self._size(r.clip) for r in rows)
            for row in rows:
                old = cutoff is not None and row.created_at < cutoff
                over = max_clip_bytes is not None and clip_bytes > max_clip_bytes
                for name in EVIDENCE if old else ("clip",) if over else ():
                    relative = getattr(row, name)
                    if relative is not None:
                        doomed.append(relative)
                        clip_bytes -= self._size(relative) if name == "clip" else 0
                        setattr(row, name, None)
            if doomed:
                self._audit(session, "retention", "retain", None, {"deleted": doomed})
        for relative in doomed:  # only after the commit: a crash here leaves orphans for reconcile()
            self.evidence_path(relative).unlink(missing_ok=True)
        return doomed

    def _size(self, relative: str | None) -> int:
        path = None if relative is None else self.evidence_path(relative)
        return path.stat().st_size if path is not None and path.is_file() else 0

    def _evidence_files(self) -> Iterator[Path]:
        root = self.data_dir / EVIDENCE_DIR
        return (p for p in root.rglob("*") if p.is_file()) if root.is_dir() else iter(())

    def reconcile(self, grace_seconds: float = ORPHAN_GRACE_S) -> tuple[list[str], list[str]]:
        """Make rows and evidence files agree after a crash: clear paths to missing files, delete orphans.

        Orphans younger than `grace_seconds` are kept, since a running recorder may not have stored their
        path yet; the live service, the only writer, passes 0 before its cameras start.
        Returns (cleared paths, deleted orphan files), both relative to the data dir.
        """
        cleared: list[str] = []
        with self._sessions.begin() as session:
            rows = session.scalars(select(EventRow).where(_HAS_EVIDENCE))
            referenced: set[Path] = set()
            for row in rows:
                for name in EVIDENCE:
                    relative = getattr(row, name)
                    if relative is None:
                        continue
                    if self.evidence_path(relative).is_file():
                        referenced.add(self.evidence_path(relative))
                    else:
                        cleared.append(relative)
                        setattr(row, name, None)
            if cleared:
                self._audit(session, "reconcile", "clear_missing", None, {"paths": cleared})
        young = time.time() - grace_seconds  # file times are real wall time, whatever the clock
        orphans = [p for p in self._evidence_files() if p not in referenced and p.stat().st_mtime <= young]
        for path in orphans:
            path.unlink(missing_ok=True)
        return cleared, [str(p.relative_to(self.data_dir)) for p in orphans]
