"""`cctv eval-clips`: a behaviour rule judged clip by clip against clip-level labels.

The labelled clips (`sample_videos/events/labels.csv`, plus the project's own labels for sample
footage in `configs/clip-labels.csv`) say per clip whether an event of a type happens and when.
Every clip of the event type is replayed through the config's camera (the clip replaces its
source); a positive clip is detected when an alarm of that type starts within its labelled span,
give or take `tolerance`; every other alarm of that type is a false alarm. The rest of the sample
footage, and the labelled clips of other event types, are negatives: any alarm there is false.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.config import RULE_TYPES, load_config
from pipeline.errors import CctvError

EVENT_RULES = {"abandoned": "abandoned_object", "fall": "fall", "fire": "fire", "fight": "fight"}  # label -> rule type
NEGATIVE_FOOTAGE = (  # sample footage with no fall, fight, fire or left object unless a label says so
    "pets09-s2l1.avi",
    "oxford-town-centre.mp4",
    "dual-carriageway-cars.mp4",
    "shopping-street-crowd.mp4",
    "ir-night-yard.mp4",
    "aboda-video4-left-bag.avi",
    "synthetic-crowd.mp4",
    "synthetic-intrusion.mp4",
    "synthetic-fight.mp4",
    "synthetic-suspicious.mp4",
)


@dataclass(frozen=True, slots=True)
class Clip:
    path: Path
    event: str | None  # the labelled event type; None for plain footage
    positive: bool  # for the event under evaluation
    start: float | None
    end: float | None
    config: Path | None = None  # a config of its own for this clip's event (e.g. a shorter wait for a short clip)


@dataclass
class ClipResult:
    clip: str
    positive: bool
    span: tuple[float, float] | None
    alarms: list[float]  # start times of this event type's alarms
    detected: bool
    false_alarms: int
    frames: int
    config: str  # the config it was replayed with


def read_labels(path: Path, root: Path) -> list[Clip]:
    """Rows of a labels CSV (file, event, positive, start_s, end_s), paths relative to `root`."""
    if not path.is_file():
        raise CctvError(f"{path}: labels file not found (run `cctv assets`)")
    clips = []
    with path.open(newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.DictReader(f), 2):
            try:
                positive = row["positive"].strip() == "1"
                start = float(row["start_s"]) if positive else None
                end = float(row["end_s"]) if positive else None
                own = (row.get("config") or "").strip()
                clips.append(Clip(root / row["file"], row["event"].strip(), positive, start, end, Path(own) if own else None))
            except (KeyError, ValueError) as exc:
                raise CctvError(f"{path}:{number}: expected file,event,positive,start_s,end_s ({exc})") from None
    return clips


def clip_set(event: str, labels: Path, extra: Path | None, footage: Path) -> list[Clip]:
    """Positives and negatives for `event`: its labelled clips, the other labelled clips, the plain footage."""
    listed = read_labels(labels, labels.parent) + (read_labels(extra, footage) if extra is not None else [])
    out: dict[Path, Clip] = {}
    for clip in listed:
        mine = clip.event == event
        if mine or clip.path not in out:
            out[clip.path] = Clip(clip.path, clip.event, mine and clip.positive, clip.start if mine else None,
                                  clip.end if mine else None, clip.config if mine else None)
    for name in NEGATIVE_FOOTAGE:
        out.setdefault(footage / name, Clip(footage / name, None, False, None, None))
    if not any(c.positive for c in out.values()):
        raise CctvError(f"no clip is labelled with event {event!r} in {labels}")
    return sorted(out.values(), key=lambda c: (not c.positive, c.event != event, str(c.path)))


def evaluate_clips(
    event: str, config: Path, labels: Path, extra: Path | None, footage: Path, out: Path, tolerance: float = 2.0,
    fps: float | None = None, only: str | None = None,
) -> dict[str, Any]:
    """Replay every clip through the config's camera; per clip its alarms, overall precision, recall, F1."""
    from pipeline.replay import replay

    if event not in EVENT_RULES:
        raise CctvError(f"unknown event {event!r}: choose from {', '.join(EVENT_RULES)}")
    rule_type = EVENT_RULES[event]
    name, cam = load_config(config).camera(None)
    if rule_type not in RULE_TYPES or not any(rule.type == rule_type for rule in cam.rules):
        raise CctvError(f"{config}: camera {name!r} has no {rule_type} rule to evaluate")
    clips = [c for c in clip_set(event, labels, extra, footage) if only is None or only in c.path.name]
    missing = [str(p) for c in clips for p in (c.path, c.config) if p is not None and not p.is_file()]
    if missing:
        raise CctvError(f"clip not found: {missing[0]} (run `cctv assets`)")
    overrides = {"detect": {"fps": fps}} if fps else None
    results = []
    for clip in tqdm(clips, desc=f"eval-clips {event}", unit="clip", leave=False):
        used = clip.config or config
        run = replay(str(clip.path), used, None, out / clip.path.stem, progress=False, overrides=overrides)
        alarms = sorted(e.start for e in run.events if e.type == rule_type)
        inside = [t for t in alarms if clip.positive and clip.start - tolerance <= t <= clip.end + tolerance]
        results.append(ClipResult(
            str(clip.path.relative_to(footage)) if clip.path.is_relative_to(footage) else str(clip.path),
            clip.positive,
            (clip.start, clip.end) if clip.positive else None,
            [round(t, 2) for t in alarms],
            bool(inside),
            len(alarms) - (1 if inside else 0),
            run.summary["frames_processed"],
            str(used),
        ))
    tp = sum(r.detected for r in results)
    positives = sum(r.positive for r in results)
    fp = sum(r.false_alarms for r in results)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / positives if positives else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    report = {
        "event": event, "config": str(config), "tolerance": tolerance, "fps": fps or cam.detect.fps,
        "positives": positives, "detected": tp, "false_alarms": fp,
        "false_alarms_on_negatives": sum(r.false_alarms for r in results if not r.positive),
        "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
        "clips": [asdict(r) for r in results],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"eval-clips-{event}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def format_clips(report: dict[str, Any]) -> str:
    lines = [f"{'clip':44} {'label':>13} {'alarms (s)':28} verdict"]
    for r in report["clips"]:
        label = f"{r['span'][0]:g}-{r['span'][1]:g} s" if r["positive"] else "negative"
        alarms = ", ".join(f"{t:g}" for t in r["alarms"]) or "none"
        verdict = ("detected" if r["detected"] else "MISSED") if r["positive"] else ("ok" if not r["alarms"] else "")
        if r["false_alarms"]:
            verdict += f" {r['false_alarms']} false alarm{'s' if r['false_alarms'] > 1 else ''}"
        own = f" (with {r['config']})" if r["config"] != report["config"] else ""
        lines.append(f"{r['clip'][:44]:44} {label:>13} {alarms[:28]:28} {verdict.strip()}{own}")
    lines.append(
        f"{report['event']} at {report['fps']:g} fps: {report['detected']}/{report['positives']} positives detected, "
        f"{report['false_alarms']} false alarms ({report['false_alarms_on_negatives']} on negative clips); "
        f"precision {report['precision']:.3f}, recall {report['recall']:.3f}, F1 {report['f1']:.3f}"
    )
    return "\n".join(lines)
