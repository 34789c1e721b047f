"""`cctv bench-live`: the live service measured from outside, as an operator would see it.

A real `cctv serve` subprocess runs the site config on a fresh data dir. Phase 1 watches it: every camera's
detection rate, drops and lag from `/api/cameras`, event latency (first time an event is listed by
`GET /api/events` minus its start, which is the wall time of its first frame), CPU and RSS of the service
process. Phase 2 adds API load from a second process (asyncio + httpx clients listing events, getting one and
fetching clip ranges) while the cameras keep running, to see whether the API slows them down. Speed is
reported here, never asserted by tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from pipeline.errors import CctvError

EVENTS_POLL_S = 0.25
CAMERAS_POLL_S = 2.0
RATE_WINDOW_S = 10.0  # the service's fps window: earlier samples are still filling it
HEALTH_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
CLIP_RANGE = 64 * 1024
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    """One poll of `/api/cameras` and the service process, `t` seconds after phase 1 began."""

    t: float
    phase: str  # "watch" or "load"
    cameras: dict[str, dict[str, Any]]
    cpu_pct: float  # of one core; the service process and its children
    rss_mb: float
    queue_depth: float | None


@dataclass
class Watch:
    """What the watcher threads collect; the lists only grow, so reading them while they run is safe."""

    samples: list[Sample] = field(default_factory=list)
    first_seen: dict[str, float] = field(default_factory=dict)  # event id -> wall time first listed
    first_phase: dict[str, str] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest listing of each
    poll_errors: Counter[str] = field(default_factory=Counter)


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: dict[str, list[float]]  # endpoint -> per-request latency
    errors: dict[str, int]  # "endpoint: kind" -> count


def free_port() -> int:
    """A TCP port free on loopback now (for the service, and for servers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float] | np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


# --- the service process -------------------------------------------------------------------------------------


class ServiceProcess:
    """`cctv serve` as a subprocess with its output in a log file (a pipe could fill and stall it)."""

    def __init__(self, config: Path, data: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self._log = log.open("w", encoding="utf-8")
        cmd = [sys.executable, "-m", "pipeline.cli", "serve", "--config", str(config), "--data", str(data)]
        cmd += ["--port", str(port), "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, text=True)
        self.ps = psutil.Process(self.proc.pid)
        self._children: dict[int, psutil.Process] = {}
        self.ps.cpu_percent(None)
        self.returncode: int | None = None
        self.max_rss_mb: float | None = None  # the kernel's peak, known once it exited

    def tail(self, lines: int = 8) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"

    def check(self) -> None:
        """Raise with the output tail if the service has died."""
        if self.poll() is not None:
            raise CctvError(f"cctv serve exited with code {self.returncode}: {self.tail()}")

    def poll(self) -> int | None:
        """Reap the process with wait4 so its peak RSS (ru_maxrss) is known, not just our samples of it."""
        if self.returncode is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.returncode
                self.max_rss_mb = usage.ru_maxrss / 1024
        return self.returncode

    def wait_healthy(self, client: Any) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check()
            try:
                if client.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(0.3)
        raise CctvError(
            f"cctv serve did not answer {self.url}/api/health within {HEALTH_TIMEOUT_S:.0f} s: {self.tail()}"
        )

    def usage(self) -> tuple[float, float]:
        """(CPU % of one core since the last call, RSS MB), the process and its children together."""
        try:
            cpu, rss = self.ps.cpu_percent(None), self.ps.memory_info().rss
            kids = self.ps.children(recursive=True)
        except psutil.Error:
            return 0.0, 0.0
        for kid in kids:
            known = self._children.setdefault(kid.pid, kid)
            try:
                cpu += known.cpu_percent(None)
                rss += known.memory_info().rss
            except psutil.Error:
                continue
        return cpu, rss / 2**20

    def cpu_seconds(self) -> float:
        try:
            t = self.ps.cpu_times()
            return t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            return float("nan")

    def stop(self) -> tuple[int | None, float]:
        """SIGTERM and wait: (exit code, seconds to exit); killed after STOP_TIMEOUT_S."""
        started = time.monotonic()
        if self.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            while self.poll() is None and time.monotonic() - started < STOP_TIMEOUT_S:
                time.sleep(0.05)
            if self.poll() is None:
                self.proc.kill()
                while self.poll() is None:
                    time.sleep(0.05)
        self._log.close()
        return self.returncode, round(time.monotonic() - started, 2)


def create_token(config: Path, data: Path) -> str:
    from pipeline.serve import open_store, site_with_overrides

    service = site_with_overrides(config, data=str(data)).service
    with open_store(service) as store:
        return store.create_token("bench", "viewer")


def parse_metrics(text: str) -> dict[str, float]:
    """The unlabelled samples of a Prometheus text page that the benchmark needs, by name."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {
        "cctv_detector_inference_seconds_sum",
        "cctv_detector_inference_seconds_count",
        "cctv_detector_queue_depth",
    }
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in wanted and not s.labels:
                found[s.name] = s.value
    return found


# --- watching ------------------------------------------------------------------------------------------------


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
            response = client.get("/api/cameras")
            response.raise_for_status()
            cameras = {c["id"]: c for c in response.json()}
            metrics = client.get("/metrics")
            depth = parse_metrics(metrics.text).get("cctv_detector_queue_depth") if metrics.is_success else None
            cpu, rss = self.service.usage()
            self.data.samples.append(Sample(round(time.time() - self.t0, 2), phase, cameras, cpu, rss, depth))

        self._every(CAMERAS_POLL_S, poll)


# --- the load generator (a second process) -------------------------------------------------------------------


def _load_main(url: str, token: str, clients: int, seconds: float, out: str, seed: int) -> None:
    """Entry point of the load process; writes its LoadResult as JSON (a file survives any pickling trouble)."""
    result = asyncio.run(_load(url, token, clients, seconds, random.Random(seed)))
    Path(out).write_text(json.dumps(asdict(result)), encoding="utf-8")


async def _load(url: str, token: str, clients: int, seconds: float, rng: random.Random) -> LoadResult:
    import httpx

    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    events: dict[str, dict[str, Any]] = {}  # id -> event, refreshed from every list answer
    clip_sizes: dict[str, int] = {}
    cursors: list[str] = []
    cameras: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}

    def remember(page: dict[str, Any]) -> None:
        for event in page["items"]:
            events[event["id"]] = event
            if event["camera"] not in cameras:
                cameras.append(event["camera"])
        if page.get("next_cursor"):
            cursors.append(page["next_cursor"])
            del cursors[:-100]

    async def request(client: httpx.AsyncClient, endpoint: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.get(path, **kwargs)
        except httpx.HTTPError as exc:
            errors[f"{endpoint}: {type(exc).__name__}"] += 1
            return None
        latencies[endpoint].append((time.perf_counter() - started) * 1000)
        if not response.is_success:
            errors[f"{endpoint}: HTTP {response.status_code}"] += 1
            return None
        return response

    async def one(client: httpx.AsyncClient) -> None:
        choice = rng.random()
        with_clip = [e for e in events.values() if e.get("clip_url")]
        if choice < 0.2 or not events:
            page = await request(client, "list", "/api/events", params={"limit": rng.choice((10, 50, 100))})
        elif choice < 0.35:
            params = {"limit": 50, "camera": rng.choice(cameras)}
            page = await request(client, "list_camera", "/api/events", params=params)
        elif choice < 0.45 and cursors:
            page = await request(
                client, "list_cursor", "/api/events", params={"limit": 50, "cursor": rng.choice(cursors)}
            )
        elif choice < 0.6:
            event = rng.choice(list(events.values()))
            await request(client, "event", f"/api/events/{event['id']}")
            return
        else:
            if not with_clip:  # no clip finished yet
                await asyncio.sleep(0.05)
                return
            clip = rng.choice(with_clip)["clip_url"]
            size = clip_sizes.get(clip)
            first = rng.randrange(max(1, size - CLIP_RANGE)) if size else 0
            response = await request(
                client, "clip_range", clip, headers={"Range": f"bytes={first}-{first + CLIP_RANGE - 1}"}
            )
            if response is not None:
                if response.status_code != 206:
                    errors[f"clip_range: HTTP {response.status_code} (not 206)"] += 1
                total = response.headers.get("content-range", "").rpartition("/")[2]
                if total.isdigit():
                    clip_sizes[clip] = int(total)
            return
        if page is not None:
            remember(page.json())

    async def client_loop(client: httpx.AsyncClient, deadline: float) -> int:
        count = 0
        while time.monotonic() < deadline:
            await one(client)
            count += 1
        return count

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        first = await request(client, "list", "/api/events", params={"limit": 200})
        if first is not None:
            remember(first.json())
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(client_loop(client, deadline) for _ in range(clients)))
        elapsed = time.monotonic() - started
    requests = sum(len(v) for v in latencies.values()) + sum(
        n for k, n in errors.items() if not k.partition(": ")[2].startswith("HTTP")
    )
    return LoadResult(requests, round(elapsed, 2), dict(latencies), dict(errors))


def summarize_load(load: LoadResult) -> dict[str, Any]:
    every = [ms for values in load.latencies_ms.values() for ms in values]
    errors = sum(load.errors.values())
    return {
        "requests": load.requests,
        "seconds": load.seconds,
        "requests_per_s": round(load.requests / load.seconds, 1) if load.seconds else None,
        "latency_ms_p50": _pct(every, 50),
        "latency_ms_p95": _pct(every, 95),
        "latency_ms_max": round(max(every), 2) if every else None,
        "errors": errors,
        "errors_by_kind": load.errors,
        "endpoints": {
            name: {"requests": len(v), "p50_ms": _pct(v, 50), "p95_ms": _pct(v, 95), "max_ms": round(max(v), 2)}
            for name, v in sorted(load.latencies_ms.items())
            if v
        },
    }


# --- the benchmark -------------------------------------------------------------------------------------------


@dataclass
class BenchResult:
    report: dict[str, Any]
    samples: list[Sample]
    latencies: list[float]


def run_bench_live(
    config: Path, seconds: float, load_seconds: float, clients: int, out: Path, port: int | None = None
) -> BenchResult:
    """Start the service on a fresh data dir, watch it, load its API, stop it; writes bench-live.json."""
    import httpx
    from tqdm import tqdm

    if not config.is_file():
        raise CctvError(f"no config file {config}")
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    token = create_token(config, data)
    port = port or free_port()
    service = ServiceProcess(config.resolve(), data.resolve(), port, out / "service.log")
    load_proc = None
    watcher: Watcher | None = None
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            service.wait_healthy(client)
            t0 = time.time()
            metrics0 = parse_metrics(client.get(f"{service.url}/metrics").text)
            cpu0 = service.cpu_seconds()
            watcher = Watcher(service, token, t0)
            watcher.start()

            def wait(span: float, desc: str) -> None:
                end = time.monotonic() + span
                with tqdm(total=round(span), unit="s", desc=desc, file=sys.stderr, leave=False) as bar:
                    while (left := end - time.monotonic()) > 0:
                        time.sleep(min(1.0, left))
                        service.check()
                        bar.n = round(span - max(0.0, end - time.monotonic()))
                        bar.set_postfix(events=len(watcher.data.first_seen), refresh=False)
                        bar.refresh()

            wait(seconds, "watch")
            watch_end = time.time() - t0
            metrics1 = parse_metrics(client.get(f"{service.url}/metrics").text)
            load = None
            if load_seconds > 0:
                watcher.phase = "load"
                load_file = out / "load.json"
                load_file.unlink(missing_ok=True)
                args = (service.url, token, clients, load_seconds, str(load_file), 0)
                load_proc = get_context("spawn").Process(target=_load_main, args=args, name="bench-load")
                load_proc.start()
                wait(load_seconds, "load")
                load_proc.join(load_seconds + 60)
                if load_proc.exitcode != 0 or not load_file.is_file():
                    raise CctvError(f"the load generator failed (exit code {load_proc.exitcode})")
                load = LoadResult(**json.loads(load_file.read_text(encoding="utf-8")))
            total_end = time.time() - t0
            metrics2 = parse_metrics(client.get(f"{service.url}/metrics").text)
            cpu1 = service.cpu_seconds()
            watcher.stop()
            service.check()
        exit_code, stop_seconds = service.stop()
    except BaseException:
        if watcher is not None:
            watcher.stop()
        if load_proc is not None and load_proc.is_alive():
            load_proc.terminate()
        service.stop()
        raise
    report = _report(
        config, watcher.data, t0, watch_end, total_end, (metrics0, metrics1, metrics2), cpu1 - cpu0, service, load
    )
    report["clients"] = clients
    report["shutdown"] = {"exit_code": exit_code, "seconds": stop_seconds}
    (out / "bench-live.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    latencies = [e["latency_s"] for e in _latencies(watcher.data, t0)]
    return BenchResult(report, watcher.data.samples, latencies)


def _latencies(watch: Watch, t0: float) -> list[dict[str, Any]]:
    """Event latency for events that started after watching began (older ones were listed late by us, not it)."""
    rows = []
    for event_id, seen in watch.first_seen.items():
        event = watch.events[event_id]
        if event["start"] >= t0:
            rows.append({"id": event_id, "phase": watch.first_phase[event_id], "latency_s": seen - event["start"]})
    return rows


def _latency_stats(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_s": _pct(values, 50),
        "p95_s": _pct(values, 95),
        "max_s": round(max(values), 3) if values else None,
    }


def _inference(before: dict[str, float], after: dict[str, float]) -> float | None:
    count = after.get("cctv_detector_inference_seconds_count", 0) - before.get(
        "cctv_detector_inference_seconds_count", 0
    )
    total = after.get("cctv_detector_inference_seconds_sum", 0) - before.get("cctv_detector_inference_seconds_sum", 0)
    return round(total / count * 1000, 2) if count > 0 else None


def _report(
    config: Path,
    watch: Watch,
    t0: float,
    watch_end: float,
    total_end: float,
    metrics: tuple[dict[str, float], dict[str, float], dict[str, float]],
    cpu_seconds: float,
    service: ServiceProcess,
    load: LoadResult | None,
) -> dict[str, Any]:
    samples = watch.samples
    if not samples:
        raise CctvError("no camera samples were taken: the run was too short or /api/cameras failed")
    watching = [s for s in samples if s.phase == "watch"]
    loaded = [s for s in samples if s.phase == "load"]
    last = samples[-1].cameras
    settled = [s for s in watching if s.t >= RATE_WINDOW_S] or watching  # fps windows full

    def per_camera(name: str) -> dict[str, Any]:
        final = last[name]
        first = watching[0].cameras.get(name, final) if watching else final
        end = watching[-1].cameras.get(name, final) if watching else final
        span = (watching[-1].t - watching[0].t) if len(watching) > 1 else 0.0
        lag50 = [s.cameras[name]["lag_p50"] for s in watching if s.cameras[name]["lag_p50"] is not None]
        lag95 = [s.cameras[name]["lag_p95"] for s in watching if s.cameras[name]["lag_p95"] is not None]
        frames_in = final["frames_in"]
        row = {
            "status": final["status"],
            "fps_in_mean": _mean([s.cameras[name]["fps_in"] for s in settled]),
            "fps_detected_mean": _mean([s.cameras[name]["fps_detected"] for s in settled]),
            "fps_detected_min": min((s.cameras[name]["fps_detected"] for s in settled), default=None),
            "fps_detected_from_counts": round((end["frames_detected"] - first["frames_detected"]) / span, 3)
            if span
            else None,
            "frames_in": frames_in,
            "frames_detected": final["frames_detected"],
            "frames_dropped": final["frames_dropped"],
            "drop_pct": round(100 * final["frames_dropped"] / frames_in, 2) if frames_in else None,
            "lag_p50_s": None if final["lag_p50"] is None else round(final["lag_p50"], 3),
            "lag_p95_s": None if final["lag_p95"] is None else round(final["lag_p95"], 3),
            "lag_p50_samples_median_s": _pct(lag50, 50),
            "lag_p95_samples_p95_s": _pct(lag95, 95),
            "lag_p95_samples_max_s": round(max(lag95), 3) if lag95 else None,
            "events": final["events_started"],
            "connects": final["connects"],
        }
        if loaded:
            row["fps_detected_mean_load"] = _mean([s.cameras[name]["fps_detected"] for s in loaded])
            row["fps_detected_min_load"] = min(s.cameras[name]["fps_detected"] for s in loaded)
            row["frames_dropped_during_load"] = final["frames_dropped"] - end["frames_dropped"]
            lag95_load = [s.cameras[name]["lag_p95"] for s in loaded if s.cameras[name]["lag_p95"] is not None]
            row["lag_p95_samples_max_load_s"] = round(max(lag95_load), 3) if lag95_load else None
        return row

    latencies = _latencies(watch, t0)
    cpu = [s.cpu_pct for s in samples[1:]]  # the first reading covers the start-up
    depths = [s.queue_depth for s in samples if s.queue_depth is not None]
    rss_sampled = max(s.rss_mb for s in samples)
    report: dict[str, Any] = {
        "config": str(config),
        "seconds": round(watch_end, 1),
        "load_seconds": round(total_end - watch_end, 1),
        "cpu_cores": psutil.cpu_count(),
        "cameras": {name: per_camera(name) for name in last},
        "event_latency": _latency_stats([r["latency_s"] for r in latencies])
        | {
            "watch": _latency_stats([r["latency_s"] for r in latencies if r["phase"] == "watch"]),
            "load": _latency_stats([r["latency_s"] for r in latencies if r["phase"] == "load"]),
            "events_seen": len(watch.first_seen),
        },
        "process": {
            "cpu_mean_pct": round(100 * cpu_seconds / total_end, 1) if total_end else None,
            "cpu_mean_pct_sampled": _mean(cpu),
            "cpu_max_pct": round(max(cpu), 1) if cpu else None,
            "rss_peak_mb_sampled": round(rss_sampled, 1),
            "rss_peak_mb": round(max(rss_sampled, service.max_rss_mb or 0.0), 1),
            "rss_final_mb": round(samples[-1].rss_mb, 1),
        },
        "detector": {
            "inference_ms_mean": _inference(metrics[0], metrics[2]),
            "inference_ms_mean_watch": _inference(metrics[0], metrics[1]),
            "inference_ms_mean_load": _inference(metrics[1], metrics[2]),
            "inferences": int(
                metrics[2].get("cctv_detector_inference_seconds_count", 0)
                - metrics[0].get("cctv_detector_inference_seconds_count", 0)
            ),
            "queue_depth_mean": _mean(depths),
            "queue_depth_max": max(depths) if depths else None,
        },
        "poll_errors": dict(watch.poll_errors),
        "load": summarize_load(load) if load is not None else None,
    }
    return report


# --- output --------------------------------------------------------------------------------------------------


def format_table(report: dict[str, Any]) -> str:
    head = (
        f"{'camera':12} {'fps in':>6} {'fps det':>7} {'min':>5} {'in load':>7} {'frames':>7} {'dropped':>7} "
        f"{'drop %':>6} {'lag p50':>7} {'lag p95':>7} {'events':>6}"
    )
    lines = [head]

    def num(value: Any, width: int) -> str:
        return f"{'-' if value is None else value:>{width}}"

    for name, c in report["cameras"].items():
        lines.append(
            f"{name:12} {num(c['fps_in_mean'], 6)} {num(c['fps_detected_mean'], 7)} {num(c['fps_detected_min'], 5)} "
            f"{num(c.get('fps_detected_mean_load'), 7)} {c['frames_in']:>7} {c['frames_dropped']:>7} "
            f"{num(c['drop_pct'], 6)} {num(c['lag_p50_s'], 7)} {num(c['lag_p95_s'], 7)} {c['events']:>6}"
        )
    lat, proc, det = report["event_latency"], report["process"], report["detector"]
    lines.append(
        f"event latency: p50 {lat['p50_s']} s, p95 {lat['p95_s']} s, max {lat['max_s']} s over {lat['count']} events"
    )
    lines.append(
        f"service: CPU mean {proc['cpu_mean_pct']} % / max {proc['cpu_max_pct']} % (of one core, "
        f"{report['cpu_cores']} cores), peak RSS {proc['rss_peak_mb']} MB; detector {det['inference_ms_mean']} ms "
        f"per inference, queue depth mean {det['queue_depth_mean']}"
    )
    load = report["load"]
    if load:
        lines.append(
            f"API load ({report['clients']} clients, {load['seconds']} s): {load['requests']} requests = "
            f"{load['requests_per_s']} req/s, p50 {load['latency_ms_p50']} ms, p95 {load['latency_ms_p95']} ms, "
            f"max {load['latency_ms_max']} ms, errors {load['errors']} {load['errors_by_kind'] or ''}".rstrip()
        )
    stop = report["shutdown"]
    lines.append(f"shutdown: exit code {stop['exit_code']} after {stop['seconds']} s")
    return "\n".join(lines)


def plot(result: BenchResult, path: Path) -> None:
    """fps detected per camera over time (load phase shaded), RSS and CPU over time, event latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report, samples = result.report, result.samples
    ts = [s.t for s in samples]
    fig, (fps, usage, hist) = plt.subplots(1, 3, figsize=(17, 4.5))
    load_start, load_end = report["seconds"], report["seconds"] + report["load_seconds"]
    for axes in (fps, usage):
        if report["load_seconds"] > 0:
            axes.axvspan(load_start, load_end, color="orange", alpha=0.15, label="API load")
    for name in report["cameras"]:
        fps.plot(ts, [s.cameras.get(name, {}).get("fps_detected", np.nan) for s in samples], label=name)
    fps.set_xlabel("seconds")
    fps.set_ylabel("fps detected (10 s window)")
    fps.set_title("Detection rate per camera")
    fps.legend(fontsize=8)
    usage.plot(ts, [s.rss_mb for s in samples], color="tab:blue", label="RSS MB")
    usage.set_xlabel("seconds")
    usage.set_ylabel("RSS MB", color="tab:blue")
    cpu_axes = usage.twinx()
    cpu_axes.plot(ts, [s.cpu_pct for s in samples], color="tab:red", lw=0.8)
    cpu_axes.set_ylabel("CPU % (of one core)", color="tab:red")
    usage.set_title("Service process")
    if result.latencies:
        hist.hist(result.latencies, bins=30)
        p95 = report["event_latency"]["p95_s"]
        hist.axvline(p95, color="red", ls="--", lw=1, label=f"p95 {p95} s")
        hist.legend()
    hist.set_xlabel("seconds from event start to listed by GET /api/events")
    hist.set_ylabel("events")
    hist.set_title(f"Event latency ({len(result.latencies)} events)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
