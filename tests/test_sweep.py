"""Threshold sweeps replay tracking and rules over the detections cached by a real PETS09 replay."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import PETS_CONFIG, cctv

from pipeline.config import load_config
from pipeline.detcache import cache_key, load
from pipeline.errors import CctvError
from pipeline.eval.sweep import events_over_cache, override, parse_grid
from pipeline.formats import read_jsonl


def test_cached_detections_reproduce_the_replay_exactly(pets_run: Path) -> None:
    caches = list((pets_run / "cache").glob("*.npz"))
    assert len(caches) == 1 and caches[0].stat().st_size < 1_000_000  # compact: ~0.1 MB for 795 frames
    run = load(caches[0])
    assert run.fps == pytest.approx(10.0) and len(run.frames) == 795
    cam = load_config(PETS_CONFIG).cameras["pets"]
    assert events_over_cache("pets", cam, run) == read_jsonl(pets_run / "events.jsonl")


def test_sweep_writes_table_and_plots_and_beats_the_default(pets_run: Path, pets_truth: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    grid = "person.min_score=0.3:0.5:0.1,persistence=2:3"
    result = cctv("sweep", "--config", PETS_CONFIG, "--truth", pets_truth, "--grid", grid, "--out", out, "--cache", pets_run / "cache")
    assert result.returncode == 0, result.stderr
    assert not (out / "detector-run").exists()  # the cache was used: no detector run
    rows = (out / "sweep.csv").read_text().splitlines()
    assert rows[0] == "person.min_score,persistence,rule,tp,fp,fn,precision,recall,f1"
    assert len(rows) == 1 + 6 * 5  # 3 x 2 grid points, 4 rules + overall
    for png in ("pr.png", "f1_vs_person_min_score.png", "f1_vs_persistence.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best, default = map(float, re.search(r"overall\s+best F1 ([\d.]+) \(default ([\d.]+)\)", result.stdout).groups())
    assert best >= default >= 0.85


def test_grid_errors_are_one_line() -> None:
    cam = load_config(PETS_CONFIG).cameras["pets"]
    assert [a.values for a in parse_grid("person.min_score=0.3:0.5:0.1,persistence=1:3")] == [[0.3, 0.4, 0.5], [1, 2, 3]]
    with pytest.raises(CctvError, match="bad grid entry 'person.min_score=0.5:0.3'"):
        parse_grid("person.min_score=0.5:0.3")
    with pytest.raises(CctvError, match="unknown grid parameter 'car.min_score'"):
        override(cam, {"car.min_score": 0.5})
    assert override(cam, {"west-loiter.min_seconds": 5.0}).rules[2].min_seconds == 5.0
    assert override(cam, {"tracker.lost_seconds": 2.0, "persistence": 4}).objects.persistence == 4


def test_cache_key_follows_video_and_settings(tmp_path: Path) -> None:
    cam = load_config(PETS_CONFIG).cameras["pets"]
    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights")
    a, b = tmp_path / "a.avi", tmp_path / "b.avi"
    a.write_bytes(b"one video")
    b.write_bytes(b"another video")
    key = cache_key(a, model, cam)
    assert key == cache_key(a, model, cam) != cache_key(b, model, cam)
    assert key != cache_key(a, model, cam.model_copy(update={"detect": cam.detect.model_copy(update={"fps": 5.0})}))
    assert key == cache_key(a, model, override(cam, {"persistence": 5}))  # downstream settings are what sweeps vary
