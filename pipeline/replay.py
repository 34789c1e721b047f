"""Offline replay: a recorded video and a site config in, finished events and a summary out.

`events.jsonl` (one finished event per line) and `summary.json` are a contract that other tools
(evaluation, benchmarks, tests) rely on.
"""

from __future__ import annotations

import itertools
import json
import random
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.config import CameraConfig, deep_update, load_config
from pipeline.detcache import CachedFrame, CachedRun, cache_key
from pipeline.detcache import save as save_cache
from pipeline.detect import camera_detector
from pipeline.detect.flexible import compile_seconds
from pipeline.draw import annotate
from pipeline.engine import CameraRun, StageClock
from pipeline.errors import CctvError
from pipeline.events import Event, EventCollector
from pipeline.evidence import EvidenceRecorder
from pipeline.formats import Prediction, output_dir, write_jsonl, write_tracks
from pipeline.sources import open_source
from pipeline.types import Frame, Track
from pipeline.video import H264Writer


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User and system CPU time of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _dropped(frames: Iterable[Frame], fraction: float, seed: int) -> Iterator[Frame]:
    """The frames less a seeded random `fraction` of them, as a loaded live camera drops them."""
    rng = random.Random(seed)
    return (frame for frame in frames if rng.random() >= fraction)


def _batches(frames: Iterable[Frame], size: int, clock: StageClock) -> Iterator[list[Frame]]:
    """Consecutive frames in groups of `size` (the last may be shorter), timing the decoding."""
    frames = iter(frames)
    while True:
        with clock.stage("decode"):
            batch = list(itertools.islice(frames, size))
        if not batch:
            return
        yield batch


@dataclass
class ReplayResult:
    events: list[Event]
    summary: dict[str, Any]
    frames: list[int]  # source indices of the frames the pipeline analysed


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
    drop: float = 0.0,
    seed: int = 0,
) -> ReplayResult:
    """Run one camera's pipeline over a whole video as fast as the machine allows.

    With `cache_dir`, the raw detections are also kept there (see `detcache`) for threshold sweeps;
    with `evidence`, each event gets a clip, snapshot and thumbnail in `out_dir/evidence`; `drop`
    leaves out that fraction of the sampled frames at random (seeded), as a loaded live camera does.
    """
    if not 0 <= drop < 1:
        raise CctvError(f"drop must be in [0, 1), not {drop}")
    config_path = Path(config_path)
    site = load_config(config_path)
    name, cam = site.camera(camera)
    if overrides:
        cam = CameraConfig.model_validate(deep_update(cam.model_dump(), overrides))
    source = video if video is not None else cam.source
    if cache_dir is not None and not Path(str(source)).is_file():
        raise CctvError(f"--cache needs a video file, not {source!r}: detections are keyed by the file's checksum")
    out = output_dir(out_dir)
    wall0, cpu0, compile0 = time.perf_counter(), cpu_seconds(), compile_seconds()
    model = site.model
    detector = camera_detector(model, cam)
    clock = StageClock()
    collector = EventCollector()
    with open_source(source, fps=cam.detect.fps, privacy=cam.privacy_mask) as src:
        cam.warn_outside(name, src.width, src.height)
        recorder = EvidenceRecorder(out / "evidence", camera=cam) if evidence else None  # its zones and lines drawn
        writer = H264Writer(out / "annotated.mp4", src.width, src.height, cam.detect.fps or src.fps) if save_video else None
        show = sys.stderr.isatty() if progress is None else progress
        total = round(src.duration * cam.detect.fps) if cam.detect.fps and src.duration else src.frame_count
        bar = tqdm(total=total or None, unit="frame", desc=name, disable=not show, leave=False)
        tracks: dict[int, list[Prediction]] = {}
        carry = cam.detect.carry_seconds

        def carried(track: Track, t: float) -> bool:
            """Seen on this frame, or carried on purpose (the detector was not asked to look at it yet)."""
            return t - track.last_seen <= carry + 1e-6 if carry > 0 else track.last_seen == t
        cached: list[CachedFrame] = []
        run = CameraRun(
            name, cam, fps=src.fps, subscribers=[collector], detector=detector, size=(src.width, src.height),
            evidence=recorder, clock=clock,
        )
        try:
            with run:
                for batch, motion in run.read_ahead(_batches(_dropped(src, drop, seed), cam.detect.pack_frames, clock)):
                    for result in run.process(batch, motion=motion):
                        index = result.frame.index
                        tracks[index] = [
                            (t.track_id, *(t.expected or t.box)) for t in result.tracks if carried(t, result.frame.pts)
                        ]
                        if cache_dir is not None:
                            cached.append(CachedFrame(index, result.frame.pts, result.detections))
                        if writer is not None:
                            with clock.stage("annotate"):
                                image = annotate(result.frame.image, cam, result.tracks, result.eligible, result.alarms)
                                writer.write(image, result.frame.pts)
                        bar.update()
            if writer is not None:
                with clock.stage("annotate"):
                    writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            bar.close()
        stats = src.stats
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    compiling = compile_seconds() - compile0
    steady = wall - compiling
    events = collector.sorted()
    media = (run.last[0] if run.last else 0.0) + 1.0 / src.fps
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
        "cpu_seconds": round(cpu, 3),
        "fps": round(processed / wall, 2) if wall else None,
        "realtime_factor": round(media / wall, 2) if wall else None,
        "compile_seconds": round(compiling, 3),
        "steady_realtime_factor": round(media / steady, 2) if steady > 0 else None,
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
    return ReplayResult(events, summary, sorted(tracks))
