"""The live benchmark's figures from what the watcher saw, and the table printed at the end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from pipeline.bench.live.load import LoadResult, summarize_load
from pipeline.bench.live.process import ServiceProcess
from pipeline.bench.live.stats import mean, pct
from pipeline.bench.live.watch import Sample, Watch
from pipeline.errors import CctvError

RATE_WINDOW_S = 10.0  # the service's fps window: earlier samples are still filling it


@dataclass
class BenchResult:
    report: dict[str, Any]
    samples: list[Sample]
    latencies: list[float]


def event_latencies(watch: Watch, t0: float) -> list[dict[str, Any]]:
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
        "p50_s": pct(values, 50),
        "p95_s": pct(values, 95),
        "max_s": round(max(values), 3) if values else None,
    }


def _inference(before: dict[str, float], after: dict[str, float]) -> float | None:
    count = after.get("cctv_detector_inference_seconds_count", 0) - before.get(
        "cctv_detector_inference_seconds_count", 0
    )
    total = after.get("cctv_detector_inference_seconds_sum", 0) - before.get("cctv_detector_inference_seconds_sum", 0)
    return round(total / count * 1000, 2) if count > 0 else None


def build_report(
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
            "fps_in_mean": mean([s.cameras[name]["fps_in"] for s in settled]),
            "fps_analysed_mean": mean([s.cameras[name]["fps_analysed"] for s in settled]),
            "fps_analysed_min": min((s.cameras[name]["fps_analysed"] for s in settled), default=None),
            "fps_analysed_from_counts": round((end["frames_analysed"] - first["frames_analysed"]) / span, 3)
            if span
            else None,
            "frames_in": frames_in,
            "frames_analysed": final["frames_analysed"],
            "frames_dropped": final["frames_dropped"],
            "drop_pct": round(100 * final["frames_dropped"] / frames_in, 2) if frames_in else None,
            "lag_p50_s": None if final["lag_p50"] is None else round(final["lag_p50"], 3),
            "lag_p95_s": None if final["lag_p95"] is None else round(final["lag_p95"], 3),
            "lag_p50_samples_median_s": pct(lag50, 50),
            "lag_p95_samples_p95_s": pct(lag95, 95),
            "lag_p95_samples_max_s": round(max(lag95), 3) if lag95 else None,
            "events": final["events_started"],
            "connects": final["connects"],
        }
        if loaded:
            row["fps_analysed_mean_load"] = mean([s.cameras[name]["fps_analysed"] for s in loaded])
            row["fps_analysed_min_load"] = min(s.cameras[name]["fps_analysed"] for s in loaded)
            row["frames_dropped_during_load"] = final["frames_dropped"] - end["frames_dropped"]
            lag95_load = [s.cameras[name]["lag_p95"] for s in loaded if s.cameras[name]["lag_p95"] is not None]
            row["lag_p95_samples_max_load_s"] = round(max(lag95_load), 3) if lag95_load else None
        return row

    latencies = event_latencies(watch, t0)
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
            "cpu_mean_pct_sampled": mean(cpu),
            "cpu_mean_pct_sampled_watch": mean([s.cpu_pct for s in watching[1:]]),
            "cpu_mean_pct_sampled_load": mean([s.cpu_pct for s in loaded]),
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
            "shared_inferences": int(
                metrics[2].get("cctv_detector_shared_inferences_total", 0)
                - metrics[0].get("cctv_detector_shared_inferences_total", 0)
            ),
            "queue_depth_mean": mean(depths),
            "queue_depth_max": max(depths) if depths else None,
        },
        "health_ms": {
            phase: {"p50": pct(ms, 50), "max": round(max(ms), 1) if ms else None}
            for phase, ms in (("watch", [s.health_ms for s in watching]), ("load", [s.health_ms for s in loaded]))
        },
        "poll_errors": dict(watch.poll_errors),
        "load": summarize_load(load) if load is not None else None,
    }
    return report


def format_table(report: dict[str, Any]) -> str:
    head = (
        f"{'camera':12} {'fps in':>6} {'fps ana':>7} {'min':>5} {'in load':>7} {'frames':>7} {'dropped':>7} "
        f"{'drop %':>6} {'lag p50':>7} {'lag p95':>7} {'events':>6}"
    )
    lines = [head]

    def num(value: Any, width: int) -> str:
        return f"{'-' if value is None else value:>{width}}"

    for name, c in report["cameras"].items():
        lines.append(
            f"{name:12} {num(c['fps_in_mean'], 6)} {num(c['fps_analysed_mean'], 7)} {num(c['fps_analysed_min'], 5)} "
            f"{num(c.get('fps_analysed_mean_load'), 7)} {c['frames_in']:>7} {c['frames_dropped']:>7} "
            f"{num(c['drop_pct'], 6)} {num(c['lag_p50_s'], 7)} {num(c['lag_p95_s'], 7)} {c['events']:>6}"
        )
    lat, proc, det = report["event_latency"], report["process"], report["detector"]
    lines.append(
        f"event latency: p50 {lat['p50_s']} s, p95 {lat['p95_s']} s, max {lat['max_s']} s over {lat['count']} events"
    )
    lines.append(
        f"service: CPU mean {proc['cpu_mean_pct']} % / max {proc['cpu_max_pct']} % (of one core, "
        f"{report['cpu_cores']} cores), peak RSS {proc['rss_peak_mb']} MB; detector {det['inference_ms_mean']} ms "
        f"per inference, {det['inferences']} inferences ({det['shared_inferences']} shared by cameras), queue depth "
        f"mean {det['queue_depth_mean']}"
    )
    health = report["health_ms"]
    lines.append(
        f"GET /api/health: p50 {health['watch']['p50']} ms / max {health['watch']['max']} ms while watching, "
        f"p50 {health['load']['p50']} ms / max {health['load']['max']} ms under load"
    )
    load = report["load"]
    if load and report.get("viewers"):
        tiles = ", ".join(f"{c} {n}" for c, n in (load["frames_per_s_per_tile"] or {}).items())
        lines.append(
            f"walls ({report['viewers']} viewers, {load['seconds']} s): frames/s per tile {tiles}; view.jpg p50 "
            f"{load['latency_ms_p50']} ms, p95 {load['latency_ms_p95']} ms, errors {load['errors']}; service CPU "
            f"{proc['cpu_mean_pct_sampled_watch']} % watching, {proc['cpu_mean_pct_sampled_load']} % with the walls"
        )
    elif load:
        who = "unauthenticated clients, every request refused" if report["unauthenticated"] else "clients"
        lines.append(
            f"API load ({report['clients']} {who}, {load['seconds']} s): {load['requests']} requests = "
            f"{load['requests_per_s']} req/s, p50 {load['latency_ms_p50']} ms, p95 {load['latency_ms_p95']} ms, "
            f"max {load['latency_ms_max']} ms, errors {load['errors']} {load['errors_by_kind'] or ''}".rstrip()
        )
    for camera, q in report.get("event_quality", {}).items():
        if not q["loops"]:
            lines.append(f"{camera}: events not scored ({q['error']})")
            continue
        o = q["overall"]
        rules = ", ".join(f"{rule} {s['f1']:.2f}" for rule, s in q["per_rule"].items())
        lines.append(
            f"{camera} live events vs truth over {q['loops']} loops: F1 {o['f1']:.3f} (TP {o['tp']}, FP {o['fp']}, "
            f"missed {o['fn']}), {o['alarms_per_event']:.2f} alarms per true event, "
            f"{q['zero_second_intrusions']} zero-length intrusions; {rules}"
        )
    stop = report["shutdown"]
    lines.append(f"shutdown: exit code {stop['exit_code']} after {stop['seconds']} s")
    return "\n".join(lines)
