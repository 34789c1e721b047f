"""`cctv bench --peer`: the pipeline against the Ultralytics loop a user would write instead, in one run.

The peer is `YOLO(model_dir).track(video, tracker="bytetrack.yaml", vid_stride=k)` on the same
exported model, every k-th frame so that it looks at the same frames per second as the camera's
`detect.fps`, restricted to the camera's classes. Its tracks are written as a MOTChallenge file and
turned into events by the camera's own rules, exactly as ground truth is derived from annotated
tracks (`eval/truth.py`), so both sides are scored by the same rules. Each run is a process of its
own; pipeline and peer alternate, and the medians are reported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pipeline.bench.machine import cpu_description
from pipeline.config import load_config
from pipeline.errors import CctvError
from pipeline.eval.scoring import match_events
from pipeline.eval.truth import events_from_mot
from pipeline.formats import Prediction, write_tracks

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PEER_CLIPS = {"pets09": CONFIGS / "pets09.yaml", "oxford": CONFIGS / "oxford-town-centre.yaml"}
TRUTH = {"pets09": "pets09-s2l1.gt.txt"}  # MOT ground truth beside the clip, for event F1


def _pipeline(config: Path, out: str) -> dict[str, Any]:
    from pipeline.replay import replay

    result = replay(None, config, out_dir=out, progress=False)
    s = result.summary
    return {"wall_seconds": s["wall_seconds"], "cpu_seconds": s["cpu_seconds"], "peak_rss_mb": s["peak_rss_mb"],
            "compile_seconds": s["compile_seconds"], "frames": s["frames_processed"],
            "events": [e.to_dict() for e in result.events]}


def _peer(config: Path, out: str) -> dict[str, Any]:
    """The Ultralytics loop, offline; its tracks through the camera's rules."""
    import resource

    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="False", YOLO_CONFIG_DIR=tempfile.mkdtemp(prefix="yolo-"))
    from ultralytics import YOLO

    from pipeline.sources import open_source

    site = load_config(config)
    name, cam = site.camera(None)
    with open_source(cam.source, fps=None) as src:
        fps = src.fps
    stride = max(1, round(fps / cam.detect.fps)) if cam.detect.fps else 1
    usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    model = YOLO(site.model.path, task="detect")
    classes = [k for k, v in model.names.items() if v in cam.objects.track]
    tracks: dict[int, list[Prediction]] = {}
    frames = 0
    stream = model.track(str(cam.source), tracker="bytetrack.yaml", vid_stride=stride, classes=classes, stream=True,
                         verbose=False)
    for k, result in enumerate(stream):
        frames += 1
        boxes = result.boxes
        if boxes.id is None:
            continue
        tracks[k * stride] = [(int(i), *map(float, xyxy)) for i, xyxy in zip(boxes.id.tolist(), boxes.xyxy.tolist())]
    wall = time.perf_counter() - wall0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - usage0.ru_utime - usage0.ru_stime
    Path(out).mkdir(parents=True, exist_ok=True)
    write_tracks(Path(out) / "tracks.txt", tracks)
    events = events_from_mot(Path(out) / "tracks.txt", cam, name, fps)
    return {"wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "frames": frames, "events": events}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def run_peer_bench(clips: list[str], out_dir: Path, repeats: int = 3) -> dict[str, Any]:
    """Pipeline and peer alternately, `repeats` times per clip, each run in a fresh process."""
    # Looked up, not imported: a spawned worker's peak RSS starts at this process's, and torch is 700 MB.
    if importlib.util.find_spec("ultralytics") is None:
        raise CctvError("--peer needs the optional Ultralytics backend: ./setup.sh --test installs it")
    rows = []
    pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), max_tasks_per_child=1)
    with pool:
        for clip in clips:
            config = PEER_CLIPS[clip]
            runs: dict[str, list[dict[str, Any]]] = {"pipeline": [], "peer": []}
            for rep in range(repeats):
                for side, fn in (("pipeline", _pipeline), ("peer", _peer)):
                    runs[side].append(pool.submit(fn, config, str(out_dir / clip / f"{side}-{rep}")).result())
            row: dict[str, Any] = {"clip": clip, "repeats": repeats}
            for side, side_runs in runs.items():
                keys = [k for k in ("wall_seconds", "cpu_seconds", "peak_rss_mb", "compile_seconds") if k in side_runs[0]]
                row[side] = {key: _median(side_runs, key) for key in keys}
                row[side]["frames"] = side_runs[0]["frames"]
                row[side]["events"] = len(side_runs[0]["events"])
            row["wall_ratio"] = round(row["pipeline"]["wall_seconds"] / row["peer"]["wall_seconds"], 3)
            row["cpu_ratio"] = round(row["pipeline"]["cpu_seconds"] / row["peer"]["cpu_seconds"], 3)
            if clip in TRUTH:
                cam_name, cam = load_config(config).camera(None)
                truth = events_from_mot(Path(str(cam.source)).parent / TRUTH[clip], cam, cam_name, 10.0)
                for side in runs:
                    score = match_events(runs[side][0]["events"], truth, tolerance=2.0).overall
                    row[side]["event_f1"] = round(score.f1, 3)
            rows.append(row)
    report = {"cpu": cpu_description(), "clips": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench-peer.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_peer(report, out_dir / "bench-peer.png")
    return report


def format_peer_table(report: dict[str, Any]) -> str:
    lines = [f"CPU: {report['cpu']}", f"{'clip':8} {'side':8} {'wall s':>7} {'CPU s':>7} {'RSS MB':>7} {'frames':>6} "
             f"{'events':>6} {'F1':>6}"]
    for row in report["clips"]:
        for side in ("pipeline", "peer"):
            s = row[side]
            lines.append(f"{row['clip']:8} {side:8} {s['wall_seconds']:>7} {s['cpu_seconds']:>7} {s['peak_rss_mb']:>7} "
                         f"{s['frames']:>6} {s['events']:>6} {s.get('event_f1', '-'):>6}")
        lines.append(f"{'':8} pipeline / peer: wall {row['wall_ratio']}, CPU {row['cpu_ratio']} "
                     f"(medians of {row['repeats']} alternating runs)")
    return "\n".join(lines)


def plot_peer(report: dict[str, Any], path: Path) -> None:
    """Wall and CPU seconds and peak RSS per clip, pipeline beside peer, each ratio written over its pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["clips"]
    clips = [row["clip"] for row in rows]
    panels = (("wall_seconds", "wall s", "wall_ratio"), ("cpu_seconds", "CPU s", "cpu_ratio"), ("peak_rss_mb", "peak RSS MB", None))
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4.2))
    for ax, (key, label, ratio) in zip(axes, panels):
        for k, side in enumerate(("pipeline", "peer")):
            xs = [i + (k - 0.5) * 0.38 for i in range(len(rows))]
            ax.bar(xs, [row[side][key] for row in rows], 0.38, label=side)
        if ratio is not None:
            for i, row in enumerate(rows):
                ax.annotate(f"×{row[ratio]}", (i, max(row["pipeline"][key], row["peer"][key])), ha="center", va="bottom")
        ax.set_xticks(range(len(rows)), clips)
        ax.set_ylabel(label)
        ax.margins(y=0.12)
    axes[0].legend()
    fig.suptitle(f"Pipeline against the Ultralytics track() loop ({report['cpu']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
