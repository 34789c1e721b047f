"""`cctv bench-rates`: event and track quality when a camera is analysed at fewer frames per second.

A loaded live service analyses only some of a camera's sampled frames, at an irregular rate. This
replays one camera (the real pipeline: motion gate, packing, tracker, rules) at each `detect.fps`
and with a seeded random share of the sampled frames dropped, and scores every run against ground
truth derived from MOTChallenge annotation by the camera's own rules (`cctv truth-from-mot`):
event F1 per rule, alarms per true event, zero-length intrusions, and MOTA / IDF1 / HOTA of the
tracks on the frames that were analysed.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.bench.machine import cpu_description
from pipeline.config import load_config
from pipeline.errors import CctvError
from pipeline.eval.mot import evaluate_mot
from pipeline.eval.scoring import match_events
from pipeline.eval.truth import events_from_mot
from pipeline.formats import read_tracks
from pipeline.sources import open_source


@dataclass(frozen=True, slots=True)
class Scheme:
    """How the frames are chosen: sampled at `fps`, then a seeded `drop` share left out at random."""

    name: str
    fps: float
    drop: float = 0.0
    seed: int = 0


def schemes(rates: list[float], drop: float, drop_at: list[float], seeds: int) -> list[Scheme]:
    """Each rate as sampled, then each of `drop_at` with `drop` of its frames left out, per seed."""
    out = [Scheme(f"{rate:g} fps", rate) for rate in rates]
    if drop > 0:
        out += [Scheme(f"{fps:g} fps -{drop:.0%}", fps, drop, seed) for fps in drop_at for seed in range(seeds)]
    return out


def _run(config: Path, camera: str | None, scheme: Scheme, truth: list[dict[str, Any]], gt: Path, out: Path) -> dict[str, Any]:
    from pipeline.replay import replay

    overrides = {"detect": {"fps": scheme.fps}}
    result = replay(None, config, camera, out, progress=False, overrides=overrides, drop=scheme.drop, seed=scheme.seed)
    events = [e.to_dict() for e in result.events]
    match = match_events(events, truth, tolerance=2.0)
    mot = evaluate_mot(gt, read_tracks(out / "tracks.txt"), frames=result.frames)
    analysed = len(result.frames)
    media = result.summary["media_seconds"]
    return {
        **asdict(scheme),
        "analysed_fps": round(analysed / media, 2) if media else None,
        "events": len(events),
        "zero_second_intrusions": sum(e["type"] == "intrusion" and e["end"] == e["start"] for e in events),
        "overall": match.overall.to_dict(),
        "per_rule": {rule: score.to_dict() for rule, score in match.per_rule.items()},
        "mota": round(mot.mota, 4),
        "idf1": round(mot.idf1, 4),
        "hota": None if mot.hota is None else round(mot.hota, 4),
        "id_switches": mot.id_switches,
    }


def run_bench_rates(
    config: Path, gt: Path, camera: str | None, rates: list[float], drop: float, drop_at: list[float], seeds: int,
    out: Path,
) -> dict[str, Any]:
    """Every scheme replayed and scored; writes bench-rates.json."""
    if not gt.is_file():
        raise CctvError(f"{gt}: MOT ground truth not found")
    name, cam = load_config(config).camera(camera)
    if any(rate <= 0 for rate in [*rates, *drop_at]):
        raise CctvError(f"rates must be positive, not {[*rates, *drop_at]}")
    if not 0 <= drop < 1 or seeds < 1:
        raise CctvError(f"--drop must be in [0, 1) and --seeds at least 1, not {drop} and {seeds}")
    with open_source(cam.source, fps=None) as src:
        source_fps = src.fps
    truth = events_from_mot(gt, cam, name, source_fps)
    plan = schemes(rates, drop, drop_at, seeds)
    runs = []
    for k, scheme in enumerate(tqdm(plan, desc="bench-rates", unit="run", leave=False)):
        runs.append(_run(config, camera, scheme, truth, gt, out / f"run-{k}"))
    report = {"cpu": cpu_description(), "config": str(config), "camera": name, "true_events": len(truth), "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-rates.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per scheme name: the mean over its seeds, and the worst seed's F1."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for run in report["runs"]:
        rows.setdefault(run["name"], []).append(run)
    out = []
    for name, runs in rows.items():
        f1s = [r["overall"]["f1"] for r in runs]
        out.append({
            "scheme": name,
            "seeds": len(runs),
            "analysed_fps": statistics.mean(r["analysed_fps"] for r in runs),
            "f1": statistics.mean(f1s),
            "f1_worst": min(f1s),
            "alarms_per_event": statistics.mean(r["overall"]["alarms_per_event"] for r in runs),
            "alarms_per_event_worst": max(r["overall"]["alarms_per_event"] for r in runs),
            "zero_second_intrusions": statistics.mean(r["zero_second_intrusions"] for r in runs),
            "idf1": statistics.mean(r["idf1"] for r in runs),
            "mota": statistics.mean(r["mota"] for r in runs),
            "hota": statistics.mean(r["hota"] for r in runs if r["hota"] is not None) if runs[0]["hota"] is not None else None,
            "per_rule_f1": {rule: statistics.mean(r["per_rule"][rule]["f1"] for r in runs) for rule in runs[0]["per_rule"]},
        })
    return out


def format_rates_table(report: dict[str, Any]) -> str:
    rows = summary_rows(report)
    rules = list(rows[0]["per_rule_f1"]) if rows else []
    head = f"{'scheme':16} {'analysed':>8} {'F1':>6} {'worst':>6} {'alarms/true':>11} {'0 s intr':>8} {'IDF1':>6} {'MOTA':>6} {'HOTA':>6}"
    lines = [f"CPU: {report['cpu']}", f"{report['camera']}: {report['true_events']} true events", head + "  " + " ".join(f"{r[:14]:>14}" for r in rules)]
    for row in rows:
        hota = "-" if row["hota"] is None else f"{100 * row['hota']:.1f}"
        lines.append(
            f"{row['scheme']:16} {row['analysed_fps']:>8.2f} {row['f1']:>6.3f} {row['f1_worst']:>6.3f} "
            f"{row['alarms_per_event']:>5.2f} ({row['alarms_per_event_worst']:.2f}) {row['zero_second_intrusions']:>8.1f} "
            f"{100 * row['idf1']:>6.1f} {100 * row['mota']:>6.1f} {hota:>6}  "
            + " ".join(f"{row['per_rule_f1'][r]:>14.3f}" for r in rules)
        )
    return "\n".join(lines)


def plot_rates(report: dict[str, Any], path: Path) -> None:
    """Event F1 per rule and IDF1 against the analysed frame rate; alarms per true event beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary_rows(report)
    x = [row["analysed_fps"] for row in rows]
    fig, (quality, alarms) = plt.subplots(1, 2, figsize=(12, 4.5))
    quality.plot(x, [row["f1"] for row in rows], "o-", lw=2, label="event F1 (all rules)")
    for rule in rows[0]["per_rule_f1"]:
        quality.plot(x, [row["per_rule_f1"][rule] for row in rows], ".--", alpha=0.6, label=rule)
    quality.plot(x, [row["idf1"] for row in rows], "s-", label="IDF1")
    for xi, row in zip(x, rows):
        quality.annotate(row["scheme"], (xi, row["f1"]), fontsize=7, xytext=(2, 4), textcoords="offset points")
    quality.axhline(0.9, color="grey", ls=":", lw=0.8)
    quality.set_xlabel("frames analysed per second")
    quality.set_ylim(0, 1.02)
    quality.set_title(f"{report['camera']}: quality by analysed rate")
    quality.legend(fontsize=7)
    alarms.bar(range(len(rows)), [row["alarms_per_event"] for row in rows])
    alarms.axhline(1.0, color="grey", ls="--", lw=0.8)
    alarms.axhline(1.1, color="red", ls=":", lw=0.8)
    alarms.set_xticks(range(len(rows)), [row["scheme"] for row in rows], rotation=30, fontsize=8)
    alarms.set_ylabel("alarms per true event")
    alarms.set_title("One alarm per real event")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
