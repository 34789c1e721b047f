"""The live site: every camera of a site config, one shared detector, the event store and its subscribers.

Event changes flow camera thread -> EventBus -> the store writer, which writes them to the store in order
off the camera's thread; the store then publishes each committed change to its subscribers (the API's live
stream, MQTT). Each camera's evidence recorder hands its finished files to the same writer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from pipeline.config import SiteConfig
from pipeline.events import EventChange
from pipeline.live.camera import CameraWorker
from pipeline.live.cluster import ClusterNode, advertised_url
from pipeline.live.detector import SharedDetector
from pipeline.live.metrics import ServiceMetrics
from pipeline.live.mqtt import MqttPublisher
from pipeline.live.sim import is_simulated
from pipeline.live.writer import SPOOL_FILE, StoreWriter
from pipeline.store import EVIDENCE_DIR, EventStore, Listener, RetentionPolicy

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0  # a camera finishing its clips at shutdown
DISK_CHECK_S = 5.0  # how often free space is checked: a 1 GB margin lasts minutes even at a busy site's write rate


class LiveSite:
    """The cameras this process runs: all of the site's, or, as a node of a cluster, those it holds leases of."""

    def __init__(self, site: SiteConfig, store: EventStore) -> None:
        self.site = site
        self.store = store
        self.events_by_rule: Counter[tuple[str, str]] = Counter()
        self.metrics = ServiceMetrics()
        simulated = all(is_simulated(cam.source) for cam in site.cameras.values())
        self.detector = SharedDetector(site.model, observe=self.metrics.inference.observe, lazy=simulated)
        cluster = site.service.cluster
        self.writer = StoreWriter(store, SPOOL_FILE if cluster is None else f"spool-{cluster.node}.jsonl")
        self.mqtt = MqttPublisher(site.service.mqtt) if site.service.mqtt is not None else None
        if self.mqtt is not None:
            store.subscribe(self.mqtt)  # this process's changes only: each node publishes its own cameras' events
        self._lock = threading.Lock()
        self.cameras: dict[str, CameraWorker] = {}  # those running here, replaced whole on a change (readers copy none)
        self.cluster: ClusterNode | None = None
        self.listener: Listener | None = None
        if cluster is not None:
            self.listener = store.join_cluster(cluster.node)
            url = advertised_url(site.service, cluster)
            self.cluster = ClusterNode(cluster, url, site.cameras, store.leases, self._statuses, self.run_cameras,
                                       self.stop_camera)
        self.metrics.watch(lambda: self.cameras, self.detector, self.events_by_rule, self.writer, self.cluster)
        self._retention = threading.Thread(target=self._retain, name="retention", daemon=True)
        self._stopping = threading.Event()
        self._store_clean = False  # an earlier run's spool is written: clean-up after a crash may run
        self.ended_at_stop = 0  # events open when stop() was called, which it ended

    def start(self) -> None:
        """Clean up after a killed run (open events ended, partial files deleted), then start the cameras
        (a cluster node: join, then take its share of them)."""
        if self.cluster is not None:
            self.cluster.join()
        self._store_clean = self.writer.flush_spool()
        if not self._store_clean:  # the spool names files no row does yet: they are not orphans
            log.warning("event store unavailable at start (%s): clean-up after a crash waits", self.writer.health().reason)
        self.writer.start()
        if self.cluster is None:
            if self._store_clean:
                self.store.end_interrupted(self.site.cameras)
                self.store.reconcile(grace_seconds=0)
            for name in self.site.cameras:
                self._start_worker(name)
        else:
            assert self.listener is not None
            self.listener.start()
            self.cluster.start()
        self._retention.start()

    def run_cameras(self, names: list[str]) -> None:
        """Start cameras this node has just taken: what their last node left open is ended and cleaned up first
        (that node is gone, or gave them back with everything written)."""
        if self._store_clean:
            self.store.end_interrupted(names)
            self.store.reconcile(grace_seconds=0, cameras=names)
        for name in names:
            self._start_worker(name)

    def stop_camera(self, name: str) -> None:
        """Stop one camera (given back to the cluster): its open events ended, clips finished, all written."""
        with self._lock:
            worker = self.cameras.get(name)
            self.cameras = {k: v for k, v in self.cameras.items() if k != name}
        if worker is not None:
            worker.stop()
            worker.join(STOP_TIMEOUT_S)
        self.writer.drain(STOP_TIMEOUT_S)

    def _start_worker(self, name: str) -> None:
        worker = CameraWorker(
            name,
            self.site.cameras[name],
            self.site.service,
            self.detector,
            [self.writer.apply, self._count],
            self.store.data_dir / EVIDENCE_DIR / name,
            self.writer.set_evidence,
        )
        worker.start()
        with self._lock:
            self.cameras = {**self.cameras, name: worker}

    def _statuses(self) -> dict[str, dict[str, Any]]:
        now = time.time()
        return {name: worker.status(now) for name, worker in self.cameras.items()}

    def stop(self) -> None:
        """Graceful shutdown: every camera ends its open events and finishes its clips, and all is written
        (a cluster node then gives its leases back, so others take its cameras at once)."""
        self._stopping.set()
        if self.cluster is not None:
            self.cluster.stop()
        cameras = self.cameras
        self.ended_at_stop = sum(worker.state.open_events for worker in cameras.values())
        for worker in cameras.values():
            worker.stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for worker in cameras.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        self.writer.stop(max(1.0, deadline - time.monotonic()))
        if self.cluster is not None:
            try:
                self.cluster.leave()
            except Exception as exc:  # the database is away: the leases lapse instead
                log.warning("could not give the leases back (%s): they lapse in %g s", exc, self.cluster.config.lease_seconds)
        if self.listener is not None:
            self.listener.stop()
        if self.mqtt is not None:
            self.mqtt.close()

    def _count(self, change: EventChange) -> None:
        if change.kind == "start":
            with self._lock:
                self.events_by_rule[change.event.camera, change.event.rule] += 1

    def _retain(self) -> None:
        """Retention by age and size every `interval_minutes`, and at once whenever the disk is short of space."""
        retention = self.site.service.retention
        policy = RetentionPolicy(
            max_age_seconds=None if retention.max_age_days is None else retention.max_age_days * 86400,
            max_clip_bytes=None if retention.max_clip_gb is None else int(retention.max_clip_gb * 1e9),
            camera_ages={name: cam.retention_days * 86400 for name, cam in self.site.cameras.items() if cam.retention_days},
            min_free_bytes=None if retention.min_free_gb is None else int(retention.min_free_gb * 1e9),
        )
        due = time.monotonic() + retention.interval_minutes * 60
        while not self._stopping.wait(min(DISK_CHECK_S, retention.interval_minutes * 60)):
            try:
                if self.cluster is not None and not self.cluster.leader:  # one node keeps the shared evidence
                    continue
                if time.monotonic() < due and not self.store.retention.shortfall(policy.min_free_bytes):
                    continue
                due = time.monotonic() + retention.interval_minutes * 60
                deleted = self.store.retain(policy)
                purged = self.store.audit_purge(retention.audit_days * 86400)  # the audit log has its own age
            except Exception:  # the next round tries again; cameras go on either way
                log.exception("retention failed")
                continue
            if deleted:
                log.info("retention deleted %d evidence files", len(deleted))
            if purged:
                log.info("retention purged %d audit entries", purged)
