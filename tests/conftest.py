"""Shared fixtures: one real replay of PETS09-S2L1 serves every test that needs its outputs; event stores on
SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

import errno
import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mosquitto import start_broker, stop_broker

from pipeline.assets import asset_dir
from pipeline.bench.live.process import free_port
from pipeline.bench.postgres import PgCluster
from pipeline.store import EventStore

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


Opener = Callable[[], EventStore]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mounts real, small file systems (a tmpfs of so many MB) for disk-full faults; unmounted at the end."""
    mounts: list[Path] = []

    def mount(megabytes: int) -> Path:
        path = tmp_path / f"disk-{len(mounts)}"
        path.mkdir()
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(path)]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode:
            pytest.fail(f"cannot mount a tmpfs for the disk-full tests (run them as root): {done.stderr.strip()}")
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def fill_disk(path: Path) -> int:
    """Write `path` until its file system is full (a real ENOSPC for everything after); returns its size."""
    block = b"\0" * 65536
    with path.open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        try:
            while True:  # the last few kilobytes
                filler.write(b"\0" * 512)
        except OSError:
            pass
    return path.stat().st_size


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgCluster]:
    """One PostgreSQL cluster for the session's stores."""
    cluster = PgCluster()
    yield cluster
    cluster.remove()


_db_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens (and reopens) one fresh store of the backend; every store it opened is closed at the end."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        target: str | Path = data_dir
    else:
        target = request.getfixturevalue("postgres_server").create_database(f"store_{next(_db_numbers)}")
    opened: list[EventStore] = []

    def opener() -> EventStore:
        opened.append(EventStore.open(target, data_dir))
        return opened[-1]

    yield opener
    for store in opened:
        store.close()
