"""The live benchmark's phases in order: fresh data dir, service, watch, load, stop, report."""

from __future__ import annotations

import json
import shutil
import sys
import time
from multiprocessing import get_context
from pathlib import Path

from pipeline.bench.live.load import LoadResult, load_main
from pipeline.bench.live.process import ServiceProcess, create_token, free_port, parse_metrics
from pipeline.bench.live.quality import live_event_quality
from pipeline.bench.live.report import BenchResult, build_report, event_latencies
from pipeline.bench.live.watch import Watcher
from pipeline.errors import CctvError


def run_bench_live(
    config: Path,
    seconds: float,
    load_seconds: float,
    clients: int,
    out: Path,
    port: int | None = None,
    unauthenticated: bool = False,
    viewers: int = 0,
) -> BenchResult:
    """Start the service on a fresh data dir, watch it, load its API, stop it; writes bench-live.json.

    unauthenticated: the load's clients send no token (what anyone on the network can do); viewers: the load is
    that many operators' walls instead, each tile polling its camera's drawn frame at the sampled rate."""
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
    service = ServiceProcess(config.resolve(), port, out / "service.log", data=data.resolve())
    load_proc = None
    watcher: Watcher | None = None
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            service.wait_healthy()
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
                key = None if unauthenticated else token
                args = (service.url, key, clients, load_seconds, str(load_file), 0, viewers)
                load_proc = get_context("spawn").Process(target=load_main, args=args, name="bench-load")
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
    report = build_report(
        config, watcher.data, t0, watch_end, total_end, (metrics0, metrics1, metrics2), cpu1 - cpu0, service, load
    )
    report["clients"], report["unauthenticated"], report["viewers"] = clients, unauthenticated, viewers
    report["shutdown"] = {"exit_code": exit_code, "seconds": stop_seconds}
    report["event_quality"] = live_event_quality(config, data, (t0, t0 + watch_end))
    (out / "bench-live.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    latencies = [e["latency_s"] for e in event_latencies(watcher.data, t0)]
    return BenchResult(report, watcher.data.samples, latencies)
