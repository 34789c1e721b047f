"""Offline replay: a recorded video and a site config in, finished events and a summary out.

`events.jsonl` (one finished event per line) and `summary.json` are a contract that other tools
(evaluation, benchmarks, tests) rely on.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.config import CameraConfig, deep_update, load_config
from pipeline.detcache import CachedFrame, CachedRun, cache_key
from pipeline.detcache import save as save_cache
from pipeline.detect import camera_detector
from pipeline.draw import annotate
from pipeline.engine import CameraPipeline, StageClock
from pipeline.errors import CctvError
from pipeline.events import Event, EventBus, EventCollector
from pipeline.evidence import EvidenceRecorder
from pipeline.formats import Prediction, write_jsonl, write_tracks
from pipeline.sources import open_source
from pipeline.types import Frame
from pipeline.video import H264Writer


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class ReplayResult:
    events: list[Event]
    summary: dict[str, Any]


def replay(
    video: str | None,
    config_path: str | Path,
    camera: str | None = None,
    out_dir: str | Path = "out",
    save_video: bool = False,
    progress: bool | None = None,
    overrides: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    evidence: bool = False,
) -> ReplayResult:
    """Run one camera's pipeline over a whole video as fast as the machine allows.

    With `cache_dir`, the raw detections are also kept there (see `detcache`) for threshold sweeps;
    with `evidence`, each event gets a clip, snapshot and thumbnail in `out_dir/evidence`.
    """
    config_path = Path(config_path)
    site = load_config(config_path)
    name, cam = site.camera(camera)
    if overrides:
        cam = CameraConfig.model_validate(deep_update(cam.model_dump(), overrides))
    source = video if video is not None else cam.source
    if cache_dir is not None and not Path(str(source)).is_file():
        raise CctvError(f"--cache needs a video file, not {source!r}: detections are keyed by the file's checksum")
    out = Path(out_dir)
    wall0 = time.perf_counter()
    model = site.model
    detector = camera_detector(model, cam)
    clock = StageClock()
    bus = EventBus()
    collector = EventCollector()
    bus.subscribe(collector)
    with open_source(source, fps=cam.detect.fps) as src:
        out.mkdir(parents=True, exist_ok=True)
        pipe = CameraPipeline(name, cam, detector, bus, (src.width, src.height), src.fps, clock)
        recorder = EvidenceRecorder(out / "evidence") if evidence else None
        if recorder is not None:
            bus.subscribe(recorder.on_change)
        writer = H264Writer(out / "annotated.mp4", src.width, src.height, cam.detect.fps or src.fps) if save_video else None
        show = sys.stderr.isatty() if progress is None else progress
        total = round(src.duration * cam.detect.fps) if cam.detect.fps and src.duration else src.frame_count
        bar = tqdm(total=total or None, unit="frame", desc=name, disable=not show, leave=False)
        last = None
        tracks: dict[int, list[Prediction]] = {}
        batch: list[Frame] = []
        cached: list[CachedFrame] = []
        try:
            frames = iter(src)
            while True:
                with clock.stage("decode"):
                    frame = next(frames, None)
                if frame is not None:
                    batch.append(frame)
                    if len(batch) < cam.detect.pack_frames:
                        continue
                if recorder is not None:
                    with clock.stage("evidence"):
                        for buffered in batch:
                            recorder.push(buffered)
                for result in pipe.process(batch):
                    tracks[result.frame.index] = [
                        (t.track_id, *t.box) for t in result.tracks if t.last_frame == result.frame.index
                    ]
                    if cache_dir is not None:
                        cached.append(CachedFrame(result.frame.index, result.frame.pts, result.detections))
                    if writer is not None:
                        with clock.stage("annotate"):
                            writer.write(annotate(result.frame.image, cam, result.tracks, result.eligible, result.alarms), result.frame.pts)
                    bar.update()
                last = batch[-1] if batch else last
                batch = []
                if frame is None:
                    break
            if last is not None:
                pipe.close(last.pts, last.index)
            if recorder is not None:
                with clock.stage("evidence"):
                    recorder.close()
            if writer is not None:
                with clock.stage("annotate"):
                    writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            if recorder is not None:
                recorder.abort()
            raise
        finally:
            bar.close()
        stats = src.stats
    wall = time.perf_counter() - wall0
    events = collector.sorted()
    media = (last.pts if last else 0.0) + 1.0 / src.fps
    processed = clock.counts["processed"]
    summary = {
        "camera": name,
        "video": str(source),
        "frames_read": stats.frames_read,
        "frames_processed": processed,
        "frames_detected": clock.counts["detected"],
        "inferences": detector.inferences,
        "media_seconds": round(media, 3),
        "wall_seconds": round(wall, 3),
        "fps": round(processed / wall, 2) if wall else None,
        "realtime_factor": round(media / wall, 2) if wall else None,
        "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
        "stage_ms_per_frame": {k: round(1000 * v / max(processed, 1), 2) for k, v in clock.seconds.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "events": len(events),
        "events_by_rule": {r: sum(e.rule == r for e in events) for r in sorted({e.rule for e in events})},
    }
    write_jsonl(out / "events.jsonl", (event.to_dict() for event in events))
    write_tracks(out / "tracks.txt", tracks)
    if cache_dir is not None:
        save_cache(Path(cache_dir) / f"{cache_key(source, model.path, cam)}.npz", CachedRun(src.fps, cached))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return ReplayResult(events, summary)
