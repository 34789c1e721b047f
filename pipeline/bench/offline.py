"""`cctv bench`: speed, memory and event agreement of the default pipeline against a naive one.

The naive baseline detects the full frame on every sampled frame (no motion gate, no region
packing). Each run gets its own process so peak RSS is that run's alone.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pipeline.eval.scoring import match_events

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CLIPS = {
    "pets09": CONFIGS / "pets09.yaml",
    "oxford": CONFIGS / "oxford-town-centre.yaml",
    "carriageway": CONFIGS / "dual-carriageway.yaml",
    "left-bag": CONFIGS / "left-bag.yaml",
}
NAIVE = {"motion": {"enabled": False}, "detect": {"pack_regions": False}}


def _run(config: Path, out: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    from pipeline.replay import replay

    result = replay(None, config, out_dir=out, progress=False, overrides=overrides)
    return {"summary": result.summary, "events": [e.to_dict() for e in result.events]}


def run_bench(clips: list[str], out_dir: Path) -> list[dict[str, Any]]:
    """Run every clip gated and naive, one process per run, and compare their events."""
    rows = []
    pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), max_tasks_per_child=1)
    with pool:
        for clip in clips:
            config = CLIPS[clip]
            gated = pool.submit(_run, config, str(out_dir / clip / "gated"), None).result()
            naive = pool.submit(_run, config, str(out_dir / clip / "naive"), NAIVE).result()
            match = match_events(gated["events"], naive["events"], tolerance=1.0)
            rows.append(
                {
                    "clip": clip,
                    "gated": gated["summary"],
                    "naive": naive["summary"],
                    "speedup": round(naive["summary"]["wall_seconds"] / gated["summary"]["wall_seconds"], 2),
                    "steady_speedup": round(
                        gated["summary"]["steady_realtime_factor"] / naive["summary"]["steady_realtime_factor"], 2
                    ),
                    "events_gated": len(gated["events"]),
                    "events_naive": len(naive["events"]),
                    "naive_events_lost_by_gate": match.overall.fn,
                    "events_only_gated": match.overall.fp,
                }
            )
    (out_dir / "bench.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    stages = ["decode", "motion", "detect", "track", "rules"]
    head = f"{'clip':12} {'mode':6} {'fps':>7} {'x real':>7} {'steady':>7} {'compile':>7} "
    head += " ".join(f"{s:>7}" for s in stages)
    head += f" {'RSS MB':>7} {'events':>6}"
    lines = [head + "   (stage columns: ms per processed frame)"]
    for row in rows:
        for mode in ("gated", "naive"):
            s = row[mode]
            ms = s["stage_ms_per_frame"]
            lines.append(
                f"{row['clip']:12} {mode:6} {s['fps']:>7} {s['realtime_factor']:>7} {s['steady_realtime_factor']:>7} "
                f"{s['compile_seconds']:>7} "
                + " ".join(f"{ms.get(st, 0.0):>7}" for st in stages)
                + f" {s['peak_rss_mb']:>7} {s['events']:>6}"
            )
        lines.append(
            f"{'':12} speed-up x{row['speedup']} (x{row['steady_speedup']} without compiling), naive events lost by "
            "the motion gate: "
            f"{row['naive_events_lost_by_gate']}, events only with the gate: {row['events_only_gated']}"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Times real time per clip, gated against naive, with per-stage ms stacked beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clips = [row["clip"] for row in rows]
    fig, (speed, stages) = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, mode in enumerate(("gated", "naive")):
        xs = [i + (k - 0.5) * 0.38 for i in range(len(rows))]
        speed.bar(xs, [row[mode]["realtime_factor"] for row in rows], 0.38, label=mode)
    speed.axhline(1.0, color="grey", lw=0.8, ls="--")
    speed.set_xticks(range(len(rows)), clips)
    speed.set_ylabel("× real time")
    speed.set_title("Replay speed")
    speed.legend()
    bottom = [0.0] * len(rows)
    for stage in ("decode", "motion", "detect", "track", "rules"):
        ms = [row["gated"]["stage_ms_per_frame"].get(stage, 0.0) for row in rows]
        stages.bar(clips, ms, bottom=bottom, label=stage)
        bottom = [b + m for b, m in zip(bottom, ms)]
    stages.set_ylabel("ms per processed frame (gated)")
    stages.set_title("Where the time goes")
    stages.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
