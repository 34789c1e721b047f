"""Events and their reviews, and the one door through which stored changes leave the store.

Every change is published to the store's subscribers only after its transaction commits, so anyone
told about an event (the live stream, MQTT) finds it stored: `start`, `update` and `end` from the
engine, `evidence` when its files are recorded, `review` when an operator decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Literal, cast

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from pipeline.errors import CctvError
from pipeline.events import Event, EventChange
from pipeline.store.audit import add_entry
from pipeline.store.db import Database, check_limit, decode_cursor, encode_cursor
from pipeline.store.models import EventRow, ReviewRow
from pipeline.store.retention import evidence_path

log = logging.getLogger(__name__)

ReviewState = Literal["unreviewed", "acknowledged", "false_positive", "escalated", "released"]
ACTIONS: dict[str, ReviewState] = {  # review action -> the state it leaves the event in
    "acknowledge": "acknowledged",
    "false_positive": "false_positive",
    "escalate": "escalated",  # its evidence is kept past retention until released
    "release": "released",  # an escalated case is closed: retention applies again
    "reopen": "unreviewed",
}
ChangeKind = Literal["start", "update", "end", "evidence", "review"]
EVENT_FIELDS = tuple(f.name for f in fields(Event))


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
    raw_clip: str | None = None
    tracks: str | None = None  # the clip's tracked boxes (JSON), for exports
    interrupted: bool = False  # ended by the service after the run that raised it was killed


@dataclass(frozen=True, slots=True)
class StoreChange:
    """One committed change of one event, as subscribers of the store receive it."""

    kind: ChangeKind
    stored: StoredEvent

    @property
    def event(self) -> Event:
        return self.stored.event


StoreSubscriber = Callable[[StoreChange], None]


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    event_id: str
    action: str
    operator: str
    note: str | None
    at: float


def _stored(row: EventRow) -> StoredEvent:
    values = {name: getattr(row, name) for name in EVENT_FIELDS}
    event = Event.from_dict(values)
    state = cast(ReviewState, row.review_state)
    return StoredEvent(
        event, row.created_at, row.updated_at, state, row.clip, row.snapshot, row.thumbnail, row.raw_clip, row.tracks,
        bool(row.interrupted),
    )


def _row(session: Session, event_id: str) -> EventRow:
    row = session.get(EventRow, event_id)
    if row is None:
        raise EventNotFound(f"no event {event_id!r}")
    return row


class EventRecords:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.subscribers: list[StoreSubscriber] = []  # told of every change this process commits
        self.cluster_subscribers: list[StoreSubscriber] = []  # and of other nodes' changes (notify.Listener)
        self.announcer: Callable[[Session, Sequence[StoreChange]], None] | None = None  # notify.Notifier

    def _announce(self, session: Session, changes: list[StoreChange]) -> list[StoreChange]:
        """Within the write's transaction: tell the announcer (a cluster's NOTIFY, sent only if it commits)."""
        if self.announcer is not None and changes:
            self.announcer(session, changes)
        return changes

    def publish_remote(self, change: StoreChange) -> None:
        """Another node's committed change, to the subscribers that want the whole cluster's."""
        self._publish([change], self.cluster_subscribers)

    def _publish(self, changes: Iterable[StoreChange], subscribers: list[StoreSubscriber] | None = None) -> None:
        """Hand committed changes to every subscriber; one failing never fails the write or the others."""
        for change in changes:
            for subscriber in self.subscribers if subscribers is None else subscribers:
                try:
                    subscriber(change)
                except Exception:
                    log.exception("a store subscriber failed on %s of %s", change.kind, change.event.id)

    def apply(self, changes: Sequence[EventChange]) -> None:
        """Upsert the events of bus changes, in order, in one transaction (a busy site's writer hands them over
        in batches); review state, evidence and created_at are kept."""
        if not changes:
            return
        now = self.db.clock()
        with self.db.sessions.begin() as session:
            ids = {change.event.id for change in changes}
            locked = select(EventRow).where(EventRow.id.in_(ids)).order_by(EventRow.id).with_for_update()
            rows = {row.id: row for row in session.scalars(locked)}
            stored = []
            for change in changes:
                values = {name: getattr(change.event, name) for name in EVENT_FIELDS}
                values["box"] = [float(v) for v in change.event.box]
                row = rows.get(change.event.id)
                if row is None:
                    row = rows[change.event.id] = EventRow(**values, created_at=now, updated_at=now,
                                                           review_state="unreviewed")
                    session.add(row)
                else:
                    for name, value in values.items():
                        setattr(row, name, value)
                    row.updated_at = now
                stored.append(StoreChange(change.kind, _stored(row)))
            session.flush()
            published = self._announce(session, stored)
        self._publish(published)

    def end_interrupted(self, cameras: Iterable[str]) -> list[str]:
        """End the events of `cameras` a killed run left open, at their last update; returns their ids.

        Only for the live service at start-up, whose event times are wall-clock seconds like updated_at.
        """
        with self.db.sessions.begin() as session:
            open_rows = select(EventRow).where(EventRow.end.is_(None), EventRow.camera.in_(list(cameras)))
            rows = session.scalars(open_rows.order_by(EventRow.id).with_for_update())  # locked in the writers' order
            ended = []
            for row in rows:
                row.end = max(row.start, row.updated_at)
                row.interrupted = True
                ended.append(row)
            if ended:
                add_entry(self.db, session, "service", "end_interrupted", None, {"events": [r.id for r in ended]})
            session.flush()
            changes = self._announce(session, [StoreChange("end", _stored(row)) for row in ended])
        self._publish(changes)
        return [c.event.id for c in changes]

    def get(self, event_id: str) -> StoredEvent:
        with self.db.sessions() as session:
            return _stored(_row(session, event_id))

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
        cameras: Collection[str] | None = None,
    ) -> tuple[list[StoredEvent], str | None]:
        """Events newest start first (ties by id); `next_cursor` is None on the last page.

        cameras: only these cameras' events (a camera-scoped caller), beside any `camera` filter.

        Keyset pagination: a page never repeats or skips an event even while new ones arrive.
        """
        check_limit(limit)
        if review_state is not None and review_state not in ACTIONS.values():
            raise CctvError(f"unknown review state {review_state!r}; use one of {', '.join(ACTIONS.values())}")
        equal = {"camera": camera, "rule": rule, "type": type, "label": label, "review_state": review_state}
        where: list[ColumnElement[bool]] = [getattr(EventRow, k) == v for k, v in equal.items() if v is not None]
        if cameras is not None:
            where.append(EventRow.camera.in_(sorted(cameras)))
        if since is not None:
            where.append(EventRow.start >= since)
        if until is not None:
            where.append(EventRow.start < until)
        if min_score is not None:
            where.append(EventRow.score >= min_score)
        if cursor is not None:
            start, last_id = decode_cursor(cursor, float, str)
            where.append(or_(EventRow.start < start, and_(EventRow.start == start, EventRow.id > last_id)))
        stmt = select(EventRow).where(*where).order_by(EventRow.start.desc(), EventRow.id).limit(limit + 1)
        with self.db.sessions() as session:
            rows = session.scalars(stmt).all()
        items = [_stored(row) for row in rows[:limit]]
        more = len(rows) > limit
        return items, encode_cursor([items[-1].event.start, items[-1].event.id]) if more else None

    def review(
        self, event_id: str, action: str, operator: str, note: str | None = None, source: str | None = None
    ) -> Review:
        """Record an operator decision, set the event's state to match, and audit it (with the client's
        address, `source`), in one transaction."""
        if action not in ACTIONS:
            raise CctvError(f"unknown review action {action!r}; use one of {', '.join(ACTIONS)}")
        now = self.db.clock()
        with self.db.sessions.begin() as session:
            row = _row(session, event_id)
            row.review_state = ACTIONS[action]
            row.updated_at = now
            review = ReviewRow(event_id=event_id, action=action, operator=operator, note=note, at=now)
            session.add(review)
            session.flush()
            detail = {"note": note}
            add_entry(self.db, session, operator, f"review.{action}", event_id, detail, camera=row.camera, source=source)
            changes = self._announce(session, [StoreChange("review", _stored(row))])
            result = Review(review.id, event_id, action, operator, note, now)
        self._publish(changes)
        return result

    def reviews(self, event_id: str) -> list[Review]:
        """The event's review history, oldest first."""
        with self.db.sessions() as session:
            _row(session, event_id)
            rows = session.scalars(select(ReviewRow).where(ReviewRow.event_id == event_id).order_by(ReviewRow.id))
            return [Review(r.id, r.event_id, r.action, r.operator, r.note, r.at) for r in rows]

    def set_evidence(
        self,
        event_id: str,
        clip: str | None = None,
        snapshot: str | None = None,
        thumbnail: str | None = None,
        raw_clip: str | None = None,
        tracks: str | None = None,
    ) -> StoredEvent:
        """Point the event at its evidence files (paths relative to the data dir); None leaves a path as is."""
        files = {"clip": clip, "snapshot": snapshot, "thumbnail": thumbnail, "raw_clip": raw_clip, "tracks": tracks}
        given = {k: v for k, v in files.items() if v is not None}
        for relative in given.values():
            evidence_path(self.db.data_dir, relative)
        with self.db.sessions.begin() as session:
            row = _row(session, event_id)
            for name, value in given.items():
                setattr(row, name, value)
            row.updated_at = self.db.clock()
            session.flush()
            changes = self._announce(session, [StoreChange("evidence", _stored(row))])
        self._publish(changes)
        return changes[0].stored
