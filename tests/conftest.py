"""Shared fixtures: one real replay of PETS09-S2L1 serves every test that needs its outputs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mosquitto import start_broker, stop_broker

from pipeline.assets import asset_dir
from pipeline.bench.live.process import free_port

ROOT = Path(__file__).resolve().parents[1]
PETS_CONFIG = ROOT / "configs" / "pets09.yaml"
FOOTAGE = asset_dir() / "footage"


def cctv(*args: object, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    cmd = [sys.executable, "-m", "pipeline.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def pets_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cctv replay` of PETS09 with the example config, an annotated video and a detection cache (in `cache/`)."""
    out = tmp_path_factory.mktemp("pets")
    result = cctv(
        "replay", FOOTAGE / "pets09-s2l1.avi", "--config", PETS_CONFIG, "--out", out, "--save-video", "--cache", out / "cache"
    )
    assert result.returncode == 0, result.stderr
    assert "events" in result.stdout
    return out


@pytest.fixture(scope="session")
def pets_truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ground-truth events for the example config, derived from PETS09's MOT ground truth."""
    from pipeline.config import load_config
    from pipeline.eval.truth import events_from_mot
    from pipeline.formats import write_jsonl

    cam = load_config(PETS_CONFIG).cameras["pets"]
    events = events_from_mot(FOOTAGE / "pets09-s2l1.gt.txt", cam, "pets", 10.0)
    path = tmp_path_factory.mktemp("truth") / "truth.jsonl"
    write_jsonl(path, events)
    return path


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An anonymous mosquitto broker on loopback for the session; yields its port."""
    port = free_port()
    proc = start_broker(tmp_path_factory.mktemp("mosquitto"), port, "allow_anonymous true")
    yield port
    stop_broker(proc)
