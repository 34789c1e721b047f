"""The live service's store writer: event changes and evidence paths written in order, off the cameras' threads,
and never lost when the store fails.

A camera hands its changes over and goes on with its detector turn; one thread writes them to the
store in the order they were handed over (all that wait at once in one transaction, so a busy site
costs a commit per batch rather than per change), and the store then publishes each committed change (the
live stream, MQTT). When the store cannot be written (a lock held too long, a full disk, PostgreSQL
down), the write and every one after it go to a spool on disk (`data/spool.jsonl`, one JSON line
each, fsynced), in order, and are written from it once the store is back, retried with back-off.
The spool survives a restart: a new service writes it before anything else. Writes are upserts
(an event's fields, its evidence paths), so one written twice across a crash is still one event.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError

from pipeline.events import Event, EventChange
from pipeline.evidence import EvidencePaths
from pipeline.store import EventStore, driver_message

log = logging.getLogger(__name__)

SPOOL_FILE = "spool.jsonl"
BATCH = 200  # event changes written in one transaction at most (a burst of a busy site's cameras)
MAX_SPOOLED = 100_000  # writes kept while the store is away (about 100 MB): days of a busy site's events
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 10.0
STORE_DOWN = (DBAPIError, OSError)  # the store failed, not the write: keep it for later


@dataclass(frozen=True, slots=True)
class Write:
    """One write for the store, as it is spooled."""

    kind: Literal["change", "evidence"]
    data: dict[str, Any]

    def line(self) -> str:
        return json.dumps({"kind": self.kind, "data": self.data}, separators=(",", ":")) + "\n"


@dataclass(frozen=True, slots=True)
class StoreHealth:
    ok: bool
    reason: str | None  # why the store is degraded
    spooled: int  # writes waiting on disk for the store
    dropped: int  # writes lost because the spool was full


_STOP = None  # the queue item that ends the thread once everything before it is written


class StoreWriter:
    def __init__(self, store: EventStore, spool: str = SPOOL_FILE) -> None:
        """spool: the spool's file name in the data dir (each node of a cluster sharing one has its own)."""
        self.store = store
        self.spool_path = store.data_dir / spool
        self._queue: queue.Queue[Write | threading.Event | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="store writer", daemon=True)
        self._pending: deque[Write] = deque(self._read_spool())  # in the spool file, in order
        self._reason: str | None = "writes spooled by an earlier run" if self._pending else None
        self._retry_at, self._delay = 0.0, RETRY_FIRST_S
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def flush_spool(self) -> bool:
        """Write what an earlier run spooled, before the service starts (True: nothing left waiting)."""
        self._flush()
        return not self._pending

    def apply(self, change: EventChange) -> None:
        """An event bus subscriber: queue the change for the store."""
        self._queue.put(Write("change", {"kind": change.kind, "event": change.event.to_dict()}))

    def set_evidence(self, paths: EvidencePaths) -> None:
        """An evidence recorder's `on_started` and `on_done`: queue the paths of the files that exist now
        (the snapshot and thumbnail from the start, the clips once finished), relative to the data dir."""
        root = self.store.data_dir
        names = ("clip", "raw_clip", "snapshot", "thumbnail", "tracks")
        stored = (paths.clip, paths.raw, paths.snapshot, paths.thumbnail, paths.tracks)
        ready = {name: str(path.relative_to(root)) for name, path in zip(names, stored) if path.is_file()}
        self._queue.put(Write("evidence", {"event_id": paths.event_id, "files": ready}))

    @property
    def backlog(self) -> int:
        """Writes waiting (a growing backlog means the store is slower than the cameras)."""
        return self._queue.qsize() + len(self._pending)

    def health(self) -> StoreHealth:
        return StoreHealth(self._reason is None, self._reason, len(self._pending), self.dropped)

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued so far has been written or spooled (True), at most `timeout` s."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Write everything queued so far (what the store does not take stays spooled), then end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            wait = None if not self._pending else max(0.0, self._retry_at - time.monotonic())
            try:
                items = [self._queue.get(timeout=wait)]
            except queue.Empty:
                items = []
            while items and isinstance(items[-1], Write) and len(items) < BATCH:  # what else is waiting, at once
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            writes = [item for item in items if isinstance(item, Write)]
            if self._pending:
                for item in writes:
                    self._spool(item)
                if time.monotonic() >= self._retry_at:
                    self._flush()
            else:
                self._write_batch(writes)
            for item in items:
                if isinstance(item, threading.Event):  # a drain(): everything before it is handled
                    item.set()
            if items and items[-1] is _STOP:
                self._flush()
                return

    def _write_batch(self, writes: list[Write]) -> None:
        """Runs of event changes in one transaction each, evidence paths one by one, in order; once the store
        fails, that write and all after it are spooled."""
        start = 0
        while start < len(writes):
            end = start + 1
            while writes[start].kind == "change" and end < len(writes) and writes[end].kind == "change":
                end += 1
            if not self._write(writes[start:end]):
                for item in writes[start:]:
                    self._spool(item)
                return
            start = end

    def _write(self, items: list[Write]) -> bool:
        """Write a run of event changes, or one evidence item; False when the store is down (they are then kept)."""
        try:
            if items[0].kind == "change":
                changes = [EventChange(item.data["kind"], Event.from_dict(item.data["event"])) for item in items]
                self.store.apply_all(changes)
            else:
                self.store.set_evidence(items[0].data["event_id"], **items[0].data["files"])
        except STORE_DOWN as exc:
            self._degraded(exc)
            return False
        except Exception:  # a write the store refuses for itself (a bug): never block the ones after it
            if len(items) > 1:  # find the one it refuses: the others are written
                return all([self._write([item]) for item in items])
            log.exception("event store write failed: %s", items[0].line().strip()[:200])
        return True

    def _degraded(self, exc: BaseException) -> None:
        reason = f"{type(getattr(exc, 'orig', None) or exc).__name__}: {driver_message(exc) or 'failed'}"
        if self._reason is None:
            log.error("event store unavailable (%s): writes are spooled to %s", reason, self.spool_path)
        self._reason = reason
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(RETRY_MAX_S, self._delay * 2)

    def _spool(self, item: Write) -> None:
        if len(self._pending) >= MAX_SPOOLED:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("store spool full (%d writes): %d writes lost", MAX_SPOOLED, self.dropped)
            return
        self._pending.append(item)
        try:
            with self.spool_path.open("a", encoding="utf-8") as spool:
                spool.write(item.line())
                spool.flush()
                os.fsync(spool.fileno())
        except OSError as exc:  # the disk is what failed: keep it in memory, and say so
            self._reason = f"store and spool unavailable: {exc.strerror}"

    def _flush(self) -> None:
        """Write spooled items in order until one fails; the spool file then holds exactly what is left."""
        written = 0
        while self._pending:
            if not self._write([self._pending[0]]):
                break
            self._pending.popleft()
            written += 1
        if not self._pending:
            self.spool_path.unlink(missing_ok=True)
            if self._reason is not None:
                log.warning("event store back: %d spooled writes written", written)
            self._reason, self._delay = None, RETRY_FIRST_S
        elif written:
            self._rewrite_spool()

    def _rewrite_spool(self) -> None:
        tmp = self.spool_path.with_name(f".{self.spool_path.name}.part")
        try:
            tmp.write_text("".join(item.line() for item in self._pending), encoding="utf-8")
            os.replace(tmp, self.spool_path)
        except OSError as exc:
            self._reason = f"store and spool unavailable: {exc.strerror}"

    def _read_spool(self) -> list[Write]:
        if not self.spool_path.exists():
            return []
        items = []
        for number, line in enumerate(self.spool_path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                record = json.loads(line)
                items.append(Write(record["kind"], record["data"]))
            except (ValueError, KeyError, TypeError):  # a line cut short by a crash mid-write: the rest is whole
                log.warning("%s: line %d unreadable, skipped", self.spool_path, number)
        return items

