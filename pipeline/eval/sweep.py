"""`cctv sweep`: pick thresholds from evidence by replaying tracking and rules over cached detections.

The detector runs once per video (its detections are cached by `replay`); every grid point then
only re-runs the tracker, the filters and the rules, which takes about a second per point.
"""

from __future__ import annotations

import csv
import itertools
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.config import CameraConfig, deep_update, load_config
from pipeline.detcache import CachedRun, cache_key, load
from pipeline.engine import CameraRun
from pipeline.errors import CctvError
from pipeline.eval.scoring import Score, match_events
from pipeline.events import EventCollector
from pipeline.formats import read_events
from pipeline.replay import replay

GridPoint = dict[str, float]


@dataclass
class GridAxis:
    name: str  # as written in the grid, e.g. "person.min_score"
    values: list[float] | list[int]


def parse_grid(grid: str) -> list[GridAxis]:
    """`person.min_score=0.3:0.7:0.05,persistence=1:6`: inclusive ranges, step 1 when omitted."""
    axes = []
    for part in filter(None, (p.strip() for p in grid.split(","))):
        name, sep, spec = part.partition("=")
        try:
            if not sep:
                raise ValueError
            nums = [float(v) for v in spec.split(":")]
            lo, hi, step = (nums + [1.0])[:3] if len(nums) in (2, 3) else (nums[0], nums[0], 1.0)
            if step <= 0 or hi < lo or len(nums) > 3:
                raise ValueError
        except ValueError:
            raise CctvError(f"bad grid entry {part!r}: write NAME=LOW:HIGH[:STEP] or NAME=VALUE") from None
        count = int(np.floor((hi - lo) / step + 1e-9)) + 1
        values = [round(lo + i * step, 10) for i in range(count)]
        axes.append(GridAxis(name.strip(), [int(v) for v in values] if "." not in spec else values))
    if not axes:
        raise CctvError("empty grid: give e.g. --grid 'person.min_score=0.3:0.7:0.05,persistence=1:6'")
    return axes


def _kind(name: str, cam: CameraConfig) -> Literal["persistence", "tracker", "filter", "rule"]:
    """Which part of a camera config a grid parameter sets; unknown names are one clear error."""
    head, _, field = name.rpartition(".")
    if not head and field == "persistence":
        return "persistence"
    if head == "tracker":
        return "tracker"
    if head in cam.objects.track:
        return "filter"
    if head in {r.name for r in cam.rules}:
        return "rule"
    raise CctvError(
        f"unknown grid parameter {name!r}: use persistence, tracker.FIELD, CLASS.FIELD "
        f"(classes {cam.objects.track}) or RULE.FIELD (rules {[r.name for r in cam.rules]})"
    )


def override(cam: CameraConfig, point: GridPoint) -> CameraConfig:
    """The camera config with each grid value applied."""
    data = cam.model_dump()
    for name, value in point.items():
        head, _, field = name.rpartition(".")
        kind = _kind(name, cam)
        if kind == "persistence":
            data["objects"]["persistence"] = int(value)
        elif kind == "tracker":
            data["tracker"][field] = value
        elif kind == "filter":
            current = data["objects"]["filters"].get(head, {})
            data["objects"]["filters"][head] = deep_update(current, {field: int(value) if field == "persistence" else value})
        else:
            rule = next(r for r in data["rules"] if r["name"] == head)
            rule[field] = int(value) if field == "min_count" else value
    try:
        return CameraConfig.model_validate(data)
    except Exception as exc:
        raise CctvError(f"grid point {point} gives an invalid config: {str(exc).splitlines()[0]}") from None


def current(name: str, cam: CameraConfig) -> float:
    """The value a grid parameter has in the config now."""
    head, _, field = name.rpartition(".")
    kind = _kind(name, cam)
    if kind == "persistence":
        return cam.objects.persistence
    owner = {
        "tracker": lambda: cam.tracker,
        "filter": lambda: cam.objects.filter_for(head),
        "rule": lambda: next(r for r in cam.rules if r.name == head),
    }[kind]()
    return float(getattr(owner, field))


def config_change(camera: str, cam: CameraConfig, axes: list[GridAxis], row: dict[str, Any]) -> str:
    """The config keys, under `cameras`, that apply a row's grid values."""
    paths = {
        "persistence": lambda head, field: "objects.persistence",
        "tracker": lambda head, field: f"tracker.{field}",
        "filter": lambda head, field: f"objects.filters.{head}.{field}",
        "rule": lambda head, field: f"rules[name={head}].{field}",
    }
    changes = []
    for axis in axes:
        head, _, field = axis.name.rpartition(".")
        changes.append(f"cameras.{camera}.{paths[_kind(axis.name, cam)](head, field)}: {row[axis.name]:g}")
    return ", ".join(changes)


def events_over_cache(name: str, cam: CameraConfig, run: CachedRun) -> list[dict[str, Any]]:
    """The finished events tracking and rules give on cached detections."""
    collector = EventCollector()
    with CameraRun(name, cam, fps=run.fps, subscribers=[collector]) as camera:
        for frame in run.frames:
            camera.step(frame.pts, frame.index, frame.detections)
    return [e.to_dict() for e in collector.sorted()]


def _score_point(name: str, cam: CameraConfig, run: CachedRun, truth: list[dict[str, Any]], tol: float) -> dict[str, Score]:
    result = match_events(events_over_cache(name, cam, run), truth, tolerance=tol)
    return {**result.per_rule, "overall": result.overall}


@dataclass
class SweepResult:
    camera: str
    cam: CameraConfig
    axes: list[GridAxis]
    rows: list[dict[str, Any]]  # one per grid point and rule (and "overall")
    best: dict[str, dict[str, Any]]  # rule -> its best row
    default: dict[str, Score]


def sweep(
    config: str | Path,
    truth_path: str | Path,
    grid: str,
    camera: str | None = None,
    out: str | Path = "out/sweep",
    cache_dir: str | Path = "out/cache",
    tolerance: float = 2.0,
    workers: int = 2,
) -> SweepResult:
    config = Path(config)
    out = Path(out)
    site = load_config(config)
    name, cam = site.camera(camera)
    axes = parse_grid(grid)
    points = [dict(zip((a.name for a in axes), values)) for values in itertools.product(*(a.values for a in axes))]
    cams = [override(cam, p) for p in points]  # every point is checked before any work
    truth = [t for t in read_events(truth_path) if t.get("camera", name) == name]
    cache = Path(cache_dir) / f"{cache_key(str(cam.source), site.model.path, cam)}.npz"
    if not cache.exists():
        replay(None, config, name, out / "detector-run", cache_dir=cache_dir)
    run = load(cache)
    default = _score_point(name, cam, run, truth, tolerance)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        scores = list(pool.map(_score_point, *zip(*[(name, c, run, truth, tolerance) for c in cams])))
    rows = [
        {**point, "rule": rule, "tp": s.tp, "fp": s.fp, "fn": s.fn,
         "precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4)}
        for point, per_rule in zip(points, scores)
        for rule, s in per_rule.items()
    ]
    now = {a.name: current(a.name, cam) for a in axes}

    def preference(row: dict[str, Any]) -> tuple[float, float, float]:
        """Best F1, then precision, then the smallest change from the config as it is."""
        change = sum(abs(row[k] - v) / (max(a.values) - min(a.values) or 1) for a in axes for k, v in [(a.name, now[a.name])])
        return (row["f1"], row["precision"], -change)

    best = {}
    for rule in dict.fromkeys(r["rule"] for r in rows):
        best[rule] = max((r for r in rows if r["rule"] == rule), key=preference)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sweep.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = SweepResult(name, cam, axes, rows, best, default)
    plot(result, out)
    return result


def plot(result: SweepResult, out: Path) -> None:
    """Precision-recall per rule with the best point marked; F1 against each swept parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = list(result.best)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for rule in rules:
        mine = [r for r in result.rows if r["rule"] == rule]
        line = ax.scatter([r["recall"] for r in mine], [r["precision"] for r in mine], s=14, alpha=0.6, label=rule)
        b = result.best[rule]
        ax.scatter([b["recall"]], [b["precision"]], s=160, marker="*", color=line.get_facecolor()[0], edgecolor="k")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Precision-recall per rule (★ best F1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pr.png", dpi=100)
    plt.close(fig)
    for axis in result.axes:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for rule in rules:
            mine = [r for r in result.rows if r["rule"] == rule]
            best_f1 = [max(r["f1"] for r in mine if r[axis.name] == v) for v in axis.values]
            ax.plot(axis.values, best_f1, marker="o", label=rule)
        ax.set_xlabel(axis.name)
        ax.set_ylabel("F1 (best over the other parameters)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"f1_vs_{axis.name.replace('.', '_')}.png", dpi=100)
        plt.close(fig)
