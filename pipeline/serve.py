"""`cctv serve`: the live service and its HTTP API in one process, until SIGTERM or Ctrl-C.

Shutdown order: uvicorn stops taking requests and the event streams are ended at once, then the
app's lifespan stops the cameras (open events ended, clips finished), then the store is closed.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import uvicorn
from pydantic import ValidationError
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.api.app import create_app
from pipeline.api.guard import refusals
from pipeline.config import ClusterConfig, ServiceConfig, SiteConfig, load_config
from pipeline.errors import CctvError
from pipeline.live.site import LiveSite
from pipeline.store import EventStore


class _Server(uvicorn.Server):
    """Ends the server-sent event streams as soon as a stop signal arrives, so they do not hold it open.

    Unlike uvicorn's own handler it does not re-raise the signal after the graceful stop: the process
    exits 0, as service managers expect of a clean shutdown. A second Ctrl-C still forces the exit.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.config.app.state.hub.close()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


HEADER_TIMEOUT_S = 10.0  # a connection that has not sent a whole request head by then is closed
MAX_CONNECTIONS = 400  # more at once are answered 503: the cameras keep file descriptors for their sources
KEEP_ALIVE_S = 5.0


class _TimedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request head: half-sent requests (slowloris)
    otherwise hold a file descriptor for good, and enough of them leave none for the cameras."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_deadline()  # the next request on a kept-alive connection gets the same deadline

    def _head_deadline(self) -> None:
        served = self.server_state.total_requests

        def expire() -> None:
            waiting = self.cycle is None or (self.cycle.response_complete and self.server_state.total_requests == served)
            if waiting and not self.transport.is_closing():
                refusals.note("a request head not sent in time", self.client[0] if self.client else "?")
                self.transport.close()

        self.loop.call_later(HEADER_TIMEOUT_S, expire)


def site_with_overrides(config_path: Path, cluster: dict[str, Any] | None = None, **overrides: Any) -> SiteConfig:
    """The site config with command-line values (None: keep the config's); `cluster`: the node's flags over
    `service.cluster` (a node name makes it a cluster node), validated as the config is."""
    site = load_config(config_path)
    service = site.service.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    given = {k: v for k, v in (cluster or {}).items() if v is not None}
    if given:
        base = service.cluster.model_dump() if service.cluster is not None else {}
        if "node" not in base and "node" not in given:
            raise CctvError(f"--{next(iter(given)).replace('_', '-')} is for a cluster node: give --node NAME too")
        try:
            node = ClusterConfig.model_validate(base | given)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = error["loc"][0] if error["loc"] else "node"
            raise CctvError(f"--{where}: {error['msg'].removeprefix('Value error, ')}") from None
        service = service.model_copy(update={"cluster": node})
    if service.cluster is not None and (service.database is None or not service.database.startswith("postgresql")):
        raise CctvError("a cluster node needs a PostgreSQL database shared by every node: set service.database or --db")
    return site.model_copy(update={"service": service})


def open_store(service: ServiceConfig) -> EventStore:
    return EventStore.open(service.database or service.data, data_dir=service.data)


LOCK_FILE = ".cctv-serve.lock"


def lock_data_dir(data: Path, node: str | None = None) -> TextIO:
    """Hold the data dir for this process: a second `cctv serve` on it would clean up the first one's files.

    An advisory lock (flock) on a file in it, released by the kernel when the process ends, however it ends.
    The nodes of a cluster share the data dir, each holding its own lock (its spool is its own too).
    """
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    data.chmod(0o700)  # one made by an earlier version or by hand: footage of people is the service user's alone
    handle = (data / (LOCK_FILE if node is None else f".cctv-serve-{node}.lock")).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CctvError(f"data dir {data} is in use by another cctv serve ({holder}); stop it or use another --data") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def check_port(host: str, port: int) -> None:
    """Fail before any camera starts when the API's address cannot be had."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CctvError(f"cannot listen on {host}:{port}: {exc.strerror} (another service there? use --port)") from None


MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Let the service's threads share `arenas` glibc heaps instead of up to 8 per core.

    glibc gives each thread that allocates under contention a heap of its own and seldom hands their free
    space back: the service's 40 threads (sources, encoders, detector, API), passing 1080p frames between
    them, held about 150 MB more than in 2 shared heaps, for the same CPU (`cctv bench-live`, README
    "Memory"). Only arenas made after this call are limited, so it runs before any camera thread starts.
    MALLOC_ARENA_MAX in the environment wins; without glibc nothing changes."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass  # not glibc


def serve(config_path: Path, **overrides: Any) -> None:
    limit_malloc_arenas()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    site = site_with_overrides(config_path, **overrides)
    cluster = site.service.cluster
    lock = lock_data_dir(Path(site.service.data), cluster.node if cluster is not None else None)
    check_port(site.service.host, site.service.port)
    with lock, open_store(site.service) as store:
        live = LiveSite(site, store)
        app = create_app(store, live)
        service = site.service
        config = uvicorn.Config(
            app, host=service.host, port=service.port, log_level="warning", timeout_graceful_shutdown=5,
            http=_TimedH11, limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=KEEP_ALIVE_S,
        )
        what = f"{len(site.cameras)} cameras"
        if cluster is not None:
            share = "API only" if cluster.max_cameras == 0 else f"at most {cluster.max_cameras or len(site.cameras)} cameras"
            what = f"as node {cluster.node} of a cluster of {what} ({share})"
        print(
            f"serving {what} on http://{service.host}:{service.port} (data: {store.data_dir}; stop with Ctrl-C or SIGTERM)",
            file=sys.stderr,
            flush=True,
        )
        _Server(config).run()
        print(f"stopped: {live.ended_at_stop} open events ended, their clips finished (data: {store.data_dir})",
              file=sys.stderr)
