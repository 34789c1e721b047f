"""Server-sent events: event changes and reviews pushed to every connected console as they happen.

The hub subscribes to the event store, which hands it every committed change (from the store writer's
thread or a review's request thread); each client has an asyncio queue on the server's loop, fed through
`call_soon_threadsafe`. A client that stops reading is cut off when its queue fills, so a stuck
browser never holds memory or slows anything else.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection

from starlette.concurrency import run_in_threadpool

from pipeline.api.schemas import EventOut
from pipeline.store import StoreChange

QUEUE_SIZE = 1000
KEEPALIVE_S = 15.0
RECHECK_S = 5.0  # how often a stream checks that its token is still live
_CLOSE = ""  # the message that ends a client's stream


class EventHub:
    def __init__(self) -> None:
        # queue -> (its loop, the cameras its client may see; None: all)
        self._clients: dict[asyncio.Queue[str], tuple[asyncio.AbstractEventLoop, Collection[str] | None]] = {}
        self._lock = threading.Lock()
        self.closed = False

    def __call__(self, change: StoreChange) -> None:
        """A store subscriber: sends `event: kind` with the event as the API shows it (review state, URLs)."""
        with self._lock:
            if not self._clients:
                return
        data = EventOut.of(change.stored).model_dump_json()
        self._broadcast(f"event: {change.kind}\nid: {change.event.id}\ndata: {data}\n\n", change.event.camera)

    def _broadcast(self, message: str, camera: str | None = None) -> None:
        """To every client that may see `camera` (None: to all, as the closing message)."""
        with self._lock:
            clients = list(self._clients.items())
        for queue, (loop, cameras) in clients:
            if camera is not None and cameras is not None and camera not in cameras:
                continue
            try:
                loop.call_soon_threadsafe(self._offer, queue, message)
            except RuntimeError:  # the loop has closed
                self.disconnect(queue)

    def _offer(self, queue: asyncio.Queue[str], message: str) -> None:
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:  # too slow: end its stream (the browser reconnects and refetches)
            self.disconnect(queue)
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_CLOSE)

    def connect(self, cameras: Collection[str] | None = None) -> asyncio.Queue[str]:
        """A new client's queue; it hears only of events of `cameras` (None: every camera)."""
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._clients[queue] = (asyncio.get_running_loop(), cameras)
        if self.closed:
            queue.put_nowait(_CLOSE)
        return queue

    def disconnect(self, queue: asyncio.Queue[str]) -> None:
        with self._lock:
            self._clients.pop(queue, None)

    def close(self) -> None:
        """End every stream (server shutdown), so no connection holds the server open."""
        self.closed = True
        self._broadcast(_CLOSE)

    async def stream(self, queue: asyncio.Queue[str], valid: Callable[[], bool] | None = None) -> AsyncIterator[str]:
        """The client's messages; ends when the hub closes, or once `valid` (its token still live?) says no."""
        try:
            yield f"retry: 2000\n: connected {json.dumps({'clients': len(self._clients)})}\n\n"
            last_sent = checked = time.monotonic()
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), RECHECK_S)
                except TimeoutError:
                    message = None
                now = time.monotonic()
                if valid is not None and now - checked >= RECHECK_S:
                    checked = now
                    if not await run_in_threadpool(valid):  # revoked or expired: the stream ends
                        return
                if message == _CLOSE:
                    return
                if message is not None:
                    last_sent = now
                    yield message
                elif now - last_sent >= KEEPALIVE_S:
                    last_sent = now
                    yield ": keepalive\n\n"
        finally:
            self.disconnect(queue)
