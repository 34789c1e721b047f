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
from collections.abc import Iterable

from pipeline.config import SiteConfig
from pipeline.events import EventChange
from pipeline.live.camera import CameraWorker
from pipeline.live.detector import SharedDetector
from pipeline.live.metrics import ServiceMetrics
from pipeline.live.mqtt import MqttPublisher
from pipeline.live.writer import StoreWriter
from pipeline.store import EVIDENCE_DIR, EventStore, RetentionPolicy

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0  # a camera finishing its clips at shutdown
DISK_CHECK_S = 5.0  # how often free space is checked: a 1 GB margin lasts minutes even at a busy site's write rate


class LiveSite:
    def __init__(self, site: SiteConfig, store: EventStore) -> None:
        self.site = site
        self.store = store
        self.events_by_rule: Counter[tuple[str, str]] = Counter()
        self.metrics = ServiceMetrics()
        self.detector = SharedDetector(site.model, observe=self.metrics.inference.observe)
        self.writer = StoreWriter(store)
        self.mqtt = MqttPublisher(site.service.mqtt) if site.service.mqtt is not None else None
        if self.mqtt is not None:
            store.subscribe(self.mqtt)
        self._lock = threading.Lock()
        self.cameras = {
            name: CameraWorker(
                name,
                cam,
                site.service,
                self.detector,
                [self.writer.apply, self._count],
                store.data_dir / EVIDENCE_DIR / name,
                self.writer.set_evidence,
            )
            for name, cam in site.cameras.items()
        }
        self.metrics.watch(self.cameras, self.detector, self.events_by_rule, self.writer)
        self._retention = threading.Thread(target=self._retain, name="retention", daemon=True)
        self._stopping = threading.Event()
        self.ended_at_stop = 0  # events open when stop() was called, which it ended

    def start(self) -> None:
        """Clean up after a killed run (open events ended, partial files deleted), then start the cameras."""
        if self.writer.flush_spool():
            self.store.end_interrupted(self.cameras)
            self.store.reconcile(grace_seconds=0)
        else:  # the spool names files no row does yet: they are not orphans
            log.warning("event store unavailable at start (%s): clean-up after a crash waits", self.writer.health().reason)
        self.writer.start()
        for worker in self.cameras.values():
            worker.start()
        self._retention.start()

    def stop(self) -> None:
        """Graceful shutdown: every camera ends its open events and finishes its clips, and all is written."""
        self._stopping.set()
        self.ended_at_stop = sum(worker.state.open_events for worker in self.cameras.values())
        for worker in self.cameras.values():
            worker.stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for worker in self.cameras.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        self.writer.stop(max(1.0, deadline - time.monotonic()))
        if self.mqtt is not None:
            self.mqtt.close()

    def selection_share(self, now: float, cameras: Iterable[str] | None = None) -> float:
        """Share of all camera-time (of `cameras`, default all) spent on the wall since the cameras started."""
        states = [self.cameras[name].selection.state(now) for name in (self.cameras if cameras is None else cameras)]
        return round(sum(s.share for s in states) / len(states), 4) if states else 0.0

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
