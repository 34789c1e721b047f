"""The cluster: its nodes, which camera each runs, and how fresh their leases are (admin of the whole site)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException, status

from pipeline.api.auth import SiteAdmin
from pipeline.api.deps import AUTH_ERRORS, COMMON, NOT_FOUND, Live
from pipeline.api.schemas import ClusterOut, LeaseOut, NodeOut

router = APIRouter(prefix="/api/cluster", responses=COMMON)


@router.get("", responses=AUTH_ERRORS | NOT_FOUND)
def cluster(live: Live, _who: SiteAdmin) -> ClusterOut:
    node = live.cluster
    if node is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not a cluster: this service runs alone (cctv serve --node NAME)")
    view, now = node.view, node.view.at
    held: dict[str, list[str]] = {}
    leases = []
    for camera in live.site.cameras:
        owner, lease = view.owner(camera), view.leases.get(camera)
        if owner is None or lease is None:
            leases.append(LeaseOut(camera=camera, node=None, held_for=None, renewed_age=None, expires_in=None))
            continue
        held.setdefault(owner.name, []).append(camera)
        leases.append(LeaseOut(
            camera=camera, node=owner.name, held_for=round(now - lease.acquired_at, 2),
            renewed_age=round(now - lease.renewed_at, 2), expires_in=round(lease.expires_at - now, 2),
        ))
    nodes = [
        NodeOut(name=n.name, url=n.url, capacity=n.capacity, live=n.name in view.live_nodes, started_at=n.started_at,
                heartbeat_age=round(now - n.heartbeat_at, 2), cameras=held.get(n.name, []))
        for n in view.nodes
    ]
    return ClusterOut(node=node.name, leader=node.leader, seen_at=now, nodes=nodes, cameras=leases,
                      counts=asdict(node.counts))
