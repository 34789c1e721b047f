"""`cctv`: the command line. Thin commands over the stage modules; input errors are one line."""

from __future__ import annotations

import getpass
import math
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pipeline.errors import CctvError

if TYPE_CHECKING:
    from pipeline.store import EventStore

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
    evidence: Annotated[bool, typer.Option("--evidence", help="a clip, snapshot and thumbnail per event")] = False,
) -> None:
    """Replay a recorded video through one camera's pipeline; writes events.jsonl and summary.json."""
    from pipeline.replay import replay as run

    result = run(video, config, camera, out, save_video, cache_dir=cache, evidence=evidence)
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


@app.command("config-schema")
def config_schema() -> None:
    """Every key of the site config with its type, default and meaning, as a Markdown table."""
    from pipeline.config import field_docs

    typer.echo("| key | type | default | meaning |\n|---|---|---|---|")
    for doc in field_docs():
        kind = doc.type.replace("|", "\\|")  # a table cell may not hold a bare pipe
        typer.echo(f"| `{doc.path}` | {kind} | {doc.default} | {doc.description} |")


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
    from pipeline.eval.sweep import config_change
    from pipeline.eval.sweep import sweep as run

    result = run(config, truth, grid, camera, out, cache, tolerance)
    default = result.default
    for rule, row in result.best.items():
        base = default[rule].f1 if rule in default else float("nan")
        change = config_change(result.camera, result.cam, result.axes, row)
        typer.echo(f"{rule:24} best F1 {row['f1']:.3f} (default {base:.3f}) with {change}")
    typer.echo(f"-> {out}/sweep.csv, {out}/pr.png, {out}/f1_vs_*.png")


@app.command()
def report(
    run: Annotated[Path, typer.Option(help="the --out directory of a `cctv replay`")],
    truth: Annotated[Path, typer.Option(help="ground-truth events (JSON lines)")],
    out: Annotated[Optional[Path], typer.Option(help="HTML file (default RUN/report.html)")] = None,
    video: Annotated[Optional[str], typer.Option(help="the replayed video (default: from summary.json)")] = None,
    tolerance: Annotated[float, typer.Option(help="seconds between alarm and true start")] = 2.0,
) -> None:
    """Write one self-contained HTML page: scores, timeline, worst false alarms and misses with snapshots."""
    from pipeline.eval.report import write_report

    typer.echo(f"-> {write_report(run, truth, out, video, tolerance)}")


@app.command()
def bench(
    clips: Annotated[Optional[list[str]], typer.Argument(help="clips to run (default: all; --peer: pets09, oxford)")] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out/bench"),
    peer: Annotated[bool, typer.Option("--peer", help="against the Ultralytics track() loop instead (needs the extra)")] = False,
    repeats: Annotated[int, typer.Option(help="--peer: alternating runs per side (medians)")] = 3,
) -> None:
    """Speed, memory and events of the default pipeline against a naive full-frame baseline (or --peer)."""
    from pipeline.bench.machine import cpu_description
    from pipeline.bench.offline import CLIPS, format_table, plot, run_bench
    from pipeline.bench.peer import PEER_CLIPS, format_peer_table, run_peer_bench

    known = PEER_CLIPS if peer else CLIPS
    unknown = sorted(set(clips or []) - known.keys())
    if unknown:
        raise CctvError(f"unknown clip {unknown[0]!r}: choose from {sorted(known)}")
    if peer:
        if repeats < 1:
            raise CctvError(f"--repeats must be at least 1, not {repeats}")
        typer.echo(format_peer_table(run_peer_bench(clips or list(PEER_CLIPS), out, repeats)))
        typer.echo(f"-> {out}/bench-peer.json, {out}/bench-peer.png")
        return
    rows = run_bench(clips or list(CLIPS), out)
    plot(rows, out / "bench.png")
    typer.echo(f"CPU: {cpu_description()}")
    typer.echo(format_table(rows))
    typer.echo(f"-> {out}/bench.json, {out}/bench.png")


@app.command("bench-shapes")
def bench_shapes(
    image: Annotated[Path, typer.Option(help="the image each input is letterboxed from")] = Path("sample_videos/bus.jpg"),
    runs: Annotated[int, typer.Option(help="timed inferences per shape")] = 50,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out/bench-shapes"),
) -> None:
    """Milliseconds per inference at each input size (640x640, 640x384, 480, 416, 320) against the fixed export."""
    import cv2

    from pipeline.bench.shapes import format_shapes, run_bench_shapes

    frame = cv2.imread(str(image))
    if frame is None:
        raise CctvError(f"{image}: cannot read the image")
    if runs < 1:
        raise CctvError(f"--runs must be at least 1, not {runs}")
    typer.echo(format_shapes(run_bench_shapes(Path("models"), frame, runs, out)))
    typer.echo(f"-> {out}/bench-shapes.json")


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CctvError(f"{option} takes numbers separated by commas, e.g. 10,5,3, not {text!r}") from None


@app.command("bench-rates")
def bench_rates(
    config: Annotated[Path, typer.Option("--config", "-c", help="site config YAML")] = Path("configs/pets09.yaml"),
    gt: Annotated[Path, typer.Option(help="MOTChallenge ground truth of the camera's video")] = Path(
        "sample_videos/pets09-s2l1.gt.txt"
    ),
    camera: Annotated[Optional[str], typer.Option(help="camera in the config (needed when it has several)")] = None,
    rates: Annotated[str, typer.Option(help="detect fps to replay at")] = "10,5,3,2,1.5",
    drop: Annotated[float, typer.Option(help="share of the sampled frames left out at random (0: none)")] = 0.6,
    drop_at: Annotated[str, typer.Option(help="detect fps at which frames are also dropped")] = "10,5",
    seeds: Annotated[int, typer.Option(help="random drops: seeds per rate (mean and worst reported)")] = 3,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out/bench-rates"),
) -> None:
    """Event F1, alarms per true event and IDF1 of a camera analysed at lower and irregular frame rates."""
    from pipeline.bench.rates import format_rates_table, plot_rates, run_bench_rates

    report = run_bench_rates(
        config, gt, camera, _numbers(rates, "--rates"), drop, _numbers(drop_at, "--drop-at"), seeds, out
    )
    plot_rates(report, out / "bench-rates.png")
    typer.echo(format_rates_table(report))
    typer.echo(f"-> {out}/bench-rates.json, {out}/bench-rates.png")


@app.command("bench-live")
def bench_live(
    config: Annotated[Path, typer.Option("--config", "-c", help="site config YAML")] = Path("configs/site.yaml"),
    seconds: Annotated[float, typer.Option(help="seconds of watching the cameras")] = 300,
    load_seconds: Annotated[float, typer.Option(help="seconds of API load after that (0: none)")] = 60,
    clients: Annotated[int, typer.Option(help="concurrent API clients during the load")] = 50,
    out: Annotated[Path, typer.Option(help="output directory (its data/ is the service's, started fresh)")] = Path(
        "out/bench-live"
    ),
    port: Annotated[Optional[int], typer.Option(help="service port (default: a free one)")] = None,
    unauthenticated: Annotated[
        bool, typer.Option(help="the load's clients send no token, as anyone on the network could (all refused)")
    ] = False,
    viewers: Annotated[
        int, typer.Option(help="the load phase is this many operators' walls instead (each tile polls view.jpg)")
    ] = 0,
) -> None:
    """Run `cctv serve` and measure it: detection rate, drops, lag, event latency, health latency, CPU, RSS,
    API under load."""
    from pipeline.bench.live.plot import plot
    from pipeline.bench.live.report import format_table
    from pipeline.bench.live.run import run_bench_live

    result = run_bench_live(config, seconds, load_seconds, clients, out, port, unauthenticated, viewers)
    plot(result, out / "bench-live.png")
    typer.echo(format_table(result.report))
    typer.echo(f"-> {out}/bench-live.json, {out}/bench-live.png")


@app.command("bench-cluster")
def bench_cluster(
    cameras: Annotated[int, typer.Option(help="simulated cameras (PETS09's detections replayed)", min=1)] = 2000,
    nodes: Annotated[int, typer.Option(help="node processes sharing them", min=2)] = 20,
    kill: Annotated[int, typer.Option(help="nodes SIGKILLed at once for the failover", min=1)] = 5,
    fps: Annotated[float, typer.Option(help="frames per second each camera analyses", min=0.1, max=10)] = 1.0,
    seconds: Annotated[float, typer.Option(help="seconds of steady running measured", min=5)] = 60,
    db: Annotated[Optional[str], typer.Option(help="a PostgreSQL URL (default: a throwaway server started here)")] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out/bench-cluster"),
    real: Annotated[
        Optional[Path], typer.Option(help="instead: this site config's real cameras on one node, then on two")
    ] = None,
) -> None:
    """A city's control plane on one machine: events, leases, fan-out and failover of many nodes and cameras."""
    from pipeline.bench.cluster import format_real, format_report, plot, run_bench_cluster, run_real_split

    if real is not None:
        if not real.is_file():
            raise CctvError(f"no config file {real}")
        typer.echo(format_real(run_real_split(real, seconds, out)))
        typer.echo(f"-> {out}/bench-cluster-real.json")
        return
    report = run_bench_cluster(cameras, nodes, kill, fps, seconds, out, db)
    plot(report, out / "bench-cluster.png")
    typer.echo(format_report(report))
    typer.echo(f"-> {out}/bench-cluster.json, {out}/bench-cluster.png")


@app.command("eval")
def eval_events(
    events: Annotated[Path, typer.Option(help="predicted events (JSON lines, e.g. a replay's events.jsonl)")],
    truth: Annotated[Path, typer.Option(help="ground-truth events (JSON lines)")],
    tolerance: Annotated[float, typer.Option(help="seconds between alarm and true start")] = 2.0,
    out: Annotated[Optional[Path], typer.Option(help="JSON report (default: eval.json beside the events file)")] = None,
    details: Annotated[bool, typer.Option("--details", help="list every match, false alarm and miss")] = False,
) -> None:
    """Score alarms against ground-truth events: TP, FP, misses, precision, recall, F1 and delays per rule."""
    from pipeline.eval.commands import (
        evaluate_files,
        format_details,
        format_scores,
        report,
        write_json,
    )

    result = evaluate_files(events, truth, tolerance)
    path = out or events.parent / "eval.json"
    write_json(path, report(result, events, truth, tolerance))
    typer.echo(format_scores(result))
    if details:
        typer.echo("")
        typer.echo(format_details(result) or "no events")
    typer.echo(f"-> {path}")


@app.command("eval-clips")
def eval_clips(
    event: Annotated[str, typer.Option(help="abandoned, fall, fight or fire")],
    config: Annotated[Path, typer.Option("--config", "-c", help="site config with one camera holding the rule")],
    labels: Annotated[Path, typer.Option(help="clip labels CSV")] = Path("sample_videos/events/labels.csv"),
    extra: Annotated[Optional[Path], typer.Option(help="more labels, for the sample footage")] = Path(
        "configs/clip-labels.csv"
    ),
    footage: Annotated[Path, typer.Option(help="the sample footage (negatives unless labelled)")] = Path("sample_videos"),
    fps: Annotated[Optional[float], typer.Option(help="detect fps to replay at (default: the camera's)")] = None,
    tolerance: Annotated[float, typer.Option(help="seconds an alarm may fall outside a labelled span")] = 2.0,
    only: Annotated[Optional[str], typer.Option(help="only clips whose file name contains this")] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out/eval-clips"),
) -> None:
    """Replay every labelled clip of an event type (and the negatives) through a rule; per clip and overall F1."""
    from pipeline.eval.clips import evaluate_clips, format_clips

    report = evaluate_clips(event, config, labels, extra, footage, out, tolerance, fps, only)
    typer.echo(format_clips(report))
    typer.echo(f"-> {out}/eval-clips-{event}.json")


@app.command("truth-from-mot")
def truth_from_mot(
    mot: Annotated[Path, typer.Option(help="MOTChallenge ground truth (frame,id,x,y,w,h,consider,...)")],
    config: Annotated[Path, typer.Option("--config", "-c", help="site config YAML")],
    camera: Annotated[Optional[str], typer.Option(help="camera in the config (needed when it has several)")] = None,
    fps: Annotated[Optional[float], typer.Option(help="frame rate of the annotated video (default: the source's)")] = None,
    out: Annotated[Path, typer.Option(help="truth events (JSON lines)")] = Path("truth.jsonl"),
) -> None:
    """Derive ground-truth events for every rule of a camera by running its rules over MOT ground-truth tracks."""
    from pipeline.eval.commands import truth_from_mot as derive
    from pipeline.formats import write_jsonl

    truth = derive(mot, config, camera, fps)
    write_jsonl(out, truth.events)
    for rule, count in truth.counts.items():
        typer.echo(f"{truth.camera}/{rule:24} {count}")
    typer.echo(f"-> {out}")


@app.command("eval-mot")
def eval_mot(
    tracks: Annotated[Path, typer.Option(help="tracks in MOTChallenge format (a replay's tracks.txt)")],
    gt: Annotated[Path, typer.Option(help="MOTChallenge ground truth")],
    frames: Annotated[Optional[int], typer.Option(help="score frames 0..N-1 (default: frames with truth or tracks)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="also write the scores as JSON")] = None,
) -> None:
    """Score tracks against MOT ground truth: MOTA, IDF1, ID switches, precision, recall, HOTA."""
    from pipeline.eval.commands import format_mot, mot_report, score_tracks, write_json

    scores = score_tracks(tracks, gt, frames)
    typer.echo(format_mot(scores))
    if out:
        write_json(out, mot_report(scores, tracks, gt))
        typer.echo(f"-> {out}")


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="site config YAML")] = Path("configs/site.yaml"),
    data: Annotated[Optional[str], typer.Option(help="data directory (default: the config's service.data)")] = None,
    db: Annotated[Optional[str], typer.Option(help="database URL instead of SQLite, e.g. postgresql+psycopg://...")] = None,
    host: Annotated[Optional[str], typer.Option(help="address to listen on (default: service.host)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default: service.port)")] = None,
    node: Annotated[Optional[str], typer.Option(help="run as this node of a cluster (needs a PostgreSQL --db)")] = None,
    max_cameras: Annotated[Optional[int], typer.Option(help="a node's most cameras (default: any)", min=0)] = None,
    no_cameras: Annotated[bool, typer.Option("--no-cameras", help="a node serving the API only")] = False,
    advertise: Annotated[Optional[str], typer.Option(help="URL other nodes reach this node's API at")] = None,
) -> None:
    """Run every camera of the config live, store events with evidence, and serve the HTTP API; with --node, run
    this process's share of them as one node of a cluster."""
    from pipeline.serve import serve as run

    cluster = {"node": node, "max_cameras": 0 if no_cameras else max_cameras, "advertise": advertise}
    run(config, cluster=cluster, data=data, database=db, host=host, port=port)


# the options of the commands that work on a site's store (`token`, `audit`)
StoreConfig = Annotated[Optional[Path], typer.Option("--config", "-c", help="site config whose store to use")]
StoreData = Annotated[Optional[str], typer.Option(help="data directory (default: the config's, or data)")]
StoreDb = Annotated[Optional[str], typer.Option(help="database URL instead of SQLite, e.g. postgresql+psycopg://...")]


def _open_store(config: Path | None, data: str | None, db: str | None) -> EventStore:
    """The store of a site config (--data and --db over its values), or of --data/--db alone."""
    from pydantic import ValidationError

    from pipeline.config import ServiceConfig
    from pipeline.serve import open_store, site_with_overrides

    if config is not None:
        service = site_with_overrides(config, data=data, database=db).service
    elif data is None and db is None:
        raise CctvError("which store? give --config (the site's), --data DIR or --db URL")
    else:
        try:
            service = ServiceConfig(data=data or "data", database=db)
        except ValidationError as exc:
            raise CctvError(f"--db: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return open_store(service)


TOKEN_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
token_app = typer.Typer(no_args_is_help=True, help="API tokens for the HTTP API (stored hashed).")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="viewer (read), operator (also review) or admin (also audit, tokens)")],
    name: Annotated[str, typer.Option(help="who holds the token; recorded in the audit log")],
    config: StoreConfig = None,
    data: StoreData = None,
    db: StoreDb = None,
    expires_days: Annotated[Optional[float], typer.Option(help="days until the token stops working")] = None,
    cameras: Annotated[Optional[str], typer.Option(help="limit it to these cameras (comma-separated)")] = None,
    groups: Annotated[Optional[str], typer.Option(help="limit it to these camera groups of the site config")] = None,
) -> None:
    """Create a token and print it once; only its hash is kept. With --cameras or --groups it sees nothing else."""
    if expires_days is not None and not (math.isfinite(expires_days) and expires_days > 0):
        raise CctvError(f"--expires-days must be a positive number of days, not {expires_days}")
    if not TOKEN_NAME.fullmatch(name):
        raise CctvError(f"--name {name[:40]!r}: 1-128 characters, no control characters")
    scope = {"cameras": _names(cameras), "groups": _names(groups)}
    if config is not None:
        from pipeline.config import load_config

        site = load_config(config)
        for kind, known in (("cameras", site.cameras), ("groups", site.groups)):
            unknown = sorted(set(scope[kind] or ()) - set(known))
            if unknown:
                raise CctvError(f"--{kind}: {', '.join(unknown)} not in {config} ({kind}: {', '.join(known) or 'none'})")
    with _open_store(config, data, db) as store:
        typer.echo(store.create_token(name, role, expires_days * 86400 if expires_days else None, **scope))


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


@token_app.command("list")
def token_list(config: StoreConfig = None, data: StoreData = None, db: StoreDb = None) -> None:
    """Every token issued: name, role, scope, expiry, state (never the token itself)."""
    with _open_store(config, data, db) as store:
        records, now = store.list_tokens(), store.clock()
    typer.echo(f"{'id':>4}  {'name':<20} {'role':<9} {'scope':<28} {'expires (UTC)':<17} state")
    for r in records:
        info = r.info
        scope = "all cameras" if info.cameras is None and info.groups is None else ", ".join(
            [*(info.cameras or ()), *(f"group {g}" for g in info.groups or ())]
        ) or "nothing"
        expires = "never" if info.expires_at is None else datetime.fromtimestamp(info.expires_at, UTC).strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{r.id:>4}  {info.name:<20} {info.role:<9} {scope:<28} {expires:<17} {r.state(now)}")


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Option(help="revoke every token issued under this name")],
    config: StoreConfig = None,
    data: StoreData = None,
    db: StoreDb = None,
) -> None:
    """Revoke a person's tokens (the API refuses them within 5 s)."""
    with _open_store(config, data, db) as store:
        count = store.revoke_tokens(name)
    if not count:
        raise CctvError(f"no live token named {name!r} (see `cctv token list`)")
    typer.echo(f"revoked {count} token(s) of {name}")


@app.command("export")
def export(
    event_id: Annotated[str, typer.Argument(help="the event's id")],
    reason: Annotated[str, typer.Option(help="who asked for the footage and why (required, audited)")],
    out: Annotated[Path, typer.Option(help="the ZIP to write (clip.mp4, snapshot.jpg, manifest.json)")],
    mask: Annotated[str, typer.Option(help="pixelate people and vehicles: others (all but the subject), all, none")] = "others",
    config: Annotated[Path, typer.Option("--config", "-c", help="site config (its store, and its detector for masking)")] = Path("configs/site.yaml"),
    data: StoreData = None,
    db: StoreDb = None,
    by: Annotated[str, typer.Option(help="who exports, for the manifest and the audit log")] = getpass.getuser(),
) -> None:
    """Export one event's footage for handing over, with third parties masked and a signed manifest."""
    from pipeline.detect import load_model
    from pipeline.export import MASK_OPTIONS, export_event
    from pipeline.serve import site_with_overrides

    site = site_with_overrides(config, data=data, database=db)
    detector = load_model(site.model, MASK_OPTIONS)
    with _open_store(config, data, db) as store:
        archive, manifest = export_event(store, event_id, reason=reason, actor=by, mask=mask, detector=detector)  # type: ignore[arg-type]
    try:
        out.write_bytes(archive)
    except OSError as exc:
        raise CctvError(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(f"{event_id}: {manifest['masked_boxes']} boxes masked ({mask}) -> {out}")


@app.command("verify-export")
def verify_export_command(
    archive: Annotated[Path, typer.Argument(help="an export ZIP")],
    config: StoreConfig = None,
    data: StoreData = None,
    db: StoreDb = None,
) -> None:
    """Check an export's files against its manifest and the manifest's signature with the site key."""
    from pipeline.export import site_key, verify_export

    with _open_store(config, data, db) as store:
        key = site_key(store.data_dir, create=False)
    manifest = verify_export(archive, key)
    event = manifest["event"]
    typer.echo(f"intact: event {event['id']} ({event['camera']}), exported by {manifest['exported_by']}: {manifest['reason']}")


audit_app = typer.Typer(no_args_is_help=True, help="The audit log: check its hash chain, export it.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(config: StoreConfig = None, data: StoreData = None, db: StoreDb = None) -> None:
    """Check every entry against its hash and the one before it; exit 1 on the first break.

    Keep the printed head hash elsewhere: deleting the newest entries is only visible against it.
    """
    with _open_store(config, data, db) as store:
        check = store.audit_verify()
    if not check.ok:
        typer.echo(f"error: {check.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {check.rows} entries, head {check.head}")


def _utc_time(text: str | None, option: str) -> float | None:
    """A date (YYYY-MM-DD) or ISO datetime as Unix seconds; one without an offset is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CctvError(f"{option} takes a date (YYYY-MM-DD) or an ISO datetime, not {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="CSV file to write")],
    since: Annotated[Optional[str], typer.Option(help="from this date or time, UTC (default: the oldest entry)")] = None,
    until: Annotated[Optional[str], typer.Option(help="up to (not including) this date or time, UTC")] = None,
    config: StoreConfig = None,
    data: StoreData = None,
    db: StoreDb = None,
) -> None:
    """Write the audit entries with since <= time < until, oldest first, as CSV (with each entry's hash)."""
    start, end = _utc_time(since, "--since"), _utc_time(until, "--until")
    with _open_store(config, data, db) as store:
        count = store.audit_export_csv(out, start, end)
    typer.echo(f"{count} entries -> {out}")


def main() -> None:
    """Entry point: any CctvError becomes `error: ...` on one line and exit status 2."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # our own one-line errors say what went wrong
    os.umask(0o077)  # what it writes (the store, tokens, evidence, exports, footage outputs) is its user's alone
    try:
        app()  # standalone: usage errors are printed by typer itself, also with status 2
    except CctvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
