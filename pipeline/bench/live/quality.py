"""Live event quality: a looped camera's live events scored against the ground truth of its clip.

A file played as a live camera (`loop: true`) repeats its clip; every frame keeps its index in the
clip's decoding order, so an event's `start_frame` puts it back on the clip's media time, loop by
loop. The truth of each loop that played entirely inside the watched window is the clip's truth
(`cctv truth-from-mot` with the camera's rules), shifted by that loop's start; events of partial
loops at either end are left out. Cameras whose clip has MOTChallenge ground truth beside it
(`clip.gt.txt`) are scored.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from pipeline.config import load_config
from pipeline.eval.scoring import match_events
from pipeline.eval.truth import events_from_mot
from pipeline.sources import open_source
from pipeline.store import EventStore


def _clip_frames(path: str) -> tuple[float, int]:
    """(frame rate, frames per loop) of a clip, by decoding it once."""
    with open_source(path, fps=None) as src:
        return src.fps, sum(1 for _ in src)


def _all_events(store: EventStore, camera: str) -> list[dict[str, Any]]:
    events, cursor = [], None
    while True:
        page, cursor = store.query(camera=camera, limit=1000, cursor=cursor)
        events += [stored.event.to_dict() for stored in page]
        if cursor is None:
            return events


def live_event_quality(config: Path, data_dir: Path, window: tuple[float, float]) -> dict[str, Any]:
    """Per scored camera: loops scored, F1 per rule and overall, alarms per true event."""
    out: dict[str, Any] = {}
    site = load_config(config)
    with EventStore.open(data_dir) as store:
        for name, cam in site.cameras.items():
            gt = Path(str(cam.source)).with_suffix(".gt.txt")
            if not cam.loop or not gt.is_file():
                continue
            fps, frames = _clip_frames(str(cam.source))
            loop_s = frames / fps
            events = _all_events(store, name)
            if not events:
                out[name] = {"loops": 0, "error": "no events"}
                continue
            offset = statistics.median(e["start"] - e["start_frame"] / fps for e in events)  # wall time of frame 0
            first, last = math.ceil((window[0] - offset) / loop_s), math.floor((window[1] - offset) / loop_s)
            if last <= first:
                out[name] = {"loops": 0, "error": f"no whole {loop_s:.1f} s loop inside the window"}
                continue
            lo, hi = first * loop_s, last * loop_s
            alarms = [
                {**e, "start": e["start_frame"] / fps, "end": (e["end_frame"] if e["end_frame"] is not None else e["start_frame"]) / fps}
                for e in events
                if lo <= e["start_frame"] / fps < hi
            ]
            clip_truth = events_from_mot(gt, cam, name, fps)
            truth = [
                {**t, "start": t["start"] + k * loop_s, "end": t["end"] + k * loop_s}
                for k in range(first, last)
                for t in clip_truth
            ]
            match = match_events(alarms, truth, tolerance=2.0)
            zero = sum(e["type"] == "intrusion" and e["end"] == e["start"] for e in alarms)
            out[name] = {
                "loops": last - first,
                "loop_seconds": round(loop_s, 2),
                "alarms": len(alarms),
                "true_events": len(truth),
                "zero_second_intrusions": zero,
                "overall": match.overall.to_dict(),
                "per_rule": {rule: score.to_dict() for rule, score in match.per_rule.items()},
            }
    return out
