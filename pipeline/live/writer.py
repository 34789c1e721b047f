"""The live service's store writer: event changes and evidence paths written in order, off the cameras' threads.

A camera hands its changes over and goes on with its detector turn; one thread writes them to the
store in the order they were handed over, and the store then publishes each committed change (the
live stream, MQTT). A write that fails is logged and the next one goes on: the camera never stops.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from pipeline.events import EventChange
from pipeline.evidence import EvidencePaths
from pipeline.store import EventStore

log = logging.getLogger(__name__)

_STOP = None  # the queue item that ends the thread once everything before it is written


class StoreWriter:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="store writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def apply(self, change: EventChange) -> None:
        """An event bus subscriber: queue the change for the store."""
        self._queue.put(lambda: self.store.apply(change))

    def set_evidence(self, paths: EvidencePaths) -> None:
        """An evidence recorder's `on_started` and `on_done`: queue the paths of the files that exist now
        (the snapshot and thumbnail from the start, the clips once finished), relative to the data dir."""
        root = self.store.data_dir
        names = ("clip", "raw_clip", "snapshot", "thumbnail", "tracks")
        stored = (paths.clip, paths.raw, paths.snapshot, paths.thumbnail, paths.tracks)
        files = dict(zip(names, stored))
        ready = {name: _relative(path, root) for name, path in files.items() if path.is_file()}

        def write() -> None:
            self.store.set_evidence(paths.event_id, **ready)

        self._queue.put(write)

    @property
    def backlog(self) -> int:
        """Writes waiting (a growing backlog means the store is slower than the cameras)."""
        return self._queue.qsize()

    def stop(self, timeout: float | None = None) -> None:
        """Write everything queued so far, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (write := self._queue.get()) is not _STOP:
            try:
                write()
            except Exception:
                log.exception("event store write failed")


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root))
