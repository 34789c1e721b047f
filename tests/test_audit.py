"""The audit log's hash chain: verification finds edited and deleted rows, purge and export keep it whole,
and the migration that added it chains the entries already there; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from conftest import Opener, cctv
from sqlalchemy import text
from test_store import Clock, make_event

from pipeline.events import EventChange
from pipeline.store import AuditCheck, EventStore, alembic_config
from pipeline.store import audit as audit_module
from pipeline.store.audit import row_hash

DAY = 86400.0
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
ACTIONS = ["token.create", "token.revoke", "review.acknowledge", "view_clip", "export"]


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Walks of the log cross page boundaries even in these short logs."""
    monkeypatch.setattr(audit_module, "PAGE", 2)


def _sql(store: EventStore, statement: str, **params: object) -> None:
    """Change the database behind the store's back, as anyone with access to the file or server could."""
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def _fill(store: EventStore) -> list[int]:
    """One entry from each part of the store that audits (ACTIONS); returns their ids, oldest first."""
    store.create_token("ann", "operator")
    store.revoke_tokens("ann")
    store.apply(EventChange("start", make_event(1)))
    store.review("cam1-000001", "acknowledge", "bob", "seen it")
    store.audit_view("bob", "clip", "cam1-000001")
    store.audit("bob", "export", "cam1-000001", {"format": "mp4", "이름": "관리자"}, camera="cam1", source="10.0.0.7")
    entries, _ = store.audit_log()
    assert [e.action for e in reversed(entries)] == ACTIONS
    return [e.id for e in reversed(entries)]


def test_chain_is_intact_after_entries_from_every_source(open_store: Opener) -> None:
    store = open_store()
    _fill(store)
    entries, _ = store.audit_log()
    assert (entries[0].camera, entries[0].source) == ("cam1", "10.0.0.7")
    assert store.audit_verify() == AuditCheck(True, len(ACTIONS), head=entries[0].hash)


def test_concurrent_appenders_never_fork_the_chain(open_store: Opener) -> None:
    store = open_store()

    def append(n: int) -> None:
        for i in range(10):
            store.audit(f"user{n}", "view_clip", f"cam1-{i:06d}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(append, range(4)))
    check = store.audit_verify()
    assert check.ok and check.rows == 40


def test_edited_row_is_found(open_store: Opener) -> None:
    store = open_store()
    ids = _fill(store)
    _sql(store, "UPDATE audit_log SET detail = :detail WHERE id = :id", detail='{"name":"mallory","count":1}', id=ids[1])
    problem = f"audit row {ids[1]} was altered (its hash does not match its content)"
    assert store.audit_verify() == AuditCheck(False, 1, ids[1], problem)


def test_rewritten_row_with_a_fresh_hash_is_found(open_store: Opener) -> None:
    store = open_store()
    ids = _fill(store)
    first = store.audit_log(limit=len(ids))[0][-1]
    forged = row_hash(first.id, first.at, "mallory", first.action, None, None, None, first.detail, "0" * 64)
    _sql(store, "UPDATE audit_log SET actor = 'mallory', hash = :hash WHERE id = :id", hash=forged, id=ids[0])
    problem = f"audit row {ids[0]} was rewritten (row {ids[1]}'s prev_hash is not its hash)"
    assert store.audit_verify() == AuditCheck(False, 1, ids[0], problem)


def test_deleted_middle_row_is_found(open_store: Opener) -> None:
    store = open_store()
    ids = _fill(store)
    _sql(store, "DELETE FROM audit_log WHERE id = :id", id=ids[2])
    problem = f"audit rows missing between {ids[1]} and {ids[3]} (row {ids[3]}'s prev_hash is not row {ids[1]}'s hash)"
    assert store.audit_verify() == AuditCheck(False, 2, ids[3], problem)


def test_purge_keeps_the_chain_verifiable(open_store: Opener) -> None:
    store = open_store()
    store.clock = clock = Clock()
    made = []
    for day in range(5):  # ages 4, 3, 2, 1, 0 days
        clock.now += DAY
        made.append(store.audit("ann", "view_clip", f"cam1-{day:06d}"))
    assert store.audit_purge(2.5 * DAY) == 2
    entries, _ = store.audit_log()
    assert [e.event_id for e in reversed(entries)] == ["cam1-000002", "cam1-000003", "cam1-000004", None]
    purge = entries[0]
    assert (purge.actor, purge.action) == ("retention", "audit.purge")
    assert purge.detail == {"through_id": made[1].id, "last_hash": made[1].hash, "count": 2}
    assert store.audit_verify() == AuditCheck(True, 4, head=purge.hash)
    assert store.audit_purge(2.5 * DAY) == 0 and len(store.audit_log()[0]) == 4  # nothing old: no entry either

    _sql(store, "DELETE FROM audit_log WHERE id = :id", id=made[2].id)
    check = store.audit_verify()
    assert (check.ok, check.first_bad_id) == (False, made[3].id)
    assert check.problem is not None and check.problem.startswith(f"audit rows missing before row {made[3].id} ")


def test_purging_every_entry_leaves_a_verifiable_purge_entry(open_store: Opener) -> None:
    store = open_store()
    store.clock = clock = Clock()
    head = store.audit("ann", "view_clip", "cam1-000001")
    clock.now += 10 * DAY
    assert store.audit_purge(DAY) == 1
    (purge,), _ = store.audit_log()
    assert purge.detail == {"through_id": head.id, "last_hash": head.hash, "count": 1}
    assert store.audit_verify() == AuditCheck(True, 1, head=purge.hash)


def test_export_csv_rows_and_bounds(open_store: Opener, tmp_path: Path) -> None:
    store = open_store()
    store.clock = clock = Clock()
    clock.now = NOV_1
    made = []
    for day in range(4):
        detail = {"day": day, "이름": "관리자"}
        made.append(store.audit("ann", "export", f"cam1-{day:06d}", detail, camera="cam1", source="10.0.0.7"))
        clock.now += DAY
    out = tmp_path / "audit.csv"
    assert store.audit_export_csv(out, since=NOV_1 + DAY, until=NOV_1 + 3 * DAY) == 2  # since in, until out
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == list(audit_module.CSV_HEADER)
    assert [r["id"] for r in rows] == [str(made[1].id), str(made[2].id)]
    assert rows[0] == {
        "id": str(made[1].id),
        "at": str(NOV_1 + DAY),
        "at_utc": "2026-11-02T00:00:00.000+00:00",
        "actor": "ann",
        "action": "export",
        "event_id": "cam1-000001",
        "camera": "cam1",
        "source": "10.0.0.7",
        "detail": '{"day":1,"이름":"관리자"}',
        "hash": made[1].hash,
    }
    everything = io.StringIO(newline="")
    assert store.audit_export_csv(everything) == 4
    assert store.audit_export_csv(io.StringIO(), since=NOV_1 + 4 * DAY) == 0


def test_migration_chains_the_entries_already_there(open_store: Opener) -> None:
    store = open_store()
    details = ['{"format":"mp4"}', None, '{"이름":"관리자"}']
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
        command.upgrade(alembic_config(conn), "0003")  # a database from before the chain, with entries
        for n, detail in enumerate(details):
            conn.execute(
                text("INSERT INTO audit_log (at, actor, action, event_id, detail) VALUES (:at, 'ann', 'view_clip', :e, :d)"),
                {"at": NOV_1 + n, "e": f"cam1-{n:06d}", "d": detail},
            )
    store.close()
    store = open_store()  # migrates to head, backfilling the chain
    entries, _ = store.audit_log()
    assert [e.detail for e in reversed(entries)] == [{"format": "mp4"}, None, {"이름": "관리자"}]
    assert store.audit_verify() == AuditCheck(True, 3, head=entries[0].hash)
    store.audit("ann", "export")
    assert store.audit_verify().rows == 4


def test_cli_verify_and_export(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "audit.csv"
    clock = Clock()
    clock.now = NOV_1 + 3600
    with EventStore.open(data, clock=clock) as store:
        ids = _fill(store)
        head = store.audit_log()[0][0].hash
    intact = cctv("audit", "verify", "--data", data)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.strip() == f"audit chain intact: {len(ids)} entries, head {head}"

    exported = cctv("audit", "export", "--since", "2026-11-01", "--until", "2026-12-01", "--out", out, "--data", data)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == f"{len(ids)} entries -> {out}"
    with out.open(newline="", encoding="utf-8") as file:
        assert [r["action"] for r in csv.DictReader(file)] == ACTIONS
    bad = cctv("audit", "export", "--since", "November", "--out", out, "--data", data)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --since takes a date (YYYY-MM-DD) or an ISO datetime, not 'November'"

    with EventStore.open(data) as store:
        _sql(store, "UPDATE audit_log SET actor = 'eve' WHERE id = :id", id=ids[2])
    broken = cctv("audit", "verify", "--data", data)
    assert broken.returncode == 1
    assert broken.stderr.strip() == f"error: audit row {ids[2]} was altered (its hash does not match its content)"
