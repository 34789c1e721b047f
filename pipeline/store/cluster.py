"""Cluster membership and camera leases in the shared database: which node runs which camera.

A node heartbeats its row; a camera is run by the node holding its lease, which that node renews
before `expires_at`. A lease is taken only when there is none or it has expired (one conditional
UPDATE or one INSERT, so two nodes racing for a camera cannot both win: the database decides), and a
node that dies simply stops renewing. Times are the nodes' wall clocks: keep them in sync (NTP), as
the lease length (seconds) is far above any sane skew.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pipeline.errors import CctvError
from pipeline.store.db import Database
from pipeline.store.models import LeaseRow, NodeRow


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    url: str
    capacity: int
    started_at: float
    heartbeat_at: float


@dataclass(frozen=True, slots=True)
class Lease:
    camera: str
    node: str
    acquired_at: float
    renewed_at: float
    expires_at: float


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    def join(self, node: str, url: str, capacity: int, fresh_seconds: float) -> None:
        """Register `node`; refused while a node of that name heartbeats (it is running somewhere else)."""
        now = self.db.clock()
        with self.db.sessions.begin() as session:
            row = session.get(NodeRow, node, with_for_update=True)
            if row is not None and now - row.heartbeat_at < fresh_seconds:
                raise NodeNameTaken(
                    f"node {node!r} is running already (heartbeat {now - row.heartbeat_at:.1f} s ago at {row.url}): "
                    f"give this one another --node, or wait {fresh_seconds:g} s after stopping that one"
                )
            if row is None:
                session.add(NodeRow(name=node, url=url, capacity=capacity, started_at=now, heartbeat_at=now))
            else:
                row.url, row.capacity, row.started_at, row.heartbeat_at = url, capacity, now, now

    def heartbeat(self, node: str, url: str, capacity: int) -> None:
        now = self.db.clock()
        with self.db.sessions.begin() as session:
            row = session.get(NodeRow, node)
            if row is None:  # removed by hand, or its row was lost: it is a member while it runs
                session.add(NodeRow(name=node, url=url, capacity=capacity, started_at=now, heartbeat_at=now))
            else:
                row.url, row.capacity, row.heartbeat_at = url, capacity, now

    def nodes(self) -> list[NodeInfo]:
        with self.db.sessions() as session:
            rows = session.scalars(select(NodeRow).order_by(NodeRow.name))
            return [NodeInfo(r.name, r.url, r.capacity, r.started_at, r.heartbeat_at) for r in rows]

    def leases(self) -> list[Lease]:
        """Every lease, without the cameras' states (a round of every node reads them all)."""
        columns = (LeaseRow.camera, LeaseRow.node, LeaseRow.acquired_at, LeaseRow.renewed_at, LeaseRow.expires_at)
        with self.db.sessions() as session:
            return [Lease(*row) for row in session.execute(select(*columns).order_by(LeaseRow.camera))]

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Each leased camera's state as its node last recorded it (for an API listing every camera)."""
        with self.db.sessions() as session:
            rows = session.execute(select(LeaseRow.camera, LeaseRow.status).where(LeaseRow.status.is_not(None)))
            return {camera: status for camera, status in rows}

    def claim(self, node: str, cameras: Sequence[str], seconds: float) -> list[str]:
        """Take those of `cameras` that no node holds (no lease, or one that has lapsed, or this node's own) for
        `seconds`; returns the ones taken. Two statements whatever the number: a conditional UPDATE of the
        lapsed leases and an INSERT ... ON CONFLICT DO NOTHING of the missing ones."""
        if not cameras:
            return []
        now = self.db.clock()
        times = {"acquired_at": now, "renewed_at": now, "expires_at": now + seconds}
        with self.db.sessions.begin() as session:
            taken = set(session.scalars(
                update(LeaseRow)
                .where(LeaseRow.camera.in_(list(cameras)), or_(LeaseRow.expires_at < now, LeaseRow.node == node))
                .values(node=node, status=None, **times)
                .returning(LeaseRow.camera)
            ))
            insert = postgresql.insert if self.db.engine.dialect.name == "postgresql" else sqlite.insert
            rows = [{"camera": camera, "node": node, **times} for camera in cameras if camera not in taken]
            if rows:
                taken.update(session.scalars(
                    insert(LeaseRow).values(rows).on_conflict_do_nothing(index_elements=["camera"]).returning(LeaseRow.camera)
                ))
        return [camera for camera in cameras if camera in taken]

    def renew(self, node: str, statuses: Mapping[str, dict[str, Any]], seconds: float) -> set[str]:
        """Extend this node's leases of these cameras, recording each one's state; returns those it still holds
        (a camera missing from the answer was taken by another node after its lease lapsed)."""
        if not statuses:
            return set()
        now = self.db.clock()
        with self.db.sessions.begin() as session:
            held = set(session.scalars(
                update(LeaseRow)
                .where(LeaseRow.node == node, LeaseRow.camera.in_(list(statuses)))
                .values(renewed_at=now, expires_at=now + seconds)
                .returning(LeaseRow.camera)
            ))
            if held:  # every state in one round trip (executemany)
                session.connection().execute(
                    update(LeaseRow).where(LeaseRow.camera == bindparam("key")).values(status=bindparam("state")),
                    [{"key": camera, "state": statuses[camera]} for camera in sorted(held)],
                )
        return held

    def release(self, node: str, cameras: Collection[str]) -> None:
        """Give up these cameras at once (a graceful stop or a rebalance), so another node need not wait."""
        with self.db.sessions.begin() as session:
            session.execute(delete(LeaseRow).where(LeaseRow.node == node, LeaseRow.camera.in_(list(cameras))))

    def leave(self, node: str) -> None:
        """A node stopping: its leases and its row go."""
        with self.db.sessions.begin() as session:
            session.execute(delete(LeaseRow).where(LeaseRow.node == node))
            session.execute(delete(NodeRow).where(NodeRow.name == node))


class NodeNameTaken(CctvError):
    """Another running process already uses this node name."""
