"""This process as a node of a cluster: which of the site's cameras it runs, decided through leases.

Every `renew_seconds` the node heartbeats, renews the leases of the cameras it runs (recording each
one's state for the other nodes' APIs) and rebalances. Every node computes the same share of cameras
per live node from the same rows (as even as capacities allow, ties to the first name), so
they agree without talking: a node under its share takes free cameras (no lease, or one that lapsed
because its node died), and a node over its share gives cameras back only while another node is
under its own share (at most its part of what they are short of), so nothing moves once the shares
are met (no flapping). A joining node waits a round and a half before taking any, so that nodes
started together see each other first rather than the first one taking everything.
Each node prefers cameras by a rendezvous hash of camera and node, so a joining node takes over a
scattered few rather than everyone's first.

Stopping a camera (given back, or taken over after this node lost touch) runs on its own thread,
renewed meanwhile, and its lease is released only once its open events are ended and written: the
next node then finds nothing of it left open. A database outage leaves every node running what it
has: no node can take anything over meanwhile, and the leases decide again once it is back.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import ClusterConfig, ServiceConfig
from pipeline.store import Lease, Leases, NodeInfo

log = logging.getLogger(__name__)

STOP_CAMERA_S = 30.0  # a camera given back finishes its clips within this
CLAIM_BATCH = 64  # cameras taken per round at most: the round (and the next renewal) stays short
SETTLE_ROUNDS = 1.5  # a joining node takes cameras only once the nodes starting with it have heartbeaten
STATUS_MAX_AGE_S = 1.0  # the other nodes' camera states, cached this long for the API


def advertised_url(service: ServiceConfig, cluster: ClusterConfig) -> str:
    """Where the other nodes reach this node's API: `advertise`, else its host and port (the host name when it
    listens on every address)."""
    if cluster.advertise is not None:
        return cluster.advertise
    host = socket.gethostname() if service.host in ("0.0.0.0", "::", "") else service.host
    return f"http://[{host}]:{service.port}" if ":" in host else f"http://{host}:{service.port}"


def shares(cameras: int, nodes: Sequence[NodeInfo]) -> dict[str, int]:
    """How many of `cameras` each node should run: as even as their capacities allow, extra ones to the first
    names. Every node computes the same from the same rows."""
    share = {n.name: 0 for n in nodes}
    capacity = {n.name: n.capacity for n in nodes}
    for _ in range(cameras):
        room = [name for name in share if share[name] < capacity[name]]
        if not room:
            break
        share[min(room, key=lambda name: (share[name], name))] += 1
    return share


def preference(camera: str, node: str) -> int:
    """Rendezvous hash: each node ranks the cameras its own way, so the ones it takes over are spread out."""
    return int.from_bytes(hashlib.blake2b(f"{camera}\x00{node}".encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The cluster as this node saw it at its last round (what the API shows)."""

    at: float = 0.0
    nodes: tuple[NodeInfo, ...] = ()
    leases: dict[str, Lease] = field(default_factory=dict)  # camera -> its lease, live or lapsed
    live_nodes: frozenset[str] = frozenset()

    def owner(self, camera: str) -> NodeInfo | None:
        """The live node running `camera` (None: nobody, or its node is gone)."""
        lease = self.leases.get(camera)
        if lease is None or lease.expires_at < self.at or lease.node not in self.live_nodes:
            return None
        return next((n for n in self.nodes if n.name == lease.node), None)


@dataclass
class ClusterCounts:
    rounds: int = 0
    renewals: int = 0  # leases renewed
    claims: int = 0  # cameras taken (at start, after a node died, in a rebalance)
    given_back: int = 0  # cameras released in a rebalance
    lost: int = 0  # cameras another node took while this one could not renew
    failed_rounds: int = 0  # rounds the database did not answer


class ClusterNode:
    """Runs the lease rounds of this node; `run_cameras` and `stop_camera` start and stop its cameras."""

    def __init__(
        self,
        config: ClusterConfig,
        url: str,
        cameras: Iterable[str],
        leases: Leases,
        running: Callable[[], dict[str, Any]],
        run_cameras: Callable[[list[str]], None],
        stop_camera: Callable[[str], None],
    ) -> None:
        """running: the state of each camera this node runs now (recorded in its lease at each renewal)."""
        self.config, self.name, self.url = config, config.node, url
        self.cameras = sorted(cameras)
        self.capacity = len(self.cameras) if config.max_cameras is None else config.max_cameras
        self.leases = leases
        self._running, self._run_cameras, self._stop_camera = running, run_cameras, stop_camera
        self.view = ClusterView()
        self.counts = ClusterCounts()
        self._joined = time.monotonic()
        self.leader = False  # the first live node by name runs the site-wide chores (retention)
        self._statuses: tuple[float, dict[str, dict[str, Any]]] = (float("-inf"), {})  # (read at, states)
        self._status_lock = threading.Lock()
        self._stopping: dict[str, dict[str, Any]] = {}  # cameras being stopped -> their last state (still renewed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cluster node", daemon=True)

    def join(self) -> None:
        """Register this node (refused while another process of the same name runs), before anything starts."""
        self.leases.join(self.name, self.url, self.capacity, self.config.lease_seconds)
        self._joined = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the rounds (the caller then stops the cameras and calls `leave`)."""
        self._stop.set()
        self._thread.join(self.config.lease_seconds)
        deadline = time.monotonic() + STOP_CAMERA_S
        while self._stopping and time.monotonic() < deadline:  # cameras being given back finish first
            time.sleep(0.1)

    def leave(self) -> None:
        """Give every lease back at once (the others need not wait for them to lapse) and leave the cluster."""
        self.leases.leave(self.name)

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Every leased camera's state as its node last renewed it; read at most once a second however many ask."""
        with self._status_lock:
            at, states = self._statuses
            if time.monotonic() - at >= STATUS_MAX_AGE_S:
                states = self.leases.statuses()
                self._statuses = (time.monotonic(), states)
            return states

    def _loop(self) -> None:
        while True:
            began = time.monotonic()
            try:
                self.round()
            except Exception as exc:  # the database is away: keep running what this node has
                self.counts.failed_rounds += 1
                log.warning("cluster round failed (%s: %s); cameras run on", type(exc).__name__, str(exc).splitlines()[0])
            if self._stop.wait(max(0.0, self.config.renew_seconds - (time.monotonic() - began))):
                return

    def round(self) -> None:
        """Heartbeat, renew, rebalance: one step towards this node's share."""
        self.counts.rounds += 1
        seconds = self.config.lease_seconds
        self.leases.heartbeat(self.name, self.url, self.capacity)
        running = self._running()
        with self._lock:
            stopping = set(self._stopping)
            statuses = {**self._stopping, **running}
        held = self.leases.renew(self.name, statuses, seconds)
        self.counts.renewals += len(held)
        for camera in sorted(running.keys() - held - stopping):  # each lost camera stopped once
            log.warning("camera %s was taken over by another node while this one could not renew: stopping it", camera)
            self.counts.lost += 1
            self._give_back(camera, running[camera], release=False)
        now = time.time()
        nodes = tuple(self.leases.nodes())
        live = frozenset(n.name for n in nodes if now - n.heartbeat_at < seconds)
        view = ClusterView(now, nodes, {lease.camera: lease for lease in self.leases.leases()}, live)
        self.view, self.leader = view, min(live, default=None) == self.name
        taken = {camera: view.leases[camera].node for camera in self.cameras if view.owner(camera) is not None}
        share = shares(len(self.cameras), [n for n in nodes if n.name in live])
        count = Counter(taken.values())
        mine = sorted((c for c, node in taken.items() if node == self.name and c not in stopping),
                      key=lambda c: preference(c, self.name))
        want = share.get(self.name, 0)
        short = sum(max(0, s - count[n]) for n, s in share.items() if n != self.name)  # what others are short of
        over = sum(1 for n, s in share.items() if count[n] > s)  # the nodes giving back, this one among them
        if len(mine) > want and short:
            for camera in mine[: min(len(mine) - want, -(-short // over))]:  # those this node cares least for
                self.counts.given_back += 1
                self._give_back(camera, running.get(camera, {}), release=True)
        elif len(mine) < want and time.monotonic() - self._joined >= self.config.renew_seconds * SETTLE_ROUNDS:
            free = sorted((c for c in self.cameras if c not in taken), key=lambda c: -preference(c, self.name))
            claimed = self.leases.claim(self.name, free[: min(want - len(mine), CLAIM_BATCH)], seconds)
            if claimed:
                self.counts.claims += len(claimed)
                log.info("node %s runs %d more cameras: %s", self.name, len(claimed), ", ".join(claimed[:8]) +
                         (" ..." if len(claimed) > 8 else ""))
                self._run_cameras(claimed)

    def _give_back(self, camera: str, status: dict[str, Any], release: bool) -> None:
        """Stop `camera` on a thread of its own (its lease renewed meanwhile, with its last `status`), then release
        its lease."""
        with self._lock:
            self._stopping[camera] = status

        def stop() -> None:
            try:
                self._stop_camera(camera)
                if release:
                    self.leases.release(self.name, [camera])
            except Exception:
                log.exception("stopping camera %s failed", camera)
            finally:
                with self._lock:
                    self._stopping.pop(camera, None)

        threading.Thread(target=stop, name=f"give back {camera}", daemon=True).start()
