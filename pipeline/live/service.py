"""The live service: every camera of a site config, one shared detector, the event store and its sinks.

Event changes flow camera thread -> EventBus -> sinks in order: the store first (so anything told
about an event can fetch it), then whatever subscribed (the API's live stream, MQTT), then the
camera's evidence recorder, whose finished files are recorded in the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from pipeline.config import SiteConfig
from pipeline.events import EventChange, Subscriber
from pipeline.evidence import EvidencePaths
from pipeline.live.camera import CameraWorker
from pipeline.live.detector import SharedDetector
from pipeline.live.metrics import ServiceMetrics
from pipeline.live.mqtt import MqttPublisher
from pipeline.store import EventStore
from pipeline.store.service import EVIDENCE_DIR

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0  # a camera finishing its clips at shutdown


class LiveService:
    def __init__(self, site: SiteConfig, store: EventStore) -> None:
        self.site = site
        self.store = store
        self.events_by_rule: Counter[tuple[str, str]] = Counter()
        self.metrics = ServiceMetrics()
        self.detector = SharedDetector(site.model, observe=self.metrics.inference.observe)
        self.sinks: list[Subscriber] = [store.apply, self._count]
        self.mqtt = MqttPublisher(site.service.mqtt) if site.service.mqtt is not None else None
        if self.mqtt is not None:
            self.sinks.append(self.mqtt)
        self.on_evidence: list[Callable[[str], None]] = []  # told the event id once its evidence is stored
        self._lock = threading.Lock()
        self.cameras = {
            name: CameraWorker(
                name,
                cam,
                site.service,
                self.detector,
                self.sinks,
                store.data_dir / EVIDENCE_DIR / name,
                self._evidence_done,
            )
            for name, cam in site.cameras.items()
        }
        self.metrics.attach(self)
        self._retention = threading.Thread(target=self._retain, name="retention", daemon=True)
        self._stopping = threading.Event()

    def subscribe(self, sink: Subscriber) -> None:
        """Add a sink for every camera's event changes; call before start()."""
        self.sinks.append(sink)

    def start(self) -> None:
        """Clean up after a killed run (open events ended, partial files deleted), then start the cameras."""
        self.store.end_interrupted(self.cameras)
        self.store.reconcile(grace_seconds=0)
        for worker in self.cameras.values():
            worker.start()
        self._retention.start()

    def stop(self) -> None:
        """Graceful shutdown: every camera ends its open events and finishes its clips."""
        self._stopping.set()
        for worker in self.cameras.values():
            worker.stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for worker in self.cameras.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        if self.mqtt is not None:
            self.mqtt.close()

    def _count(self, change: EventChange) -> None:
        if change.kind == "start":
            with self._lock:
                self.events_by_rule[change.event.camera, change.event.rule] += 1

    def _evidence_done(self, paths: EvidencePaths) -> None:
        root = self.store.data_dir
        self.store.set_evidence(
            paths.event_id,
            clip=str(paths.clip.relative_to(root)),
            snapshot=str(paths.snapshot.relative_to(root)),
            thumbnail=str(paths.thumbnail.relative_to(root)),
        )
        for listener in self.on_evidence:
            listener(paths.event_id)

    def _retain(self) -> None:
        retention = self.site.service.retention
        max_age = None if retention.max_age_days is None else retention.max_age_days * 86400
        max_bytes = None if retention.max_clip_gb is None else int(retention.max_clip_gb * 1e9)
        while not self._stopping.wait(retention.interval_minutes * 60):
            try:
                deleted = self.store.retain(max_age, max_bytes)
            except Exception:  # the next round tries again; cameras go on either way
                log.exception("retention failed")
                continue
            if deleted:
                log.info("retention deleted %d evidence files", len(deleted))
