"""API load from a second process: asyncio clients listing events, getting one and fetching clip ranges; or,
without a token, what anyone on the network can send (every request refused with 401)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.bench.live.stats import pct

CLIP_RANGE = 64 * 1024


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: dict[str, list[float]]  # endpoint -> per-request latency
    errors: dict[str, int]  # "endpoint: kind" -> count


def load_main(url: str, token: str | None, clients: int, seconds: float, out: str, seed: int) -> None:
    """Entry point of the load process; writes its LoadResult as JSON (a file survives any pickling trouble)."""
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
        refused = token is None and response.status_code == 401  # the answer an unauthenticated client is due
        if not response.is_success and not refused:
            errors[f"{endpoint}: HTTP {response.status_code}"] += 1
            return None
        return response if response.is_success else None

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
        "endpoints": {
            name: {"requests": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "max_ms": round(max(v), 2)}
            for name, v in sorted(load.latencies_ms.items())
            if v
        },
    }
