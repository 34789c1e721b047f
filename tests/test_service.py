"""`cctv serve` end to end: a real service process on a looped PETS09 clip, over real HTTP."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
from conftest import cctv
from harness import EVENT_WAIT_S, POST_ROLL, PRE_ROLL, Service, start_service
from mosquitto import Subscriber

from pipeline.store import EventStore


@pytest.fixture(scope="module")
def mqtt_messages(broker: int) -> Iterator[Subscriber]:
    """What the service publishes to the real broker, recorded from before it starts."""
    subscriber = Subscriber(broker, "cctv/events")
    yield subscriber
    subscriber.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, broker: int, mqtt_messages: Subscriber) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("serve"), mqtt={"host": "127.0.0.1", "port": broker})
    yield svc
    svc.close()


def test_event_with_playable_clip_snapshot_and_thumbnail(service: Service) -> None:
    event = service.wait_for("a finished PETS09 event with evidence", service.finished_event)
    assert isinstance(event, dict)
    assert event["id"].startswith("pets-") and event["camera"] == "pets"
    assert event["rule"] in {"west-intrusion", "mid-cross", "west-loiter", "west-crowd"}
    assert event["label"] == "person" and event["review_state"] == "unreviewed"
    assert abs(event["start"] - time.time()) < EVENT_WAIT_S + 30  # wall-clock times, not media seconds
    assert service.get(f"/api/events/{event['id']}").json()["id"] == event["id"]

    clip = service.get(event["clip_url"])
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    path = service.data / "clip.mp4"
    path.write_bytes(clip.content)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.time for f in container.decode(stream)]
    expected = (event["end"] + POST_ROLL) - (event["start"] - PRE_ROLL)
    assert stream.width == 768 and stream.height == 576
    assert abs((frames[-1] - frames[0]) - expected) <= 2 / 5 + 1e-6, (frames[-1] - frames[0], expected)
    assert clip.content[4:8] == b"ftyp" and b"moov" in clip.content[:4096]  # index at the front: seekable

    partial = service.get(event["clip_url"], headers={"Range": "bytes=0-99"})
    assert partial.status_code == 206 and len(partial.content) == 100
    assert service.get(event["clip_url"], headers={"Range": "bytes=99-0"}).status_code == 416

    snapshot = cv2.imdecode(np.frombuffer(service.get(event["snapshot_url"]).content, np.uint8), cv2.IMREAD_COLOR)
    thumb = cv2.imdecode(np.frombuffer(service.get(event["thumbnail_url"]).content, np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape == (576, 768, 3) and thumb.shape == (240, 320, 3)


def test_review_is_recorded_and_audited(service: Service) -> None:
    event = service.wait_for("a finished event", service.finished_event)
    assert isinstance(event, dict)
    assert service.get(event["clip_url"]).status_code == 200  # a viewer watches it: audited
    assert service.post(f"/api/events/{event['id']}/review", {"action": "escalate"}, role="viewer").status_code == 403
    response = service.post(f"/api/events/{event['id']}/review", {"action": "acknowledge", "note": "checked"})
    assert response.status_code == 200
    assert response.json()["operator"] == "operator-1" and response.json()["review_state"] == "acknowledged"
    assert service.get(f"/api/events/{event['id']}").json()["review_state"] == "acknowledged"
    audit = service.get("/api/audit", role="admin", params={"limit": 1000}).json()["items"]
    mine = [(a["actor"], a["action"]) for a in audit if a["event_id"] == event["id"]]
    assert ("operator-1", "review.acknowledge") in mine
    assert ("viewer-1", "view_clip") in mine
    assert service.get("/api/audit", role="operator").status_code == 403
    kinds = [kind for kind, data in service.stream if data["id"] == event["id"]]
    assert kinds[0] == "start" and "end" in kinds and "evidence" in kinds and kinds[-1] == "review"


def test_event_changes_are_published_to_mqtt(service: Service, mqtt_messages: Subscriber) -> None:
    event = service.wait_for("a finished event", service.finished_event)
    assert isinstance(event, dict)
    mine = [(topic, payload) for topic, payload in mqtt_messages.messages if payload["event"]["id"] == event["id"]]
    assert [topic for topic, _ in mine][0] == "cctv/events/pets/start"
    assert mine[-1][0] == "cctv/events/pets/end"
    assert mine[-1][1]["event"]["end"] == pytest.approx(event["end"])
    assert mine[-1][1]["event"]["rule"] == event["rule"]


def test_cameras_state_latest_frame_and_metrics(service: Service) -> None:
    cameras = {c["id"]: c for c in service.get("/api/cameras").json()}
    pets, broken = cameras["pets"], cameras["broken"]
    assert pets["status"] == "live" and pets["connected"] and pets["error"] is None and pets["connects"] == 1
    assert 4.0 <= pets["fps_in"] <= 6.0 and pets["frames_analysed"] > 0 and pets["last_frame_at"] > time.time() - 5
    assert 0 <= pets["lag_p50"] <= pets["lag_p95"] < 5  # frames are analysed after they arrive, never before
    assert broken["status"] in {"reconnecting", "failed"} and "cannot open video" in broken["error"]
    assert not broken["connected"] and broken["frames_in"] == 0 and broken["latest_url"] is None
    assert service.get("/api/cameras/nope").status_code == 404
    image = cv2.imdecode(np.frombuffer(service.get(pets["latest_url"]).content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (576, 768, 3)
    metrics = service.get("/metrics").text
    assert 'cctv_camera_up{camera="pets"} 1.0' in metrics and 'cctv_camera_up{camera="broken"} 0.0' in metrics
    assert "cctv_detector_inference_seconds_count" in metrics and 'cctv_events_total{camera="pets"' in metrics
    assert service.get("/metrics", role=None).status_code == 401


def test_session_cookie_signs_a_console_in(service: Service) -> None:
    with httpx.Client(base_url=service.url) as browser:
        assert browser.get("/api/cameras").status_code == 401
        assert browser.post("/api/session", json={"token": "wrong"}).status_code == 401
        signed = browser.post("/api/session", json={"token": service.tokens["viewer"]})
        assert signed.json() == {"name": "viewer-1", "role": "viewer", "cameras": None}
        assert "httponly" in signed.headers["set-cookie"].lower()
        assert browser.get("/api/cameras").status_code == 200
        assert browser.get("/api/session").json()["role"] == "viewer"
        assert browser.delete("/api/session").status_code == 204
        browser.cookies.clear()
        assert browser.get("/api/cameras").status_code == 401


def test_sigterm_ends_events_and_finishes_clips_then_restart_keeps_everything(service: Service) -> None:
    reviewed = service.wait_for("a finished event", service.finished_event)
    assert isinstance(reviewed, dict)
    service.post(f"/api/events/{reviewed['id']}/review", {"action": "false_positive"})
    code, out = service.stop()
    assert code == 0, out
    with EventStore.open(service.data) as store:
        events, _ = store.query(limit=1000)
        assert events and all(s.event.end is not None for s in events)
        for stored in events:
            for relative in (stored.clip, stored.snapshot, stored.thumbnail):
                assert relative is None or store.evidence_path(relative).is_file()
        assert len(store.reviews(reviewed["id"])) >= 1
    assert not list((service.data / "evidence").rglob("*.part"))
    service.start()
    again = service.get(f"/api/events/{reviewed['id']}").json()
    assert again["review_state"] == "false_positive" and again["clip_url"]
    assert len(service.get("/api/events", params={"limit": 1000}).json()["items"]) >= len(events)


def test_sigkill_mid_clip_leaves_nothing_partial(service: Service) -> None:
    def open_event() -> dict[str, object] | None:
        items = service.get("/api/events", params={"camera": "pets", "limit": 100}).json()["items"]
        victim = next((e for e in items if e["end"] is None), None)
        writing = victim and (service.data / "evidence" / "pets" / f".{victim['id']}.mp4.part").is_file()
        return victim if writing else None

    victim = service.wait_for("an open event whose clip is being written", open_event)
    assert isinstance(victim, dict)
    service.stop(signal.SIGKILL)
    service.start()
    after = service.get(f"/api/events/{victim['id']}").json()
    assert after["end"] is not None and after["clip_url"] is None
    assert service.get(f"/api/events/{victim['id']}/clip.mp4").status_code == 404
    assert not list((service.data / "evidence").rglob("*.part"))
    with EventStore.open(service.data) as store:
        for stored in store.query(limit=1000)[0]:
            for relative in (stored.clip, stored.snapshot, stored.thumbnail):
                assert relative is None or store.evidence_path(relative).is_file()
    code, out = service.stop()
    assert code == 0, out


def test_serve_rejects_a_bad_config_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: {a: {source: x.mp4}}\nservice: {timezone: Mars/Olympus}\n")
    result = cctv("serve", "--config", bad)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "unknown time zone 'Mars/Olympus'" in result.stderr and len(result.stderr.strip().splitlines()) == 1

