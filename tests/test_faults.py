"""No event lost when the store fails (a real fault: the SQLite database locked by another process for longer
than the service's 5 s busy timeout), and nothing lost across a restart made while it was failing; a corrupt
database refused at start in one line."""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from pathlib import Path

from conftest import cctv
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


def test_events_raised_while_the_store_is_locked_are_spooled_and_written_across_a_restart(tmp_path: Path) -> None:
    service = start_service(tmp_path, {"pets": pets_camera()})
    try:
        service.wait_for("a first event", lambda: _events(service), 90)
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
        numbers: dict[str, list[int]] = defaultdict(list)
        for event in events:
            run, n = str(event["id"]).rsplit("-", 1)
            numbers[run].append(int(n))
        for run, seen in numbers.items():  # per connection, ids are numbered from 1: none missing, none twice
            assert sorted(seen) == list(range(1, len(seen) + 1)), run
        first_run = min(numbers)
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
