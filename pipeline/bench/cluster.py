"""`cctv bench-cluster`: a city's control plane on one machine: many nodes, thousands of simulated cameras.

Simulated cameras (`sim://`, a PETS09 detection cache replayed in real time) run tracking, rules,
events, the shared store, leases and the event stream as real ones do, with no decoding or inference,
so one machine can hold the site. Phases: start every node at once and wait until each camera has
a node; watch a steady window (events stored, lease renewals, the stream's fan-out and delivery
latency on one node, PostgreSQL's CPU); SIGKILL several nodes at once and time until each of their
cameras is held by a live node again, then check that no event was lost or left open.
"""

from __future__ import annotations

import json
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from sqlalchemy import create_engine, func, select

from pipeline.bench.live.process import ServiceProcess, create_token, follow_events, free_port
from pipeline.bench.machine import cpu_description
from pipeline.bench.postgres import PgCluster
from pipeline.errors import CctvError
from pipeline.store.models import EventRow, LeaseRow

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "sample_videos" / "pets09-s2l1.avi"
CONFIG = ROOT / "configs" / "pets09.yaml"
CONNECTIONS_PER_NODE = 16  # a node's pool (5 + 10 overflow) and its listener
FAILOVER_WAIT_S = 120.0
SETTLE_S = 15  # seconds a real-camera run settles before it is measured


@dataclass
class StreamLog:
    """What one console's event stream received: (receive time, kind, event)."""

    messages: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def detection_cache(out: Path) -> Path:
    """PETS09's detections, cached by one `cctv replay --cache` (reused when there)."""
    cache = out / "cache"
    found = sorted(cache.glob("*.npz")) if cache.is_dir() else []
    if not found:
        cmd = [sys.executable, "-m", "pipeline.cli", "replay", str(CLIP), "--config", str(CONFIG), "--out",
               str(out / "replay"), "--cache", str(cache)]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        found = sorted(cache.glob("*.npz")) if cache.is_dir() else []
        if done.returncode or not found:
            raise CctvError(f"could not cache PETS09's detections: {done.stderr.strip()[-300:]}")
    return found[0]


def site_config(out: Path, database: str, cameras: int, fps: float, cache: Path) -> Path:
    """`cameras` simulated copies of the PETS09 camera (its zones, lines and rules), one shared data dir."""
    pets = yaml.safe_load(CONFIG.read_text())["cameras"]["pets"]
    pets.update(source=f"sim://{cache.resolve()}", detect={"fps": fps})
    site = {
        "model": {"path": str(ROOT / "models" / "yolo11n_int8_openvino_model")},
        "service": {"data": str((out / "data").resolve()), "database": database, "retention": {"min_free_gb": None}},
        "cameras": {f"cam{i:04d}": pets for i in range(cameras)},
    }
    path = out / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run_bench_cluster(
    cameras: int, nodes: int, kill: int, fps: float, seconds: float, out: Path, database: str | None = None
) -> dict[str, Any]:
    """Every phase in order; returns the report (also written to bench-cluster.json)."""
    from tqdm import tqdm

    if not 1 <= kill < nodes:
        raise CctvError(f"--kill {kill} must leave a node of the {nodes}: 1 to {nodes - 1}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "data", ignore_errors=True)
    cache = detection_cache(out)
    pg = None if database else PgCluster(max_connections=nodes * CONNECTIONS_PER_NODE + 50)
    procs: dict[str, ServiceProcess] = {}
    stream = StreamLog()
    try:
        url = database or pg.create_database("bench")  # type: ignore[union-attr]
        config = site_config(out, url, cameras, fps, cache)
        admin = create_token(config, out / "data", role="admin")
        engine = create_engine(url)
        report: dict[str, Any] = {"cpu": cpu_description(), "cameras": cameras, "nodes": nodes, "fps": fps,
                                  "killed": kill, "external_database": database is not None}
        began = time.time()
        for i in range(nodes):
            name = f"n{i:02d}"
            procs[name] = ServiceProcess(config, free_port(), out / f"{name}.log", args=["--node", name])
        for proc in tqdm(procs.values(), desc="nodes up", file=sys.stderr, leave=False):
            proc.wait_healthy(300)
        report["nodes_up_s"] = round(time.time() - began, 1)

        def held(exclude: frozenset[str] = frozenset()) -> int:
            """Cameras whose lease is live, held by none of `exclude`."""
            query = select(func.count()).select_from(LeaseRow).where(LeaseRow.expires_at > time.time())
            if exclude:
                query = query.where(LeaseRow.node.not_in(list(exclude)))
            with engine.connect() as c:
                return int(c.execute(query).scalar_one())

        with tqdm(total=cameras, desc="cameras held", file=sys.stderr, leave=False) as bar:
            while (n := held()) < cameras:
                bar.n = n
                bar.refresh()
                if time.time() - began > 600:
                    raise CctvError(f"only {n} of {cameras} cameras held after 10 min")
                time.sleep(1)
        report["all_cameras_held_s"] = round(time.time() - began, 1)

        observer = procs["n00"]
        def received(kind: str, event: dict[str, Any]) -> None:
            stream.messages.append((time.time(), kind, event))

        threading.Thread(target=follow_events, args=(observer.url, admin, received, stream.stop), daemon=True).start()
        client = httpx.Client(headers={"Authorization": f"Bearer {admin}"}, timeout=10)

        def counts_of(proc: ServiceProcess) -> dict[str, int] | None:
            try:
                return client.get(f"{proc.url}/api/cluster").json()["counts"]
            except httpx.HTTPError:  # too busy to answer in time: left out, and counted
                return None

        def sample() -> dict[str, Any]:
            answers = [counts_of(p) for p in procs.values() if p.poll() is None]
            counts = [c for c in answers if c is not None]
            with engine.connect() as c:
                stored = int(c.execute(select(func.count()).select_from(EventRow)).scalar_one())
            pg_pids = pg.pids() if pg is not None else []
            return {"t": time.time(), "events": stored, "renewals": sum(c["renewals"] for c in counts),
                    "silent": len(answers) - len(counts),
                    "pg_cpu": _cpu(pg_pids), "nodes_cpu": sum(p.cpu_seconds() for p in procs.values() if p.poll() is None),
                    "messages": len(stream.messages)}

        time.sleep(5)  # the stream connected, the first events flowing
        first = sample()
        end = time.monotonic() + seconds
        with tqdm(total=round(seconds), unit="s", desc="steady", file=sys.stderr, leave=False) as bar:
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(1.0, left))
                bar.n = round(seconds - max(0.0, end - time.monotonic()))
                bar.refresh()
        last = sample()
        span = last["t"] - first["t"]
        window = [m for m in stream.messages if first["t"] <= m[0] <= last["t"]]
        owners = {lease["camera"]: lease["node"] for lease in client.get(f"{observer.url}/api/cluster").json()["cameras"]}
        starts = [(recv - float(e["start"]), owners.get(e["camera"]) == "n00") for recv, kind, e in window if kind == "start"]
        remote = sorted(lat for lat, own in starts if not own)
        report["stream_latencies_s"] = [round(lat, 4) for lat in remote]  # for the plot
        report["steady"] = {
            "seconds": round(span, 1),
            "events_started_per_s": round((last["events"] - first["events"]) / span, 1),
            "stream_messages_per_s": round(len(window) / span, 1),
            "lease_renewals_per_s": round((last["renewals"] - first["renewals"]) / span, 1),
            "postgres_cpu_percent": round(100 * (last["pg_cpu"] - first["pg_cpu"]) / span, 1) if pg else None,
            "nodes_cpu_percent": round(100 * (last["nodes_cpu"] - first["nodes_cpu"]) / span, 1),
            "stream_latency_p50_s": round(statistics.median(remote), 3) if remote else None,
            "stream_latency_p95_s": round(remote[int(0.95 * (len(remote) - 1))], 3) if remote else None,
            "stream_starts_from_other_nodes": len(remote),
            "nodes_silent_at_a_sample": first["silent"] + last["silent"],
        }

        victims = [f"n{i:02d}" for i in range(1, kill + 1)]
        with engine.connect() as c:
            rows = c.execute(select(LeaseRow.camera, LeaseRow.node)).all()
        their = {camera for camera, node in rows if node in victims}
        for name in victims:
            procs[name].proc.send_signal(signal.SIGKILL)
        killed = time.time()
        timeline = []
        while True:
            n = held(frozenset(victims))
            timeline.append((round(time.time() - killed, 2), cameras - n))
            if n == cameras or time.time() - killed > FAILOVER_WAIT_S:  # reported either way
                break
            time.sleep(0.25)
        failover = time.time() - killed
        while True:  # the takers end what the dead nodes left open
            with engine.connect() as c:
                events = c.execute(select(EventRow.id, EventRow.camera, EventRow.start, EventRow.end)).all()
            before = [e for e in events if e.camera in their and e.start < killed]
            if all(e.end is not None for e in before) or time.time() - killed > failover + 60:
                break
            time.sleep(0.5)
        ended = time.time() - killed
        numbers: dict[str, list[int]] = defaultdict(list)
        for e in events:
            run, number = e.id.rsplit("-", 1)
            numbers[run].append(int(number))
        gaps = sum(1 for seen in numbers.values() if sorted(seen) != list(range(1, len(seen) + 1)))
        report["failover"] = {
            "killed_nodes": victims, "their_cameras": len(their), "seconds": round(failover, 2),
            "recovered": timeline[-1][1] == 0,
            "their_open_events_ended_s": round(ended, 2),
            "unassigned_over_time": timeline, "their_events_before_kill": len(before),
            "left_open": sum(e.end is None for e in before), "runs_with_missing_events": gaps,
            "events_stored": len(events), "duplicate_ids": len(events) - len({e.id for e in events}),
        }
        per_node = Counter(node for _camera, node in rows)
        report["cameras_per_node"] = {"min": min(per_node.values()), "max": max(per_node.values())}
        engine.dispose()
        client.close()
    finally:
        stream.stop.set()
        for proc in procs.values():
            if proc.poll() is None:
                proc.proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.stop()
        if pg is not None:
            pg.remove()
    report["stopped_cleanly"] = all(p.returncode == 0 for name, p in procs.items() if name not in victims)
    (out / "bench-cluster.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def run_real_split(config: Path, seconds: float, out: Path) -> dict[str, Any]:
    """The site's real cameras on one node, then on two (one after the other, a fresh PostgreSQL each): cameras
    per node and each camera's analysed fps over the last `seconds`, as every node's API shows them."""
    from tqdm import tqdm

    site = yaml.safe_load(config.read_text())
    report: dict[str, Any] = {"cpu": cpu_description(), "config": str(config), "seconds": seconds, "runs": {}}
    for count in (1, 2):
        run_dir = out / f"real-{count}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        pg = PgCluster()
        procs: list[ServiceProcess] = []
        try:
            site["service"].update(data=str((run_dir / "data").resolve()), database=pg.create_database("real"))
            run_config = run_dir / "site.yaml"
            run_config.write_text(yaml.safe_dump(site))
            token = create_token(run_config, run_dir / "data")
            procs = [ServiceProcess(run_config.resolve(), free_port(), run_dir / f"n{i}.log", args=["--node", f"n{i}"])
                     for i in range(count)]
            for proc in procs:
                proc.wait_healthy(120)
            with tqdm(total=round(seconds + SETTLE_S), unit="s", desc=f"{count} node(s)", file=sys.stderr,
                      leave=False) as bar:
                for second in range(round(seconds + SETTLE_S)):  # settled, then the window the figures cover
                    if second == SETTLE_S:
                        cpu0 = sum(p.cpu_seconds() for p in procs)
                    time.sleep(1)
                    bar.update()
            cpu = sum(p.cpu_seconds() for p in procs) - cpu0
            headers = {"Authorization": f"Bearer {token}"}
            cameras = httpx.get(f"{procs[-1].url}/api/cameras", headers=headers, timeout=30).json()
            report["runs"][str(count)] = {
                "cameras_per_node": dict(Counter(str(c["node"]) for c in cameras)),
                "cameras": {c["id"]: {"node": c["node"], "fps_analysed": c["fps_analysed"], "fps_in": c["fps_in"],
                                      "status": c["status"]} for c in cameras},
                "cpu_percent": round(100 * cpu / seconds, 1),
            }
        finally:
            for proc in procs:
                proc.stop()
            pg.remove()
    (out / "bench-cluster-real.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_real(report: dict[str, Any]) -> str:
    lines = [f"CPU: {report['cpu']}"]
    for count, run in report["runs"].items():
        fps = ", ".join(f"{name} {c['fps_analysed']:.2f} of {c['fps_in']:.2f} on {c['node']}"
                        for name, c in sorted(run["cameras"].items()))
        lines.append(f"{count} node(s): cameras per node {run['cameras_per_node']}; fps analysed: {fps}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Cameras without a node after the kill, over time; the stream's delivery latency, as a histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    failover = report["failover"]
    fig, (down, latency) = plt.subplots(1, 2, figsize=(12, 4.2))
    seconds, unassigned = zip(*failover["unassigned_over_time"])
    down.step(seconds, unassigned, where="post")
    down.set_xlabel("seconds after the SIGKILL")
    down.set_ylabel("cameras without a live node")
    down.set_title(f"{len(failover['killed_nodes'])} of {report['nodes']} nodes killed at once "
                   f"({failover['their_cameras']} cameras)")
    if report["stream_latencies_s"]:
        latency.hist(report["stream_latencies_s"], bins=40)
    latency.set_xlabel("seconds from the event to a console on another node")
    latency.set_ylabel("events started")
    latency.set_title(f"Event stream latency, p95 {report['steady']['stream_latency_p95_s']} s")
    fig.suptitle(f"{report['cameras']} simulated cameras at {report['fps']:g} fps, {report['nodes']} nodes: {report['cpu']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_report(report: dict[str, Any]) -> str:
    steady, failover = report["steady"], report["failover"]
    lines = [
        f"CPU: {report['cpu']}",
        f"{report['cameras']} simulated cameras at {report['fps']:g} fps over {report['nodes']} nodes "
        f"(cameras per node {report['cameras_per_node']['min']}-{report['cameras_per_node']['max']}); "
        f"nodes up in {report['nodes_up_s']} s, every camera held after {report['all_cameras_held_s']} s",
        f"steady {steady['seconds']} s: {steady['events_started_per_s']} events started/s, "
        f"{steady['stream_messages_per_s']} stream messages/s on one node, "
        f"{steady['lease_renewals_per_s']} lease renewals/s",
        f"  stream latency (event time to a console on another node) p50 {steady['stream_latency_p50_s']} s, "
        f"p95 {steady['stream_latency_p95_s']} s over {steady['stream_starts_from_other_nodes']} starts",
        f"  CPU: PostgreSQL {steady['postgres_cpu_percent']} %, all nodes {steady['nodes_cpu_percent']} % (of one core)",
        f"failover: {len(failover['killed_nodes'])} nodes SIGKILLed with {failover['their_cameras']} cameras: "
        + (f"all held again after {failover['seconds']} s" if failover["recovered"] else
           f"{failover['unassigned_over_time'][-1][1]} still without a node after {failover['seconds']} s")
        + f"; their {failover['their_events_before_kill']} events begun before "
        f"ended by {failover['their_open_events_ended_s']} s ({failover['left_open']} left open); "
        f"runs with missing events {failover['runs_with_missing_events']}, "
        f"duplicate ids {failover['duplicate_ids']}",
    ]
    return "\n".join(lines)
