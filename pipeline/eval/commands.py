"""Evaluation commands' library: validated event files, event and MOT reports, truth from MOT files.

`scoring` matches events and `mot` scores tracks; this module reads and checks the files a person
hands the CLI, and turns the results into a table, a checkable list of decisions and JSON.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.config import load_config
from pipeline.errors import CctvError
from pipeline.eval.mot import MotScores, evaluate_mot
from pipeline.eval.scoring import EventRecord, MatchResult, match_events
from pipeline.formats import read_events, read_tracks


def evaluate_files(events: str | Path, truth: str | Path, tolerance: float) -> MatchResult:
    """Match an events file against a truth file (both validated first)."""
    if tolerance < 0:
        raise CctvError(f"--tolerance must be 0 or more, not {tolerance}")
    return match_events(read_events(events), read_events(truth), tolerance)


def _seconds(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f} s" if sign else f"{value:.2f} s"


def format_scores(result: MatchResult) -> str:
    """An aligned table: one row per rule, then the overall row."""
    header = ("rule", "TP", "FP", "misses", "precision", "recall", "F1", "alarms/true", "mean delay", "worst delay")
    rows = [
        (
            name,
            str(s.tp),
            str(s.fp),
            str(s.fn),
            f"{s.precision:.3f}",
            f"{s.recall:.3f}",
            f"{s.f1:.3f}",
            "-" if s.alarms_per_event is None else f"{s.alarms_per_event:.2f}",
            _seconds(s.mean_delay, sign=True),
            _seconds(s.worst_delay, sign=True),
        )
        for name, s in [*result.per_rule.items(), ("overall", result.overall)]
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in (header, *rows)
    )


def _describe(event: EventRecord) -> str:
    """`cam/rule 12.30-15.00 s track 4 (note)`: what a person needs to find it in the video."""
    track = "" if event.get("track_id") is None else f" track {event['track_id']}"
    note = f" ({event['note']})" if event.get("note") else ""
    return f"{event['camera']}/{event['rule']} {float(event['start']):.2f}-{float(event['end']):.2f} s{track}{note}"


def format_details(result: MatchResult) -> str:
    """Every match, false alarm and miss in time order, to check against the video."""
    rows = [
        (
            float(m.truth["start"]),
            f"match        {_describe(m.truth)} <- alarm {_describe(m.predicted)}, delay {m.delay:+.2f} s",
        )
        for m in result.matches
    ]
    rows += [(float(e["start"]), f"false alarm  {_describe(e)}") for e in result.false_alarms]
    rows += [(float(e["start"]), f"miss         {_describe(e)}") for e in result.misses]
    return "\n".join(text for _, text in sorted(rows, key=lambda r: r[0]))


def report(result: MatchResult, events: str | Path, truth: str | Path, tolerance: float) -> dict[str, Any]:
    """The JSON report: the same scores as the table, plus every decision behind them."""
    return {
        "events": str(events),
        "truth": str(truth),
        "tolerance": tolerance,
        "overall": result.overall.to_dict(),
        "per_rule": {rule: s.to_dict() for rule, s in result.per_rule.items()},
        "matches": [{"truth": dict(m.truth), "alarm": dict(m.predicted), "delay": m.delay} for m in result.matches],
        "false_alarms": [dict(e) for e in result.false_alarms],
        "misses": [dict(e) for e in result.misses],
    }


def write_json(path: str | Path, data: Mapping[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def source_fps(source: str) -> float:
    """The frame rate of a camera's source video; a stream or unreadable file asks for --fps."""
    from pipeline.sources import open_source

    path = source
    if not Path(path).is_file():
        raise CctvError(f"cannot read the frame rate of {source!r} (not a video file here): give --fps")
    try:
        with open_source(path, fps=None) as src:
            return src.fps
    except CctvError as exc:
        raise CctvError(f"cannot read the frame rate of {source!r} ({exc}): give --fps") from None


@dataclass(frozen=True, slots=True)
class DerivedTruth:
    camera: str
    events: list[dict[str, Any]]
    counts: dict[str, int]  # events per rule, in the config's order, zero for a rule that never fired


def truth_from_mot(mot: str | Path, config: str | Path, camera: str | None, fps: float | None) -> DerivedTruth:
    """Every rule of the camera run over MOT ground-truth tracks, as truth events."""
    from pipeline.eval.truth import events_from_mot

    config = Path(config)
    name, cam = load_config(config).camera(camera)
    if fps is not None and fps <= 0:
        raise CctvError(f"--fps must be positive, not {fps}")
    if not Path(mot).is_file():
        raise CctvError(f"{mot}: file not found")
    if not Path(mot).read_text(encoding="utf-8", errors="replace").strip():
        raise CctvError(f"{mot}: empty MOT file (expected frame,id,x,y,w,h,consider,... rows)")
    rate = fps if fps is not None else source_fps(str(cam.source))
    try:
        events = events_from_mot(mot, cam, name, rate)
    except (ValueError, IndexError) as exc:
        raise CctvError(f"{mot}: not a MOTChallenge file (frame,id,x,y,w,h,consider,...): {exc}") from None
    counts = Counter(e["rule"] for e in events)
    return DerivedTruth(name, events, {rule.name: counts[rule.name] for rule in cam.rules})


def score_tracks(tracks: str | Path, gt: str | Path, frames: int | None) -> MotScores:
    """MOT scores of a tracks file; `frames` limits scoring to video frames 0..frames-1."""
    if frames is not None and frames < 1:
        raise CctvError(f"--frames must be at least 1, not {frames}")
    if not Path(gt).is_file():
        raise CctvError(f"{gt}: file not found")
    predictions = read_tracks(tracks)
    try:
        return evaluate_mot(gt, predictions, frames=None if frames is None else range(frames))
    except ValueError as exc:
        raise CctvError(f"{gt}: not a MOTChallenge ground-truth file ({exc})") from None
    except ImportError:
        raise CctvError("motmetrics is not installed: install the `eval` extra (./setup.sh)") from None


def format_mot(scores: MotScores) -> str:
    hota = "n/a (trackers not installed)" if scores.hota is None else f"{scores.hota:.3f}"
    return "\n".join(
        [
            f"MOTA         {scores.mota:.3f}",
            f"IDF1         {scores.idf1:.3f}",
            f"ID switches  {scores.id_switches}",
            f"precision    {scores.precision:.3f}",
            f"recall       {scores.recall:.3f}",
            f"HOTA         {hota}",
            f"frames       {scores.num_frames}",
        ]
    )


def mot_report(scores: MotScores, tracks: str | Path, gt: str | Path) -> dict[str, Any]:
    return {"tracks": str(tracks), "gt": str(gt), **asdict(scores)}
