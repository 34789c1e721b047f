"""API load from a second process: asyncio clients listing events, getting one and fetching clip ranges; or,
without a token, what anyone on the network can send (every request refused with 401); or operators' walls,
each polling every camera's drawn live frame at its sampled rate as the console's tiles do."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.bench.live.stats import pct

CLIP_RANGE = 64 * 1024
WALL_TILE_WIDTH = 480  # a 4x4 wall's tile on a 1920 px screen
BROWSER_CONNECTIONS = 6  # what a browser keeps open to one server


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: dict[str, list[float]]  # endpoint -> per-request latency
    errors: dict[str, int]  # "endpoint: kind" -> count
    frames: dict[str, int] = field(default_factory=dict)  # walls: camera -> distinct frames received, all viewers
    viewers: int = 0  # walls instead of API clients


def load_main(
    url: str, token: str | None, clients: int, seconds: float, out: str, seed: int, viewers: int = 0
) -> None:
    """Entry point of the load process; writes its LoadResult as JSON (a file survives any pickling trouble).
    viewers: that many walls instead of the API clients."""
    if viewers:
        result = asyncio.run(_walls(url, token or "", viewers, seconds))
    else:
        result = asyncio.run(_load(url, token, clients, seconds, random.Random(seed)))
    Path(out).write_text(json.dumps(asdict(result)), encoding="utf-8")


async def _load(url: str, token: str | None, clients: int, seconds: float, rng: random.Random) -> LoadResult:
    import httpx

    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    events: dict[str, dict[str, Any]] = {}  # id -> event, refreshed from every list answer
    clip_sizes: dict[str, int] = {}
    cursors: list[str] = []
    cameras: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}

    def remember(page: dict[str, Any]) -> None:
        for event in page["items"]:
            events[event["id"]] = event
            if event["camera"] not in cameras:
                cameras.append(event["camera"])
        if page.get("next_cursor"):
            cursors.append(page["next_cursor"])
            del cursors[:-100]

    async def request(client: httpx.AsyncClient, endpoint: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.get(path, **kwargs)
        except httpx.HTTPError as exc:
            errors[f"{endpoint}: {type(exc).__name__}"] += 1
            return None
        latencies[endpoint].append((time.perf_counter() - started) * 1000)
        if response.is_success:
            return response
        if not (token is None and response.status_code == 401):  # a 401 is what an unauthenticated client is due
            errors[f"{endpoint}: HTTP {response.status_code}"] += 1
        return None

    async def one(client: httpx.AsyncClient) -> None:
        choice = rng.random()
        with_clip = [e for e in events.values() if e.get("clip_url")]
        if choice < 0.2 or not events:
            page = await request(client, "list", "/api/events", params={"limit": rng.choice((10, 50, 100))})
        elif choice < 0.35:
            params = {"limit": 50, "camera": rng.choice(cameras)}
            page = await request(client, "list_camera", "/api/events", params=params)
        elif choice < 0.45 and cursors:
            page = await request(
                client, "list_cursor", "/api/events", params={"limit": 50, "cursor": rng.choice(cursors)}
            )
        elif choice < 0.6:
            event = rng.choice(list(events.values()))
            await request(client, "event", f"/api/events/{event['id']}")
            return
        else:
            if not with_clip:  # no clip finished yet
                await asyncio.sleep(0.05)
                return
            clip = rng.choice(with_clip)["clip_url"]
            size = clip_sizes.get(clip)
            first = rng.randrange(max(1, size - CLIP_RANGE)) if size else 0
            response = await request(
                client, "clip_range", clip, headers={"Range": f"bytes={first}-{first + CLIP_RANGE - 1}"}
            )
            if response is not None:
                if response.status_code != 206:
                    errors[f"clip_range: HTTP {response.status_code} (not 206)"] += 1
                total = response.headers.get("content-range", "").rpartition("/")[2]
                if total.isdigit():
                    clip_sizes[clip] = int(total)
            return
        if page is not None:
            remember(page.json())

    async def client_loop(client: httpx.AsyncClient, deadline: float) -> int:
        count = 0
        while time.monotonic() < deadline:
            await one(client)
            count += 1
        return count

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        first = await request(client, "list", "/api/events", params={"limit": 200})
        if first is not None:
            remember(first.json())
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(client_loop(client, deadline) for _ in range(clients)))
        elapsed = time.monotonic() - started
    requests = sum(len(v) for v in latencies.values()) + sum(
        n for k, n in errors.items() if not k.partition(": ")[2].startswith("HTTP")
    )
    return LoadResult(requests, round(elapsed, 2), dict(latencies), dict(errors))


async def _walls(url: str, token: str, viewers: int, seconds: float) -> LoadResult:
    """Each viewer a browser (six connections) with a tile per camera, polling its `view.jpg` at the camera's
    sampled rate; counts the distinct frames each tile received."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    seen: dict[str, set[tuple[int, int]]] = defaultdict(set)  # camera -> (viewer, frame index)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as probe:
        cameras = (await probe.get("/api/cameras")).json()

    async def tile(client: httpx.AsyncClient, viewer: int, camera: dict[str, Any], deadline: float) -> None:
        period = 1.0 / max(1.0, round(camera["fps_in"]) or 5.0)
        while (now := time.monotonic()) < deadline:
            try:
                reply = await client.get(f"{camera['view_url']}?width={WALL_TILE_WIDTH}")
                latencies.append((time.monotonic() - now) * 1000)
                if reply.is_success:
                    seen[camera["id"]].add((viewer, int(reply.headers.get("x-frame-index", -1))))
                else:
                    errors[f"view: HTTP {reply.status_code}"] += 1
            except httpx.HTTPError as exc:
                errors[f"view: {type(exc).__name__}"] += 1
            await asyncio.sleep(max(0.0, now + period - time.monotonic()))

    async def wall(viewer: int, deadline: float) -> None:
        limits = httpx.Limits(max_connections=BROWSER_CONNECTIONS)
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
            await asyncio.gather(*(tile(client, viewer, camera, deadline) for camera in cameras))

    started = time.monotonic()
    await asyncio.gather(*(wall(v, started + seconds) for v in range(viewers)))
    elapsed = round(time.monotonic() - started, 2)
    frames = {camera: len(indices) for camera, indices in seen.items()}
    return LoadResult(len(latencies) + sum(errors.values()), elapsed, {"view": latencies}, dict(errors), frames, viewers)


def summarize_load(load: LoadResult) -> dict[str, Any]:
    every = [ms for values in load.latencies_ms.values() for ms in values]
    errors = sum(load.errors.values())
    return {
        "requests": load.requests,
        "seconds": load.seconds,
        "requests_per_s": round(load.requests / load.seconds, 1) if load.seconds else None,
        "latency_ms_p50": pct(every, 50),
        "latency_ms_p95": pct(every, 95),
        "latency_ms_max": round(max(every), 2) if every else None,
        "errors": errors,
        "errors_by_kind": load.errors,
        "frames_per_s_per_tile": {c: round(n / load.seconds / load.viewers, 2) for c, n in load.frames.items()}
        if load.frames
        else None,
        "endpoints": {
            name: {"requests": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "max_ms": round(max(v), 2)}
            for name, v in sorted(load.latencies_ms.items())
            if v
        },
    }
