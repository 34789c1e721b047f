"""`cctv`: the command line. Thin commands over the stage modules; input errors are one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipeline.errors import CctvError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command()
def assets(
    asset_dir: Annotated[Optional[Path], typer.Option(help="where the assets are (default $CCTV_ASSETS or ../shared)")] = None,
) -> None:
    """Verify the models and sample footage and make them available under models/ and sample_videos/."""
    from pipeline.assets import ensure_assets, project_root

    report = ensure_assets(project_root(), asset_dir)
    typer.echo(report)


@app.command()
def replay(
    video: Annotated[Optional[str], typer.Argument(help="video file or stream (default: the camera's source)")] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="site config YAML")] = Path("configs/pets09.yaml"),
    camera: Annotated[Optional[str], typer.Option(help="camera in the config (needed when it has several)")] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out"),
    save_video: Annotated[bool, typer.Option("--save-video", help="write an annotated H.264 MP4")] = False,
    cache: Annotated[Optional[Path], typer.Option(help="also keep the raw detections here, for `cctv sweep`")] = None,
) -> None:
    """Replay a recorded video through one camera's pipeline; writes events.jsonl and summary.json."""
    from pipeline.replay import replay as run

    result = run(video, config, camera, out, save_video, cache_dir=cache)
    s = result.summary
    typer.echo(
        f"{s['camera']}: {s['events']} events {s['events_by_rule']} | {s['frames_processed']} frames "
        f"({s['frames_detected']} detected) in {s['wall_seconds']} s = {s['realtime_factor']}x real time | "
        f"peak RSS {s['peak_rss_mb']} MB -> {out}/events.jsonl"
    )


@app.command()
def detect(
    image: Annotated[Path, typer.Argument(help="image file")],
    config: Annotated[Optional[Path], typer.Option(help="site config whose model to use")] = None,
    min_score: Annotated[float, typer.Option(help="lowest score shown")] = 0.25,
) -> None:
    """Print the detections of one image (a quick check of the model)."""
    from pipeline.config import ModelConfig, load_config
    from pipeline.detect import detect_image, format_detections

    model = load_config(config).model if config else ModelConfig()
    typer.echo(format_detections(detect_image(image, model, min_score=min_score)))


@app.command()
def sweep(
    config: Annotated[Path, typer.Option("--config", "-c", help="site config YAML")],
    truth: Annotated[Path, typer.Option(help="ground-truth events (JSON lines)")],
    grid: Annotated[str, typer.Option(help="e.g. 'person.min_score=0.3:0.7:0.05,persistence=1:6'")],
    camera: Annotated[Optional[str], typer.Option(help="camera in the config")] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out/sweep"),
    cache: Annotated[Path, typer.Option(help="detection cache (filled by one replay if empty)")] = Path("out/cache"),
    tolerance: Annotated[float, typer.Option(help="seconds between alarm and true start")] = 2.0,
) -> None:
    """Replay tracking and rules over cached detections for every grid point; table, plots, best settings."""
    from pipeline.sweep import config_change, sweep as run

    result = run(config, truth, grid, camera, out, cache, tolerance)
    default = result.default
    for rule, row in result.best.items():
        base = default[rule].f1 if rule in default else float("nan")
        typer.echo(f"{rule:24} best F1 {row['f1']:.3f} (default {base:.3f}) with {config_change(result.axes, row)}")
    typer.echo(f"-> {out}/sweep.csv, {out}/pr.png, {out}/f1_vs_*.png")


@app.command()
def bench(
    clips: Annotated[Optional[list[str]], typer.Argument(help="clips to run (default: all)")] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out/bench"),
) -> None:
    """Speed, memory and events of the default pipeline against a naive full-frame baseline."""
    from pipeline.bench import CLIPS, format_table, plot, run_bench

    unknown = sorted(set(clips or []) - CLIPS.keys())
    if unknown:
        raise CctvError(f"unknown clip {unknown[0]!r}: choose from {sorted(CLIPS)}")
    rows = run_bench(clips or list(CLIPS), out)
    plot(rows, out / "bench.png")
    typer.echo(format_table(rows))
    typer.echo(f"-> {out}/bench.json, {out}/bench.png")


def main() -> None:
    """Entry point: any CctvError becomes `error: ...` on one line and exit status 2."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    try:
        app()  # standalone: usage errors are printed by typer itself, also with status 2
    except CctvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
