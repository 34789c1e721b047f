"""No event lost when the store fails, each fault made for real: the SQLite database locked by another process
for longer than the service's 5 s busy timeout (and a restart made while it was failing), the data dir's disk
full (a tmpfs), PostgreSQL stopped; a corrupt database refused at start in one line."""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from conftest import PgCluster, cctv, fill_disk
from harness import Service, pets_camera, start_service

from pipeline.live.writer import SPOOL_FILE

LOCK_S = 20.0


def _events(service: Service) -> list[dict[str, object]]:
    items, cursor = [], None
    while True:
        page = service.get("/api/events", params={"limit": 1000} | ({"cursor": cursor} if cursor else {})).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _assert_none_lost(events: list[dict[str, object]]) -> None:
    """Per connection, event ids are numbered from 1: none may be missing, none there twice."""
    numbers: dict[str, list[int]] = defaultdict(list)
    for event in events:
        run, n = str(event["id"]).rsplit("-", 1)
        numbers[run].append(int(n))
    for run, seen in numbers.items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), run


def _assert_private(data: Path) -> None:
    """The data dir, the database and the evidence are the service user's alone."""
    assert data.stat().st_mode & 0o777 == 0o700
    modes = {p: mode for p in data.rglob("*") if p.name != "site.yaml" and (mode := _mode(p)) is not None}
    assert any(p.name == "events.db" for p in modes) and any(p.suffix == ".jpg" for p in modes)
    assert all(mode & 0o077 == 0 for mode in modes.values()), {p: oct(mode) for p, mode in modes.items()}


def _mode(path: Path) -> int | None:
    """A file's mode, or None for one renamed or removed since it was listed (a clip's .part, a sqlite journal)."""
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        return None


def _degraded(service: Service) -> dict[str, object]:
    return service.wait_for("degraded health", lambda: (h := service.get("/api/health", role=None).json())
                            ["status"] == "degraded" and h, 30)  # type: ignore[return-value]


def _recovered(service: Service) -> None:
    ok = {"status": "ok", "store_reason": None, "spooled_writes": 0}
    service.wait_for("the store back", lambda: service.get("/api/health", role=None).json() == ok, 60)


def _analysing(service: Service, seconds: float) -> None:
    """The camera stays live and analyses all along (checked each second for `seconds`)."""
    before = service.get("/api/cameras/pets").json()["frames_analysed"]
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(1)
        camera = service.get("/api/cameras/pets").json()
        assert camera["status"] == "live", camera
    assert camera["frames_analysed"] > before + 2 * seconds, (before, camera)  # 5 fps sampled, at least 2 analysed


def test_events_raised_while_the_store_is_locked_are_spooled_and_written_across_a_restart(tmp_path: Path) -> None:
    service = start_service(tmp_path, {"pets": pets_camera()})
    try:
        # the evidence thread writes the snapshot a moment after the event is stored: wait for both
        service.wait_for("a first event and its snapshot", lambda: any(e["snapshot_url"] for e in _events(service)), 90)
        _assert_private(service.data)
        lock = sqlite3.connect(service.data / "events.db", timeout=30)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the database: every write of the service fails
        locked_at = time.time()
        health = service.wait_for("degraded health", lambda: (h := service.get("/api/health", role=None).json())
                                  ["status"] == "degraded" and h, 30)
        assert "locked" in health["store_reason"]
        first = _events(service)[0]["id"]
        review = service.post(f"/api/events/{first}/review", {"action": "acknowledge"})
        assert review.status_code == 503 and "event store unavailable" in review.json()["detail"]
        metrics = service.get("/metrics").text
        assert "cctv_store_up 0.0" in metrics
        service.wait_for("spooled writes", lambda: service.get("/api/health", role=None).json()["spooled_writes"] > 3,
                         LOCK_S)
        while time.time() - locked_at < LOCK_S:  # the camera goes on raising events meanwhile
            time.sleep(0.5)
        assert service.get("/api/cameras/pets").json()["status"] == "live"
        code, output = service.stop()  # still locked: what the store did not take stays in the spool
        assert code == 0, output
        spooled = (service.data / SPOOL_FILE).read_text().splitlines()
        assert len(spooled) > 3
        lock.rollback()
        lock.close()

        service.start()  # the spool is written before anything else
        assert not (service.data / SPOOL_FILE).exists()
        assert service.get("/api/health", role=None).json() == {"status": "ok", "store_reason": None, "spooled_writes": 0}
        events = _events(service)
        during = [e for e in events if float(e["start"]) > locked_at]
        assert during, "no event started while the store was locked"
        _assert_none_lost(events)
        first_run = min(str(e["id"]).rsplit("-", 1)[0] for e in events)
        assert all(e["end"] is not None for e in events if str(e["id"]).startswith(first_run))
        assert any(e["clip_url"] for e in during)
    finally:
        service.close()


def test_a_corrupt_database_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "events.db").write_bytes(b"this is not a database" * 100)
    done = cctv("token", "create", "--role", "viewer", "--name", "x", "--data", data)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "file is not a database" in done.stderr


def _stale_parts(data: Path) -> list[Path]:
    """Partial files older than a clip's write interval: an aborted clip left behind."""
    now = time.time()
    return [p for p in (data / "evidence").rglob(".*.part") if p.exists() and now - p.stat().st_mtime > 3]


def test_a_full_disk_loses_no_event_and_the_camera_goes_on(tmp_path: Path, small_disk: Callable[[int], Path]) -> None:
    """The data dir on a real 64 MB tmpfs, filled by another file: events wait in memory (the spool's disk is
    the full one), clips that cannot be written are removed at once, and all is written once there is room."""
    data = small_disk(64) / "data"
    service = start_service(tmp_path, {"pets": pets_camera()}, data=data, retention={"min_free_gb": None})
    try:
        service.wait_for("a finished event", service.finished_event)
        filler = data.parent / "filler"
        fill_disk(filler)
        full_at = time.time()
        for _ in range(20):  # the camera goes on; what could not be written is gone, not left half-written
            _analysing(service, 1)
            assert not _stale_parts(data)
        health = service.get("/api/health", role=None).json()
        assert health["status"] == "degraded" and "No space left on device" in health["store_reason"], health
        first = _events(service)[0]["id"]
        # SQLite may still fit a small write (the WAL reuses its pages after a checkpoint, a failed clip frees
        # its bytes): the review is then stored, else refused with a 503; never a 500, never half-stored
        review = service.post(f"/api/events/{first}/review", {"action": "acknowledge"})
        assert review.status_code in (200, 503), review.text
        filler.unlink()
        _recovered(service)
        events = _events(service)
        state = next(e for e in events if e["id"] == first)["review_state"]
        assert state == ("acknowledged" if review.status_code == 200 else "unreviewed"), (review.text, state)
        assert [e for e in events if float(e["start"]) > full_at], "no event started while the disk was full"
        _assert_none_lost(events)
        code, output = service.stop()
        assert code == 0 and "Traceback" not in output, output
    finally:
        service.close()


def test_a_postgresql_outage_loses_no_event(tmp_path: Path) -> None:
    """The event store on a real PostgreSQL server, stopped for 20 s while the camera raises events."""
    cluster = PgCluster()
    try:
        url = cluster.create_database("outage")
        service = start_service(tmp_path, {"pets": pets_camera()}, database=url)
        try:
            service.wait_for("a first event", lambda: _events(service), 90)
            cluster.stop()
            down_at = time.time()
            health = _degraded(service)
            assert "OperationalError" in str(health["store_reason"]), health
            _analysing(service, 20)
            assert service.get("/api/health", role=None).json()["spooled_writes"] > 3
            assert service.get("/api/events").status_code == 503
            cluster.start()
            _recovered(service)
            events = _events(service)
            assert [e for e in events if float(e["start"]) > down_at], "no event started while PostgreSQL was down"
            _assert_none_lost(events)
        finally:
            service.close()
    finally:
        cluster.remove()
