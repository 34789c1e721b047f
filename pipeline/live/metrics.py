"""Prometheus metrics of the live service, read from the cameras' state when scraped."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.live.camera import CameraWorker
from pipeline.live.cluster import ClusterNode
from pipeline.live.detector import SharedDetector
from pipeline.live.writer import StoreWriter

_CAMERA_LABEL = re.compile(r'camera="([^"]*)"')
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)


class ServiceMetrics:
    """One registry per service (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.inference = Histogram(
            "cctv_detector_inference_seconds", "Seconds per detector inference", buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch(
        self,
        cameras: Callable[[], Mapping[str, CameraWorker]],
        detector: SharedDetector,
        events: Counter[tuple[str, str]],
        writer: StoreWriter,
        cluster: ClusterNode | None = None,
    ) -> None:
        """Read the cameras running here, the detector's queue, the events started by (camera, rule), the store's
        health and (a cluster node) its leases at every scrape."""
        self.registry.register(_ServiceCollector(cameras, detector, events, writer, cluster))

    def render(self, cameras: Collection[str] | None = None) -> bytes:
        """The text exposition; with `cameras`, series labelled with any other camera are left out."""
        text = generate_latest(self.registry)
        if cameras is None:
            return text
        lines = text.decode().splitlines(keepends=True)
        return "".join(line for line in lines if (m := _CAMERA_LABEL.search(line)) is None or m[1] in cameras).encode()


class _ServiceCollector(Collector):
    def __init__(
        self,
        cameras: Callable[[], Mapping[str, CameraWorker]],
        detector: SharedDetector,
        events: Counter[tuple[str, str]],
        writer: StoreWriter,
        cluster: ClusterNode | None,
    ) -> None:
        self.cameras, self.detector, self.events, self.writer = cameras, detector, events, writer
        self.cluster = cluster

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        up = GaugeMetricFamily("cctv_camera_up", "1 while the camera delivers frames", labels=["camera"])
        fps_in = GaugeMetricFamily("cctv_camera_fps_in", "Frames per second sampled from the source", labels=["camera"])
        fps_done = GaugeMetricFamily(
            "cctv_camera_fps_analysed", "Frames per second through detection, tracking and rules", labels=["camera"]
        )
        dropped = CounterMetricFamily(
            "cctv_camera_frames_dropped", "Sampled frames dropped because the pipeline was behind", labels=["camera"]
        )
        evidence_dropped = CounterMetricFamily(
            "cctv_camera_evidence_frames_dropped", "Sampled frames left out of evidence clips (encoder behind)",
            labels=["camera"],
        )
        lag = GaugeMetricFamily(
            "cctv_camera_detector_lag_seconds", "Frame time to detection, recent quantiles", labels=["camera", "quantile"]
        )
        connects = CounterMetricFamily("cctv_camera_connects", "Successful source connections", labels=["camera"])
        stalls = CounterMetricFamily(
            "cctv_camera_stalls", "Times the camera delivered no frame while connected", labels=["camera"]
        )
        jumps = CounterMetricFamily(
            "cctv_camera_time_jumps", "Timestamp discontinuities re-anchored (encoder restarts, wraps)", labels=["camera"]
        )
        selected = GaugeMetricFamily("cctv_camera_selected", "1 while the camera is on the operators' wall", labels=["camera"])
        selected_s = CounterMetricFamily(
            "cctv_camera_selected_seconds", "Seconds the camera spent on the operators' wall", labels=["camera"]
        )
        share = GaugeMetricFamily("cctv_camera_selection_share", "Share of its time on the wall", labels=["camera"])
        for name, worker in self.cameras().items():
            state = worker.state
            rate_in, rate_done = state.rates(now)
            up.add_metric([name], float(state.status == "live"))
            fps_in.add_metric([name], rate_in)
            fps_done.add_metric([name], rate_done)
            dropped.add_metric([name], state.frames_dropped)
            evidence_dropped.add_metric([name], state.evidence_dropped)
            connects.add_metric([name], state.connects)
            stalls.add_metric([name], state.stalls)
            jumps.add_metric([name], state.time_jumps)
            chosen = worker.selection.state(now)
            selected.add_metric([name], float(chosen.selected))
            selected_s.add_metric([name], worker.selection.selected_seconds)
            share.add_metric([name], chosen.share)
            for q in (0.5, 0.95):
                value = state.lag(q)
                if value is not None:
                    lag.add_metric([name, str(q)], value)
        yield from (up, fps_in, fps_done, dropped, evidence_dropped, lag, connects, stalls, jumps, selected, selected_s, share)
        queue = GaugeMetricFamily("cctv_detector_queue_depth", "Cameras with frames waiting for the detector's next round")
        queue.add_metric([], self.detector.waiting)
        yield queue
        shared = CounterMetricFamily(
            "cctv_detector_shared_inferences", "Inferences whose canvas held the regions of several cameras"
        )
        shared.add_metric([], self.detector.shared_inferences)
        rounds = CounterMetricFamily("cctv_detector_rounds", "Rounds of the shared detector (each serves the cameras waiting)")
        rounds.add_metric([], self.detector.rounds)
        yield from (shared, rounds)
        events = CounterMetricFamily("cctv_events", "Events started, by camera and rule", labels=["camera", "rule"])
        for (camera, rule), count in sorted(self.events.items()):
            events.add_metric([camera, rule], count)
        yield events
        health = self.writer.health()
        store_up = GaugeMetricFamily("cctv_store_up", "1 while the event store takes writes (0: they are spooled)")
        store_up.add_metric([], float(health.ok))
        spooled = GaugeMetricFamily("cctv_store_spooled_writes", "Writes waiting on disk for the event store")
        spooled.add_metric([], health.spooled)
        lost = CounterMetricFamily("cctv_store_writes_dropped", "Writes lost because the spool was full")
        lost.add_metric([], health.dropped)
        yield from (store_up, spooled, lost)
        if self.cluster is not None:
            yield from _cluster_metrics(self.cluster)


def _cluster_metrics(node: ClusterNode) -> Iterator[Metric]:
    view = node.view
    nodes = GaugeMetricFamily("cctv_cluster_nodes", "Live nodes of the cluster, as this node last saw it")
    nodes.add_metric([], len(view.live_nodes))
    held = GaugeMetricFamily("cctv_cluster_cameras", "Cameras run by each live node", labels=["node"])
    owners = Counter(owner.name for camera in node.cameras if (owner := view.owner(camera)) is not None)
    for name in sorted(view.live_nodes):
        held.add_metric([name], owners[name])
    unassigned = GaugeMetricFamily("cctv_cluster_cameras_unassigned", "Cameras no live node runs now")
    unassigned.add_metric([], len(node.cameras) - sum(owners.values()))
    oldest = GaugeMetricFamily(
        "cctv_cluster_lease_renewed_age_seconds", "Seconds since this node's least recently renewed lease"
    )
    ages = [view.at - lease.renewed_at for lease in view.leases.values() if lease.node == node.name]
    oldest.add_metric([], max(ages, default=0.0))
    yield from (nodes, held, unassigned, oldest)
    for field, text in (
        ("renewals", "Leases this node renewed"), ("claims", "Cameras this node took (start, failover, rebalance)"),
        ("given_back", "Cameras this node gave back in a rebalance"), ("lost", "Cameras taken from this node"),
        ("failed_rounds", "Lease rounds the database did not answer"),
    ):
        counter = CounterMetricFamily(f"cctv_cluster_{field}", text)
        counter.add_metric([], getattr(node.counts, field))
        yield counter
