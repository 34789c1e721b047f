"""The live benchmark's picture: analysis rate per camera, RSS and CPU over time, event latency."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.bench.live.report import BenchResult


def plot(result: BenchResult, path: Path) -> None:
    """fps analysed per camera over time (load phase shaded), RSS and CPU over time, event latency histogram."""
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
        fps.plot(ts, [s.cameras.get(name, {}).get("fps_analysed", np.nan) for s in samples], label=name)
    fps.set_xlabel("seconds")
    fps.set_ylabel("fps analysed (10 s window)")
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
