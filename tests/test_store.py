"""Event store against the embedded SQLite file and a real PostgreSQL server on loopback."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import Opener, fill_disk
from sqlalchemy import inspect, text

from pipeline.bench.live.process import free_port
from pipeline.errors import CctvError
from pipeline.events import Event, EventBus, EventChange
from pipeline.store import EventNotFound, EventStore, RetentionPolicy, alembic_config, migrate
from pipeline.store.models import Base


def make_event(n: int, **overrides: object) -> Event:
    base = Event(
        id=f"cam1-{n:06d}",
        camera="cam1",
        rule="door",
        type="intrusion",
        label="person",
        track_id=n,
        start=100.0 + n,
        start_frame=1000 + n,
        score=0.5,
        box=(1.0, 2.0, 3.5, 4.25),
        priority=2,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_apply_round_trip_keeps_every_field(open_store: Opener) -> None:
    store = open_store()
    bus = EventBus()
    bus.subscribe(store.apply)
    started = make_event(1, zone="lobby", line="gate", direction="in", count=3, entered_at=99.5)
    bus.publish(EventChange("start", started))
    first = store.get(started.id)
    assert first.event == started and first.review_state == "unreviewed"
    bus.publish(EventChange("update", replace(started, score=0.9, box=(0.0, 0.5, 8.0, 9.0))))
    ended = replace(started, score=0.9, box=(0.0, 0.5, 8.0, 9.0), end=130.25, end_frame=1300)
    bus.publish(EventChange("end", ended))
    stored = store.get(started.id)
    assert stored.event == ended
    assert stored.created_at == first.created_at and stored.updated_at >= first.updated_at
    assert (stored.clip, stored.snapshot, stored.thumbnail) == (None, None, None)


def test_query_filters(open_store: Opener) -> None:
    store = open_store()
    events = [
        make_event(1),
        make_event(2, camera="cam2", id="cam2-000001"),
        make_event(3, rule="fence", type="loitering", label="car", score=0.95),
        make_event(4, start=500.0),
    ]
    for e in events:
        store.apply(EventChange("start", e))
    store.review("cam1-000001", "escalate", "ann")

    def ids(**filters: object) -> list[str]:
        items, _ = store.query(**filters)  # type: ignore[arg-type]
        return [s.event.id for s in items]

    assert ids() == ["cam1-000004", "cam1-000003", "cam2-000001", "cam1-000001"]
    assert ids(camera="cam2") == ["cam2-000001"]
    assert ids(rule="fence") == ids(type="loitering") == ids(label="car") == ids(min_score=0.9) == ["cam1-000003"]
    assert ids(review_state="escalated") == ["cam1-000001"]
    assert ids(since=102.0, until=200.0) == ["cam1-000003", "cam2-000001"]
    assert ids(camera="cam1", until=103.0) == ["cam1-000001"]
    with pytest.raises(CctvError, match="review state"):
        store.query(review_state="done")


def test_cursor_pagination_returns_each_event_once_in_order(open_store: Opener) -> None:
    store = open_store()
    for n in range(25):  # ties on start exercise the id tie-break across page boundaries
        store.apply(EventChange("start", make_event(n, start=float(n // 3))))
    seen: list[tuple[float, str]] = []
    cursor = None
    while True:
        items, cursor = store.query(limit=4, cursor=cursor)
        seen += [(s.event.start, s.event.id) for s in items]
        if cursor is None:
            break
    assert len(seen) == 25 == len(set(seen))
    assert seen == sorted(seen, key=lambda k: (-k[0], k[1]))
    with pytest.raises(CctvError, match="bad cursor"):
        store.query(cursor="not-a-cursor")


def test_reviews_state_and_audit_log(open_store: Opener) -> None:
    store = open_store()
    store.apply(EventChange("start", make_event(1)))
    store.review("cam1-000001", "acknowledge", "ann", "seen it")
    assert store.get("cam1-000001").review_state == "acknowledged"
    store.review("cam1-000001", "false_positive", "bob")
    assert store.get("cam1-000001").review_state == "false_positive"
    store.review("cam1-000001", "reopen", "ann")
    assert store.get("cam1-000001").review_state == "unreviewed"
    history = store.reviews("cam1-000001")
    assert [(r.action, r.operator, r.note) for r in history] == [
        ("acknowledge", "ann", "seen it"),
        ("false_positive", "bob", None),
        ("reopen", "ann", None),
    ]
    with pytest.raises(EventNotFound, match="no event 'nope'"):
        store.review("nope", "acknowledge", "ann")
    with pytest.raises(EventNotFound):
        store.get("nope")
    with pytest.raises(CctvError, match="unknown review action 'delete'"):
        store.review("cam1-000001", "delete", "ann")
    store.audit("ann", "export", "cam1-000001", {"format": "mp4"})
    entries, cursor = store.audit_log(limit=2)
    assert [(e.actor, e.action, e.event_id, e.detail) for e in entries] == [
        ("ann", "export", "cam1-000001", {"format": "mp4"}),
        ("ann", "review.reopen", "cam1-000001", {"note": None}),
    ]
    rest, last = store.audit_log(limit=10, cursor=cursor)
    assert [e.action for e in rest] == ["review.false_positive", "review.acknowledge"] and last is None


def test_reopen_keeps_events_and_reviews(open_store: Opener) -> None:
    store = open_store()
    store.apply(EventChange("start", make_event(1)))
    store.review("cam1-000001", "escalate", "ann", "call guard")
    store.close()
    again = open_store()
    assert again.get("cam1-000001").review_state == "escalated"
    assert [r.note for r in again.reviews("cam1-000001")] == ["call guard"]


def test_open_creates_schema_at_head_and_sqlite_pragmas(open_store: Opener) -> None:
    store = open_store()
    inspector = inspect(store.engine)
    assert {"events", "reviews", "audit_log", "api_tokens", "cluster_nodes", "camera_leases", "alembic_version"} <= set(inspector.get_table_names())
    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    with store.engine.connect() as conn:
        assert head == "0005" and conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
        if store.engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    migrate(store.engine)  # at head already: a no-op


def test_migrations_match_the_models(open_store: Opener) -> None:
    store = open_store()
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_open_upgrades_an_older_database(open_store: Opener) -> None:
    store = open_store()
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert "events" not in inspect(store.engine).get_table_names()
    store.close()
    store = open_store()
    store.apply(EventChange("start", make_event(1)))
    assert store.get("cam1-000001").event == make_event(1)


def test_bad_target_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CctvError, match="needs a data dir"):
        EventStore.open("postgresql+psycopg://u@127.0.0.1:1/x")
    with pytest.raises(CctvError, match="cannot open event database"):
        EventStore.open(f"postgresql+psycopg://u@127.0.0.1:{free_port()}/x", tmp_path)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _with_clips(store: EventStore, sizes: list[int], snapshots: bool = False) -> list[Path]:
    """One event per size, each a day newer than the last, with a clip of that many bytes."""
    clips = []
    for n, size in enumerate(sizes):
        store.clock.now += 86400  # type: ignore[attr-defined]
        store.apply(EventChange("start", make_event(n)))
        clip = store.data_dir / "evidence" / f"{n}.mp4"
        clip.parent.mkdir(parents=True, exist_ok=True)
        clip.write_bytes(b"x" * size)
        snapshot = f"evidence/{n}.jpg"
        if snapshots:
            (store.data_dir / snapshot).write_bytes(b"j")
        store.set_evidence(make_event(n).id, clip=f"evidence/{n}.mp4", snapshot=snapshot if snapshots else None)
        clips.append(clip)
    return clips


def test_retention_per_camera_and_escalated_evidence_kept_until_released(open_store: Opener) -> None:
    store = open_store()
    store.clock = Clock()
    clips = _with_clips(store, [100, 100, 100, 100])  # ages 3, 2, 1, 0 days
    store.apply(EventChange("start", replace(make_event(1), camera="cam2")))  # event 1 on a camera kept 1.5 days
    store.review(make_event(0).id, "escalate", "op")  # a case under investigation
    deleted = store.retain(RetentionPolicy(max_age_seconds=86400 * 30, camera_ages={"cam2": 86400 * 1.5}))
    assert deleted == ["evidence/1.mp4"]  # cam1's 30 days keep the rest; the escalated one is not even looked at
    assert store.retain(RetentionPolicy(max_age_seconds=86400 * 2.5)) == []  # event 0 is older, but escalated
    assert clips[0].exists()
    store.review(make_event(0).id, "release", "op")
    assert store.get(make_event(0).id).review_state == "released"
    assert store.retain(RetentionPolicy(max_age_seconds=86400 * 2.5)) == ["evidence/0.mp4"]
    _assert_consistent(store)


def _assert_consistent(store: EventStore) -> None:
    """Every stored path names an existing file and every evidence file is named by a row."""
    items, _ = store.query(limit=1000)
    named = {store.data_dir / p for s in items for p in (s.clip, s.snapshot, s.thumbnail) if p}
    assert all(p.is_file() for p in named)
    assert {p for p in (store.data_dir / "evidence").rglob("*") if p.is_file()} == named


def test_retention_by_age_and_byte_budget_removes_oldest_first(open_store: Opener) -> None:
    store = open_store()
    store.clock = Clock()
    clips = _with_clips(store, [100, 200, 300, 400], snapshots=True)
    deleted = store.retain(RetentionPolicy(max_age_seconds=86400 * 2.5))  # ages 3, 2, 1, 0 days: only event 0 is too old
    assert deleted == ["evidence/0.mp4", "evidence/0.jpg"]
    assert not clips[0].exists() and store.get("cam1-000000").clip is None
    assert store.get("cam1-000000").event == make_event(0)  # the event itself is kept
    _assert_consistent(store)
    assert store.retain(RetentionPolicy(max_clip_bytes=600)) == ["evidence/1.mp4", "evidence/2.mp4"]  # 900 -> 700 -> 400
    assert [c.exists() for c in clips] == [False, False, False, True]
    assert store.get("cam1-000001").snapshot == "evidence/1.jpg"  # the budget is for clips only
    _assert_consistent(store)
    assert store.retain(RetentionPolicy(max_clip_bytes=400)) == []
    entries, _ = store.audit_log()
    assert entries[0].action == "retain" and entries[0].detail == {"deleted": ["evidence/1.mp4", "evidence/2.mp4"]}


def test_free_space_is_kept_oldest_evidence_first_even_when_the_database_shares_the_full_disk(
    small_disk: Callable[[int], Path],
) -> None:
    """A real 8 MB tmpfs: retention frees what the minimum asks, oldest first; once the disk is full, SQLite on
    it cannot record the deletion, so the files go first and their paths are cleared when it can write again."""
    data = small_disk(8)
    store = EventStore.open(data, data)
    store.clock = Clock()
    clips = _with_clips(store, [1_000_000] * 4)
    free = shutil.disk_usage(data).free
    assert store.retain(RetentionPolicy(min_free_bytes=free)) == []  # enough already
    assert store.retain(RetentionPolicy(min_free_bytes=free + 1_500_000)) == ["evidence/0.mp4", "evidence/1.mp4"]
    assert shutil.disk_usage(data).free >= free + 1_500_000
    _assert_consistent(store)

    fill_disk(data / "filler")  # not evidence: retention cannot delete it
    assert store.retain(RetentionPolicy(min_free_bytes=500_000)) == ["evidence/2.mp4"]
    assert not clips[2].exists() and store.get(make_event(2).id).clip == "evidence/2.mp4"  # not recorded yet
    assert clips[3].exists()  # the minimum was met by the oldest alone
    (data / "filler").unlink()
    assert store.retain(RetentionPolicy(min_free_bytes=500_000)) == []
    assert store.get(make_event(2).id).clip is None  # cleared once the database could write
    entries, _ = store.audit_log()
    assert entries[0].action == "clear_missing" and entries[0].detail == {"paths": ["evidence/2.mp4"]}
    _assert_consistent(store)
    store.close()


def test_reconcile_after_crash(open_store: Opener) -> None:
    store = open_store()
    store.clock = Clock()
    clips = _with_clips(store, [10, 20])
    clips[1].unlink()  # crash after the unlink, before the row was cleared
    orphan = store.data_dir / "evidence" / "cam1" / "lost.mp4"  # crash after the row was cleared, before the unlink
    orphan.parent.mkdir()
    orphan.write_bytes(b"o")
    os.utime(orphan, (0, 0))
    recording = store.data_dir / "evidence" / "recording.mp4"  # being written, its path not stored yet
    recording.write_bytes(b"r")
    store.close()
    store = open_store()  # open reconciles
    assert not orphan.exists() and recording.exists() and clips[0].exists()
    assert store.get("cam1-000001").clip is None and store.get("cam1-000000").clip == "evidence/0.mp4"
    os.utime(recording, (0, 0))
    assert store.reconcile() == ([], ["evidence/recording.mp4"])
    _assert_consistent(store)


def test_evidence_paths_must_stay_in_evidence_dir(open_store: Opener) -> None:
    store = open_store()
    store.apply(EventChange("start", make_event(1)))
    for bad in ["/etc/passwd", "evidence/../events.db", "clips/a.mp4"]:
        with pytest.raises(CctvError, match="must be relative to the data dir"):
            store.set_evidence("cam1-000001", clip=bad)
    with pytest.raises(EventNotFound):
        store.set_evidence("nope", clip="evidence/a.mp4")
