"""Watching a running service: cameras and process usage every 2 s, the event list every 0.25 s."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.bench.live.process import ServiceProcess, parse_metrics

EVENTS_POLL_S = 0.25
CAMERAS_POLL_S = 2.0


@dataclass
class Sample:
    """One poll of `/api/cameras` and the service process, `t` seconds after phase 1 began."""

    t: float
    phase: str  # "watch" or "load"
    cameras: dict[str, dict[str, Any]]
    cpu_pct: float  # of one core; the service process and its children
    rss_mb: float
    queue_depth: float | None
    health_ms: float  # how long GET /api/health (no token) took


@dataclass
class Watch:
    """What the watcher threads collect; the lists only grow, so reading them while they run is safe."""

    samples: list[Sample] = field(default_factory=list)
    first_seen: dict[str, float] = field(default_factory=dict)  # event id -> wall time first listed
    first_phase: dict[str, str] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest listing of each
    poll_errors: Counter[str] = field(default_factory=Counter)


class Watcher:
    """Two threads: events every 0.25 s (first sighting of each id), cameras and process usage every 2 s."""

    def __init__(self, service: ServiceProcess, token: str, t0: float) -> None:
        self.service = service
        self.headers = {"Authorization": f"Bearer {token}"}
        self.t0 = t0
        self.phase = "watch"
        self.data = Watch()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._events, name="bench-events", daemon=True),
            threading.Thread(target=self._cameras, name="bench-cameras", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _every(self, period: float, poll: Any) -> None:
        import httpx

        with httpx.Client(base_url=self.service.url, headers=self.headers, timeout=10) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                try:
                    poll(client)
                except (httpx.HTTPError, ValueError) as exc:
                    self.data.poll_errors[type(exc).__name__] += 1
                next_at += period
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _events(self) -> None:
        def poll(client: Any) -> None:
            response = client.get("/api/events", params={"limit": 200})
            seen = time.time()
            response.raise_for_status()
            for event in response.json()["items"]:
                if event["id"] not in self.data.first_seen:
                    self.data.first_seen[event["id"]] = seen
                    self.data.first_phase[event["id"]] = self.phase
                self.data.events[event["id"]] = event

        self._every(EVENTS_POLL_S, poll)

    def _cameras(self) -> None:
        def poll(client: Any) -> None:
            phase = self.phase
            started = time.perf_counter()
            client.get("/api/health").raise_for_status()  # public: what a load balancer polls
            health_ms = (time.perf_counter() - started) * 1000
            response = client.get("/api/cameras")
            response.raise_for_status()
            cameras = {c["id"]: c for c in response.json()}
            metrics = client.get("/metrics")
            depth = parse_metrics(metrics.text).get("cctv_detector_queue_depth") if metrics.is_success else None
            cpu, rss = self.service.usage()
            self.data.samples.append(Sample(round(time.time() - self.t0, 2), phase, cameras, cpu, rss, depth, health_ms))

        self._every(CAMERAS_POLL_S, poll)
