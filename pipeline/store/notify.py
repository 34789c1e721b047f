"""Committed changes fanned out to every node of a cluster through PostgreSQL's LISTEN/NOTIFY.

Each write of a node's store sends, inside its own transaction, a NOTIFY per change with the event
as stored (`Notifier`): PostgreSQL delivers it only if the write commits, and in commit order. Each
node listens (`Listener`, a thread with its own connection) and hands the changes of other nodes to
its cluster-wide subscribers (the event stream of its API). An event too large for NOTIFY's 8,000
bytes travels as its id and is read back from the store. A message lost while a listener reconnects
costs only a live update: consoles refetch when their stream reconnects.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, cast, get_args

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from pipeline.events import Event
from pipeline.store.db import Database
from pipeline.store.events import ChangeKind, EventNotFound, EventRecords, ReviewState, StoreChange, StoredEvent

log = logging.getLogger(__name__)

CHANNEL = "cctv_changes"
MAX_PAYLOAD = 7900  # NOTIFY's limit is 8,000 bytes
RECONNECT_S = 2.0
KINDS = get_args(ChangeKind)
STORED_FIELDS = tuple(f.name for f in fields(StoredEvent) if f.name != "event")


def _stored_json(stored: StoredEvent) -> dict[str, Any]:
    return {"event": stored.event.to_dict(), **{name: getattr(stored, name) for name in STORED_FIELDS}}


def _stored_of(record: dict[str, Any]) -> StoredEvent:
    rest = {name: record[name] for name in STORED_FIELDS}
    rest["review_state"] = cast(ReviewState, rest["review_state"])
    return StoredEvent(event=Event.from_dict(record["event"]), **rest)


class Notifier:
    """The store's announcer: a NOTIFY per change, sent with the write's transaction."""

    def __init__(self, node: str) -> None:
        self.node = node

    def __call__(self, session: Session, changes: Sequence[StoreChange]) -> None:
        for change in changes:
            message = {"node": self.node, "kind": change.kind, "id": change.event.id}
            payload = json.dumps(message | {"stored": _stored_json(change.stored)}, separators=(",", ":"))
            if len(payload.encode()) > MAX_PAYLOAD:
                payload = json.dumps(message, separators=(",", ":"))
            session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})


class Listener:
    """LISTENs for the other nodes' changes and publishes them to `publish` (this node's own are skipped)."""

    def __init__(self, db: Database, events: EventRecords, node: str, publish: Callable[[StoreChange], None]) -> None:
        self._dsn = make_url(db.engine.url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.events, self.node, self.publish = events, node, publish
        self.received = 0  # changes of other nodes passed on
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cluster listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    while not self._stop.is_set():
                        for message in connection.notifies(timeout=1.0):
                            self._deliver(message.payload)
            except psycopg.Error as exc:
                self.connected.clear()
                log.warning("cluster listener: %s (reconnecting in %g s)", str(exc).strip().splitlines()[0], RECONNECT_S)
                self._stop.wait(RECONNECT_S)

    def _deliver(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            node, kind, event_id = message["node"], message["kind"], message["id"]
            stored = _stored_of(message["stored"]) if "stored" in message else None
        except (ValueError, KeyError, TypeError):
            kind = None
        if kind not in KINDS:
            log.warning("cluster listener: unreadable message %r", payload[:200])
            return
        if node == self.node:
            return
        if stored is None:
            try:
                stored = self.events.get(event_id)
            except EventNotFound:  # deleted since (retention): nothing to show
                return
        self.received += 1
        self.publish(StoreChange(cast(ChangeKind, kind), stored))
