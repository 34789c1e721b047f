"""HTTP API over a real SQLite store holding real evidence recorded from PETS09 frames."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import FOOTAGE
from fastapi.testclient import TestClient

from pipeline.api import create_app
from pipeline.api import stream as stream_module
from pipeline.api.stream import EventHub
from pipeline.events import Event, EventChange
from pipeline.evidence import EvidencePaths, EvidenceRecorder
from pipeline.sources import open_source
from pipeline.store import EventStore, TokenInfo

EVENT_ID = "pets-000001"
START = 1_000_000.0  # the store's clock at the start of each test


def make_event(
    event_id: str = EVENT_ID, camera: str = "pets", start: float = 3.0, score: float = 0.8, **kw: object
) -> Event:
    fields: dict[str, object] = dict(
        id=event_id, camera=camera, rule="west-intrusion", type="intrusion", label="person", track_id=7,
        start=start, end=start + 2.0, start_frame=round(start * 10), end_frame=round(start * 10) + 20,
        score=score, box=(300.0, 200.0, 360.0, 330.0), priority=1,
    )  # fmt: skip
    return Event(**{**fields, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> EvidencePaths:
    """Real clip, snapshot and thumbnail of one event over 80 PETS09 frames (recorded once per module)."""
    done: list[EvidencePaths] = []
    rec = EvidenceRecorder(tmp_path_factory.mktemp("evidence"), pre_roll=2.0, post_roll=1.0, on_done=done.append)
    event = make_event()
    with open_source(FOOTAGE / "pets09-s2l1.avi", fps=None) as src:
        for _, frame in zip(range(80), src):
            rec.push(frame)
            if frame.index == event.start_frame:
                rec.on_change(EventChange("start", make_event(end=None)))
            if frame.index == event.end_frame:
                rec.on_change(EventChange("end", event))
    rec.close()
    assert [p.event_id for p in done] == [EVENT_ID]
    return done[0]


@dataclass
class Api:
    client: TestClient
    store: EventStore
    clip: Path
    now: list[float]  # the store's clock; tests move it to expire tokens
    tokens: dict[str, str]  # role -> bearer token named after the role

    def get(self, url: str, role: str | None = "viewer", **headers: str):  # type: ignore[no-untyped-def]
        return self.call("GET", url, role, **headers)

    def call(self, method: str, url: str, role: str | None = "viewer", json: Any = None, **headers: str):  # type: ignore[no-untyped-def]
        auth = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return self.client.request(method, url, json=json, headers={**auth, **headers})

    def review(self, role: str, body: dict[str, object], event_id: str = EVENT_ID):  # type: ignore[no-untyped-def]
        url = f"/api/events/{event_id}/review"
        return self.client.post(url, json=body, headers={"Authorization": f"Bearer {self.tokens[role]}"})


@pytest.fixture
def api(tmp_path: Path, recorded: EvidencePaths) -> Iterator[Api]:
    now = [START]
    store = EventStore.open(tmp_path, clock=lambda: now[0])
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for path in (recorded.clip, recorded.snapshot, recorded.thumbnail):
        shutil.copy(path, evidence / path.name)
    store.apply(EventChange("end", make_event()))
    rel = f"evidence/{EVENT_ID}"
    store.set_evidence(EVENT_ID, clip=f"{rel}.mp4", snapshot=f"{rel}.jpg", thumbnail=f"{rel}.thumb.jpg")
    tokens = {role: store.create_token(role, role) for role in ("viewer", "operator", "admin")}
    with TestClient(create_app(store)) as client:
        yield Api(client, store, evidence / f"{EVENT_ID}.mp4", now, tokens)
    store.close()


def test_health_needs_no_token(api: Api) -> None:
    response = api.get("/api/health", role=None)
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_missing_bad_expired_and_revoked_tokens_get_401(api: Api) -> None:
    missing = api.get("/api/events", role=None)
    assert missing.status_code == 401 and "missing bearer token" in missing.json()["detail"]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    bad = api.client.get("/api/events", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and "invalid, expired or revoked" in bad.json()["detail"]
    api.tokens["temp"] = api.store.create_token("temp", "viewer", expires_in=60)
    assert api.get("/api/events", role="temp").status_code == 200
    api.now[0] += 61
    assert api.get("/api/events", role="temp").status_code == 401
    assert api.store.revoke_tokens("viewer") == 1
    assert api.get("/api/events").status_code == 401


def test_tokens_are_stored_only_as_hashes(api: Api) -> None:
    with api.store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash, name, role FROM api_tokens").all()
    assert {(name, role) for _, name, role in stored} == {(r, r) for r in ("viewer", "operator", "admin")}
    assert not set(api.tokens.values()) & {h for h, _, _ in stored}
    assert api.store.verify_token(api.tokens["operator"]) == TokenInfo("operator", "operator")


def test_viewer_lists_gets_and_fetches_evidence_but_cannot_review(api: Api) -> None:
    page = api.get("/api/events").json()
    assert [e["id"] for e in page["items"]] == [EVENT_ID] and page["next_cursor"] is None
    event = api.get(f"/api/events/{EVENT_ID}").json()
    assert event["review_state"] == "unreviewed" and event["box"] == [300.0, 200.0, 360.0, 330.0]
    assert event["clip_url"] == f"/api/events/{EVENT_ID}/clip.mp4"
    clip = api.get(event["clip_url"])
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    assert clip.content == api.clip.read_bytes() and clip.headers["accept-ranges"] == "bytes"
    for url in (event["snapshot_url"], event["thumbnail_url"]):
        image = api.get(url)
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.content[:2] == b"\xff\xd8"  # a JPEG
    denied = api.review("viewer", {"action": "acknowledge"})
    assert denied.status_code == 403 and "needs 'operator'" in denied.json()["detail"]
    assert api.get(f"/api/events/{EVENT_ID}").json()["review_state"] == "unreviewed"


def test_operator_reviews_and_admin_audits_it_all(api: Api) -> None:
    api.get(f"/api/events/{EVENT_ID}/clip.mp4", Range="bytes=0-99")
    api.get(f"/api/events/{EVENT_ID}/clip.mp4", Range="bytes=100-199")  # the same view: not audited again
    api.get(f"/api/events/{EVENT_ID}/snapshot.jpg")
    api.get(f"/api/events/{EVENT_ID}/thumbnail.jpg", role="operator")
    response = api.review("operator", {"action": "escalate", "note": "call the guard"})
    assert response.status_code == 200
    assert response.json() | {"id": 0, "at": 0} == {
        "id": 0, "at": 0, "event_id": EVENT_ID, "action": "escalate", "operator": "operator",
        "note": "call the guard", "review_state": "escalated",
    }  # fmt: skip
    assert api.get(f"/api/events/{EVENT_ID}").json()["review_state"] == "escalated"
    assert api.review("admin", {"action": "acknowledge"}).json()["review_state"] == "acknowledged"

    assert api.get("/api/audit", role="operator").status_code == 403
    entries = api.get("/api/audit?limit=5", role="admin").json()["items"]
    assert [(e["actor"], e["action"], e["event_id"]) for e in entries] == [
        ("admin", "review.acknowledge", EVENT_ID),
        ("operator", "review.escalate", EVENT_ID),
        ("operator", "view_thumbnail", EVENT_ID),
        ("viewer", "view_snapshot", EVENT_ID),
        ("viewer", "view_clip", EVENT_ID),
    ]
    assert entries[-1]["detail"] == {"range": "bytes=0-99"}
    rest = api.get("/api/audit?limit=2", role="admin").json()
    older = api.get(f"/api/audit?limit=2&cursor={rest['next_cursor']}", role="admin").json()["items"]
    assert [e["id"] for e in rest["items"] + older] == [e["id"] for e in entries[:4]]


def test_bad_review_action_is_422_with_the_allowed_actions(api: Api) -> None:
    response = api.review("operator", {"action": "delete"})
    assert response.status_code == 422
    assert "'acknowledge', 'false_positive', 'escalate' or 'release'" in response.json()["detail"][0]["msg"]
    assert api.review("operator", {"action": "acknowledge"}, event_id="nope").status_code == 404


def test_clip_range_requests(api: Api) -> None:
    data = api.clip.read_bytes()
    size = len(data)
    url = f"/api/events/{EVENT_ID}/clip.mp4"
    first = api.get(url, Range="bytes=0-99")
    assert first.status_code == 206 and first.content == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}" and first.headers["content-type"] == "video/mp4"
    tail = api.get(url, Range="bytes=-10")
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    assert api.get(url, Range=f"bytes=100-{size + 50}").content == data[100:]  # a too-long range is cut to the file
    for bad in (f"bytes={size}-", "bytes=50-10", "garbage", "bytes=0-1,5-9", "bytes=-"):
        response = api.get(url, Range=bad)
        assert response.status_code == 416, bad
        assert response.headers["content-range"] == f"bytes */{size}" and response.json()["detail"]


def test_unknown_event_or_missing_file_is_404(api: Api) -> None:
    assert api.get("/api/events/nope").status_code == 404
    assert api.get("/api/events/nope/clip.mp4").status_code == 404
    api.store.apply(EventChange("end", make_event("pets-000002")))
    missing = api.get("/api/events/pets-000002/snapshot.jpg")
    assert missing.status_code == 404 and "has no snapshot" in missing.json()["detail"]
    api.clip.unlink()
    assert api.get(f"/api/events/{EVENT_ID}/clip.mp4").status_code == 404


def test_filters_and_cursor_pagination(api: Api) -> None:
    for i, (camera, score) in enumerate([("pets", 0.3), ("yard", 0.9), ("pets", 0.6), ("yard", 0.4)], start=2):
        api.store.apply(EventChange("end", make_event(f"{camera}-{i:06d}", camera, start=10.0 * i, score=score)))
    api.store.review("yard-000003", "false_positive", "ann")

    def ids(query: str) -> list[str]:
        response = api.get(f"/api/events?{query}")
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["items"]]

    assert ids("") == ["yard-000005", "pets-000004", "yard-000003", "pets-000002", EVENT_ID]
    assert ids("camera=yard") == ["yard-000005", "yard-000003"]
    assert ids("min_score=0.6&camera=pets") == ["pets-000004", EVENT_ID]
    assert ids("since=20&until=40") == ["yard-000003", "pets-000002"]
    assert ids("review_state=false_positive") == ["yard-000003"]
    assert ids("rule=other") == []
    seen, cursor = [], ""
    while True:
        page = api.get(f"/api/events?limit=2{cursor}").json()
        seen += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == ids("")
    assert api.get("/api/events?review_state=maybe").status_code == 422
    assert api.get("/api/events?limit=0").status_code == 422
    stale = api.get("/api/events?cursor=xyz")
    assert stale.status_code == 422 and "bad cursor" in stale.json()["detail"]


def test_openapi_lists_the_bearer_scheme(api: Api) -> None:
    schema = api.client.app.openapi()  # type: ignore[attr-defined]
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "an API token from `cctv token create`"
    }  # fmt: skip
    assert schema["components"]["securitySchemes"]["APIKeyCookie"]["name"] == "cctv_token"
    assert schema["paths"]["/api/events"]["get"]["security"] == [{"HTTPBearer": []}, {"APIKeyCookie": []}]
    assert "security" not in schema["paths"]["/api/health"]["get"]
    assert api.get("/openapi.json", role=None).json()["paths"].keys() == schema["paths"].keys()


def test_token_create_command(tmp_path: Path) -> None:
    """`cctv token create` prints a token once; the store keeps only its hash and knows its role."""
    import subprocess
    import sys

    from pipeline.store import EventStore

    def create(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "pipeline.cli", "token", "create", "--data", str(tmp_path), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    made = create("--role", "operator", "--name", "desk-3")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    with EventStore.open(tmp_path) as store:
        assert store.verify_token(token) == TokenInfo("desk-3", "operator")
    assert all(token.encode() not in f.read_bytes() for f in tmp_path.glob("events.db*"))
    bad = create("--role", "superuser", "--name", "x")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: unknown role 'superuser'")


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """call() in a thread, failing (not hanging) when it has not returned within `seconds`: for the event stream."""
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert done, f"still running after {seconds} s"
    return done[0]


TOKEN_FIELDS = {"id", "name", "role", "cameras", "groups", "created_at", "expires_at", "state"}


def test_admin_lists_tokens_with_their_state_and_never_a_secret(api: Api) -> None:
    api.tokens["temp"] = api.store.create_token("temp", "viewer", expires_in=60, groups=["north"])
    api.store.create_token("gone", "operator", cameras=["pets"])
    api.store.revoke_tokens("gone")
    api.now[0] += 61
    listed = api.get("/api/tokens", role="admin")
    assert listed.status_code == 200
    rows = listed.json()
    assert all(row.keys() == TOKEN_FIELDS for row in rows)
    assert [(r["name"], r["role"], r["cameras"], r["groups"], r["state"]) for r in rows] == [
        ("viewer", "viewer", None, None, "active"),
        ("operator", "operator", None, None, "active"),
        ("admin", "admin", None, None, "active"),
        ("temp", "viewer", None, ["north"], "expired"),
        ("gone", "operator", ["pets"], None, "revoked"),
    ]
    assert rows[3]["expires_at"] == START + 60 and rows[0]["expires_at"] is None
    for token in api.tokens.values():
        assert token not in listed.text and hashlib.sha256(token.encode()).hexdigest() not in listed.text


def test_only_an_admin_of_the_whole_site_manages_tokens(api: Api) -> None:
    api.tokens["pets-admin"] = api.store.create_token("pets-admin", "admin", cameras=["pets"])
    for role in ("viewer", "operator"):
        assert api.get("/api/tokens", role=role).status_code == 403
        denied = api.call("POST", "/api/tokens/revoke", role, json={"name": "admin"})
        assert denied.status_code == 403 and "needs 'admin'" in denied.json()["detail"]
    scoped = api.call("POST", "/api/tokens/revoke", "pets-admin", json={"name": "admin"})
    assert scoped.status_code == 403 and "camera-scoped admin may not manage the site's tokens" in scoped.json()["detail"]
    assert api.get("/api/tokens", role="pets-admin").status_code == 403
    assert api.get("/api/tokens", role="admin").status_code == 200  # nothing was revoked


def test_admin_revokes_a_name_with_its_console_sessions_and_it_is_audited(api: Api) -> None:
    assert api.client.post("/api/session", json={"token": api.tokens["viewer"]}).status_code == 200
    revoked = api.call("POST", "/api/tokens/revoke", "admin", json={"name": "viewer"})
    assert revoked.status_code == 200 and revoked.json() == {"name": "viewer", "revoked": 2}  # the token, the session
    assert api.get("/api/session", role=None).status_code == 401  # the console's cookie
    api.client.cookies.clear()
    assert api.get("/api/events").status_code == 401
    assert api.get("/api/events", role="operator").status_code == 200
    again = api.call("POST", "/api/tokens/revoke", "admin", json={"name": "viewer"})
    assert again.status_code == 404 and again.json()["detail"] == "no live token named 'viewer' (see GET /api/tokens)"
    assert api.call("POST", "/api/tokens/revoke", "admin", json={"name": "nobody"}).status_code == 404
    entry = api.get("/api/audit?limit=1", role="admin").json()["items"][0]
    assert (entry["actor"], entry["action"], entry["detail"], entry["source"]) == (
        "admin",
        "token.revoke",
        {"name": "viewer", "count": 2},
        "testclient",
    )
    assert api.store.audit_verify().ok


def test_revoking_through_the_api_ends_the_tokens_event_stream(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "RECHECK_S", 0.05)
    connected = threading.Event()
    connect = EventHub.connect

    def connect_and_tell(hub: EventHub, cameras: Any = None) -> Any:
        queue = connect(hub, cameras)
        connected.set()
        return queue

    monkeypatch.setattr(EventHub, "connect", connect_and_tell)
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(api.get("/api/events/stream")), daemon=True)
    thread.start()
    assert connected.wait(10)
    assert api.call("POST", "/api/tokens/revoke", "admin", json={"name": "viewer"}).status_code == 200
    thread.join(10)
    assert done and done[0].status_code == 200 and done[0].text.startswith("retry:")


def test_head_answers_every_get_route_as_get_without_a_body(api: Api) -> None:
    clip = f"/api/events/{EVENT_ID}/clip.mp4"
    for url, role in (
        (clip, "viewer"),
        ("/api/events", "viewer"),
        ("/api/tokens", "admin"),
        ("/api/health", None),
        ("/", None),
    ):
        get, head = api.get(url, role), api.call("HEAD", url, role)
        assert head.status_code == get.status_code == 200 and head.content == b"", url
        assert head.headers["content-type"] == get.headers["content-type"], url
        assert head.headers["content-length"] == get.headers["content-length"], url
    part = api.call("HEAD", clip, Range="bytes=0-99")
    assert part.status_code == 206 and part.headers["content-range"].startswith("bytes 0-99/") and part.content == b""
    missing = api.call("HEAD", clip, role=None)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer" and missing.content == b""
    assert api.call("HEAD", "/api/tokens", "operator").status_code == 403
    stream = _within(10, lambda: api.call("HEAD", "/api/events/stream"))  # an endless GET: HEAD returns at once
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")


def test_options_and_methods_a_path_does_not_take_name_the_allowed_ones(api: Api) -> None:
    for url, allow in (
        ("/api/events", "GET, HEAD, OPTIONS"),
        (f"/api/events/{EVENT_ID}/clip.mp4", "GET, HEAD, OPTIONS"),
        ("/api/session", "DELETE, GET, HEAD, OPTIONS, POST"),
        (f"/api/events/{EVENT_ID}/review", "OPTIONS, POST"),
        ("/api/tokens/revoke", "OPTIONS, POST"),
        ("/", "GET, HEAD, OPTIONS"),  # the console's static files
    ):
        options = api.call("OPTIONS", url, role=None)
        assert options.status_code == 204 and options.headers["allow"] == allow and options.content == b"", url
        assert options.headers["x-frame-options"] == "DENY"
    put = api.call("PUT", "/api/session")
    assert put.status_code == 405 and put.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, POST"
    assert "PUT is not allowed here" in put.json()["detail"]
    head = api.call("HEAD", f"/api/events/{EVENT_ID}/review")
    assert head.status_code == 405 and head.headers["allow"] == "OPTIONS, POST"
