"""Privacy (개인정보보호법): privacy zones black everywhere, exports masked and signed, camera-scoped tokens.

One real store: 12 s of PETS09 through the engine with a privacy zone over a path people walk, plus
the same events copied to a second camera, so scopes have something to hide.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
import yaml
from conftest import FOOTAGE, cctv
from fastapi.testclient import TestClient
from harness import Service, pets_camera, start_service
from privacy_site import PRIVACY_ZONE, make_store, pets_site

from pipeline.api import create_app
from pipeline.api.stream import EventHub
from pipeline.detect import load_model
from pipeline.errors import CctvError
from pipeline.events import EventChange
from pipeline.export import MASK_OPTIONS, export_event, site_key, verify_export
from pipeline.privacy import PrivacyMask
from pipeline.sources import open_source
from pipeline.store import EventStore, StoreChange

ZONE = np.array(PRIVACY_ZONE, dtype=np.int32)
BLACK = 12.0  # mean level of a blacked-out zone after JPEG or H.264 (a few levels of ringing)


def zone_mean(image: np.ndarray) -> float:
    """Mean brightness inside the privacy zone, a few pixels in from its edge (codecs blur the border)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [ZONE], 1)
    inside = cv2.erode(mask, np.ones((9, 9), np.uint8)).astype(bool)
    return float(image[inside].mean())


def video_frames(data: bytes | Path) -> list[np.ndarray]:
    with av.open(io.BytesIO(data) if isinstance(data, bytes) else str(data)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    root = tmp_path_factory.mktemp("privacy")
    store = make_store(root, privacy_zones=[PRIVACY_ZONE])
    for stored in store.query(limit=100)[0]:  # the same events on a second camera, outside some scopes
        store.apply(EventChange("end", replace(stored.event, id=f"lobby-{stored.event.id}", camera="lobby")))
    yield store
    store.close()


@pytest.fixture(scope="module")
def exported(store: EventStore) -> tuple[bytes, dict[str, object], str]:
    """An export (others masked, with the detector) of an event whose clip shows people besides its subject."""
    detector = load_model(pets_site().model, MASK_OPTIONS)
    candidates = [s for s in store.query(camera="pets", limit=100)[0] if s.raw_clip and s.event.track_id is not None]
    assert candidates, "the 12 s of PETS09 raised no event with a clip"
    # the longest event: the most frames with its subject and others in view (the newest, a crossing at the
    # clip's end, has a clip of 9 frames, its subject beside someone in all but one)
    event_id = max(candidates, key=lambda s: (s.event.end or s.event.start) - s.event.start).event.id
    data, manifest = export_event(store, event_id, reason="police request 2026-0412", actor="op-7", detector=detector)
    return data, manifest, event_id


def test_the_original_footage_shows_people_in_the_zone() -> None:
    """The check below means something: unmasked, the zone is bright."""
    with av.open(str(FOOTAGE / "pets09-s2l1.avi")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    assert zone_mean(frame) > 60


def test_privacy_zone_is_black_in_every_stored_file(store: EventStore) -> None:
    stored = [s for s in store.query(camera="pets", limit=100)[0] if s.clip]
    assert stored
    for event in stored:
        for clip in (event.clip, event.raw_clip):
            frames = video_frames(store.evidence_path(clip))
            assert frames and max(zone_mean(f) for f in frames) < BLACK, clip
        for still in (event.snapshot,):
            assert zone_mean(cv2.imread(str(store.evidence_path(still)))) < BLACK
        thumb = cv2.imread(str(store.evidence_path(event.thumbnail)))
        assert zone_mean(cv2.resize(thumb, (768, 576), interpolation=cv2.INTER_NEAREST)) < BLACK * 2


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_export_masks_everyone_but_the_subject(store: EventStore, exported: tuple[bytes, dict, str]) -> None:
    data, manifest, event_id = exported
    files = _members(data)
    assert set(files) == {"clip.mp4", "snapshot.jpg", "manifest.json"}
    stored = store.get(event_id)
    raw, out = video_frames(store.evidence_path(stored.raw_clip)), video_frames(files["clip.mp4"])
    assert len(out) == len(raw)
    doc = json.loads(store.evidence_path(stored.tracks).read_text())
    masked_checked = subject_checked = 0
    for frame_boxes, before, after in zip(doc["frames"], raw, out):
        boxes = {track_id: box for track_id, _label, *box in frame_boxes["boxes"]}
        for track_id, box in boxes.items():
            x1, y1, x2, y2 = (round(v) for v in box)
            a, b = before[y1:y2, x1:x2].astype(float), after[y1:y2, x1:x2].astype(float)
            if a.size == 0 or (x2 - x1) < 16 or _in_zone(box):
                continue
            # A mosaic keeps the mean colour and removes the detail: the difference from the original is large.
            diff = float(np.abs(a - b).mean())
            if track_id != stored.event.track_id:
                assert diff > 8, f"#{track_id} at {box} was not masked ({diff:.1f})"
                masked_checked += 1
            elif not any(_overlap(box, other) for t, other in boxes.items() if t != track_id):
                assert diff < 8, f"the subject #{track_id} was masked ({diff:.1f})"
                subject_checked += 1
    assert masked_checked >= 10 and subject_checked >= 3, (masked_checked, subject_checked)
    assert max(zone_mean(f) for f in out) < BLACK
    assert zone_mean(cv2.imdecode(np.frombuffer(files["snapshot.jpg"], np.uint8), cv2.IMREAD_COLOR)) < BLACK
    assert manifest["masked_boxes"] > 0 and manifest["mask"] == "others" and manifest["detector"] is True


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _in_zone(box: list[float]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return cv2.pointPolygonTest(ZONE, (cx, cy), False) >= 0


def test_export_signature_verifies_and_fails_on_one_changed_byte(store: EventStore, exported: tuple) -> None:
    data, manifest, event_id = exported
    key = site_key(store.data_dir)
    assert verify_export(data, key)["event"]["id"] == event_id
    assert manifest["exported_by"] == "op-7" and manifest["reason"] == "police request 2026-0412"
    files = _members(data)

    def rezip(changes: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content in (files | changes).items():
                archive.writestr(name, content)
        return buffer.getvalue()

    clip = bytearray(files["clip.mp4"])
    clip[len(clip) // 2] ^= 0x01
    with pytest.raises(CctvError, match="clip.mp4 was altered"):
        verify_export(rezip({"clip.mp4": bytes(clip)}), key)
    forged = json.loads(files["manifest.json"]) | {"reason": "routine"}
    with pytest.raises(CctvError, match="signature does not verify"):
        verify_export(rezip({"manifest.json": json.dumps(forged).encode()}), key)
    with pytest.raises(CctvError, match="signature does not verify"):
        verify_export(data, b"another site's key" * 2)


def test_export_is_audited_with_its_reason_and_needs_one(store: EventStore, exported: tuple) -> None:
    _, manifest, event_id = exported
    entries = [e for e in store.audit_log(limit=100)[0] if e.action == "export"]
    assert entries and entries[0].event_id == event_id and entries[0].actor == "op-7"
    assert entries[0].detail["reason"] == "police request 2026-0412"
    assert entries[0].detail["files"] == manifest["files"]
    with pytest.raises(CctvError, match="needs a reason"):
        export_event(store, event_id, reason="  ", actor="op-7")


def test_mask_all_masks_the_subject_too(store: EventStore, exported: tuple) -> None:
    _, _, event_id = exported
    stored = store.get(event_id)
    data, manifest = export_event(store, event_id, reason="subject access request", actor="op-7", mask="all")
    raw, out = video_frames(store.evidence_path(stored.raw_clip)), video_frames(_members(data)["clip.mp4"])
    doc = json.loads(store.evidence_path(stored.tracks).read_text())
    diffs = []
    for frame_boxes, before, after in zip(doc["frames"], raw, out):
        for track_id, _label, *box in frame_boxes["boxes"]:
            x1, y1, x2, y2 = (round(v) for v in box)
            if track_id == stored.event.track_id and x2 - x1 >= 16:
                diffs.append(float(np.abs(before[y1:y2, x1:x2].astype(float) - after[y1:y2, x1:x2]).mean()))
    assert diffs and min(diffs) > 8 and manifest["detector"] is False


# -- camera-scoped access ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(store: EventStore) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = {
        "all": store.create_token("all", "operator"),
        "pets": store.create_token("pets-only", "operator", cameras=["pets"]),
        "north": store.create_token("north-desk", "viewer", groups=["north"]),
        "lobby-admin": store.create_token("lobby-admin", "admin", cameras=["lobby"]),
        "gone": store.create_token("gone-group", "viewer", groups=["removed"]),
    }
    with TestClient(create_app(store, groups={"north": ["lobby"]})) as test_client:
        yield test_client, tokens


def _get(client: tuple[TestClient, dict[str, str]], who: str, url: str, **params: object):  # type: ignore[no-untyped-def]
    test_client, tokens = client
    return test_client.get(url, params=params, headers={"Authorization": f"Bearer {tokens[who]}"})


def _cameras_listed(client: tuple, who: str) -> set[str]:
    items = _get(client, who, "/api/events", limit=1000).json()["items"]
    return {e["camera"] for e in items}


def test_scoped_tokens_list_only_their_cameras(client: tuple) -> None:
    assert _cameras_listed(client, "all") == {"pets", "lobby"}
    assert _cameras_listed(client, "pets") == {"pets"}
    assert _cameras_listed(client, "north") == {"lobby"}  # through the group
    assert _cameras_listed(client, "gone") == set()  # a group the config no longer has grants nothing
    assert _get(client, "pets", "/api/events", camera="lobby").json()["items"] == []


def test_an_event_outside_the_scope_is_not_found_with_its_evidence(client: tuple, store: EventStore) -> None:
    lobby = next(s for s in store.query(camera="lobby", limit=5)[0])
    pets = next(s for s in store.query(camera="pets", limit=5)[0] if s.clip)
    assert _get(client, "north", f"/api/events/{lobby.event.id}").status_code == 200
    for url in ("", "/clip.mp4", "/raw.mp4", "/snapshot.jpg", "/thumbnail.jpg"):
        reply = _get(client, "north", f"/api/events/{pets.event.id}{url}")
        assert reply.status_code == 404 and "no event" in reply.json()["detail"], url
    assert _get(client, "pets", f"/api/events/{pets.event.id}/clip.mp4").status_code == 200
    test_client, tokens = client
    auth = {"Authorization": f"Bearer {tokens['pets']}"}
    review = test_client.post(f"/api/events/{lobby.event.id}/review", json={"action": "acknowledge"}, headers=auth)
    assert review.status_code == 404
    body = {"reason": "police request", "mask": "others"}
    assert test_client.post(f"/api/events/{lobby.event.id}/export", json=body, headers=auth).status_code == 404
    exported = test_client.post(f"/api/events/{pets.event.id}/export", json=body, headers=auth)
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert verify_export(exported.content, site_key(store.data_dir))["exported_by"] == "pets-only"
    viewer = {"Authorization": f"Bearer {tokens['north']}"}
    assert test_client.post(f"/api/events/{lobby.event.id}/export", json=body, headers=viewer).status_code == 403
    short = test_client.post(f"/api/events/{pets.event.id}/export", json={"reason": ""}, headers=auth)
    assert short.status_code == 422


def test_a_scoped_admin_sees_the_audit_of_its_cameras_only(client: tuple, store: EventStore) -> None:
    test_client, tokens = client
    lobby = store.query(camera="lobby", limit=1)[0][0].event.id
    auth = {"Authorization": f"Bearer {tokens['all']}"}
    assert test_client.post(f"/api/events/{lobby}/review", json={"action": "escalate"}, headers=auth).status_code == 200
    assert any(e.camera == "pets" for e in store.audit_log(limit=1000)[0])  # there is more to hide
    entries = _get(client, "lobby-admin", "/api/audit", limit=1000).json()["items"]
    assert entries and {e["camera"] for e in entries} == {"lobby"}
    assert _get(client, "pets", "/api/audit").status_code == 403


def test_the_session_says_the_scope_and_sign_ins_are_audited(client: tuple, store: EventStore) -> None:
    test_client, tokens = client
    reply = test_client.post("/api/session", json={"token": tokens["north"]})
    assert reply.status_code == 200 and reply.json() == {"name": "north-desk", "role": "viewer", "cameras": ["lobby"]}
    assert test_client.post("/api/session", json={"token": "wrong"}).status_code == 401
    test_client.cookies.clear()
    actions = [(e.actor, e.action) for e in store.audit_log(limit=20)[0]]
    assert ("north-desk", "sign_in") in actions and ("(unknown)", "sign_in.refused") in actions
    signed = next(e for e in store.audit_log(limit=20)[0] if e.action == "sign_in")
    assert signed.source == "testclient"


def test_the_event_stream_carries_only_the_cameras_in_scope(store: EventStore) -> None:
    stored = {camera: store.query(camera=camera, limit=1)[0][0] for camera in ("pets", "lobby")}

    async def heard(cameras: set[str] | None) -> list[str]:
        hub = EventHub()
        queue = hub.connect(cameras)
        for camera in ("pets", "lobby"):
            hub(StoreChange("end", stored[camera]))
        await asyncio.sleep(0.05)
        hub.close()
        return [json.loads(m.split("data: ")[1])["camera"] async for m in hub.stream(queue) if "data: " in m]

    assert asyncio.run(heard(None)) == ["pets", "lobby"]
    assert asyncio.run(heard({"lobby"})) == ["lobby"]


# -- the live service: latest frames, live views, camera list, metrics and site, per scope ------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Two looped PETS09 cameras at 2 fps, one with the privacy zone; tokens for each scope."""
    cameras = {"pets": pets_camera(detect={"fps": 2}, privacy_zones=[PRIVACY_ZONE]), "lobby": pets_camera(detect={"fps": 2})}
    root = tmp_path_factory.mktemp("privacy-live")
    service = start_service(root, cameras, extra={"groups": {"north": ["lobby"]}})
    for name, scope in (("pets", ["--cameras", "pets"]), ("north", ["--groups", "north"])):
        made = cctv("token", "create", "--role", "viewer", "--name", f"{name}-desk", *scope, "--config", service.config)
        assert made.returncode == 0, made.stderr
        service.tokens[name] = made.stdout.strip()
    yield service
    service.close()


def _jpeg(reply: httpx.Response) -> np.ndarray:
    assert reply.status_code == 200, reply.text
    return cv2.imdecode(np.frombuffer(reply.content, np.uint8), cv2.IMREAD_COLOR)


def test_live_frames_and_views_are_black_in_the_privacy_zone(live: Service) -> None:
    latest = live.wait_for("a frame", lambda: (r := live.get("/api/cameras/pets/latest.jpg")).status_code == 200 and r, 90)
    assert zone_mean(_jpeg(latest)) < BLACK
    assert zone_mean(_jpeg(live.get("/api/cameras/pets/view.jpg", params={"width": 768}))) < BLACK
    assert zone_mean(_jpeg(live.get("/api/cameras/lobby/view.jpg", params={"width": 768}))) > 60  # no zone there
    headers = {"Authorization": f"Bearer {live.tokens['viewer']}"}
    with httpx.stream("GET", f"{live.url}/api/cameras/pets/live.mjpeg?width=768", headers=headers, timeout=30) as reply:
        data = b""
        for chunk in reply.iter_bytes():
            data += chunk
            if data.count(b"\xff\xd9") >= 1:
                break
    start = data.index(b"\xff\xd8")
    frame = cv2.imdecode(np.frombuffer(data[start : data.index(b"\xff\xd9") + 2], np.uint8), cv2.IMREAD_COLOR)
    assert zone_mean(frame) < BLACK


def test_live_cameras_metrics_and_site_obey_the_scope(live: Service) -> None:
    assert {c["id"] for c in live.get("/api/cameras").json()} == {"pets", "lobby"}
    assert [c["id"] for c in live.get("/api/cameras", role="north").json()] == ["lobby"]
    for url in ("/api/cameras/pets", "/api/cameras/pets/latest.jpg", "/api/cameras/pets/view.jpg", "/api/cameras/pets/live.mjpeg"):
        reply = live.get(url, role="north")
        assert reply.status_code == 404 and "known: lobby" in reply.json()["detail"], url
    assert live.get("/api/site", role="north").json()["cameras"] == ["lobby"]
    metrics = live.get("/metrics", role="pets").text
    assert 'cctv_camera_up{camera="pets"}' in metrics and 'camera="lobby"' not in metrics
    assert "cctv_detector_queue_depth" in metrics  # site-wide series stay
    assert 'camera="lobby"' in live.get("/metrics").text


def test_the_detector_sees_under_privacy_zones_only_when_allowed() -> None:
    for allowed in (False, True):
        mask = PrivacyMask.of([PRIVACY_ZONE], detect_under=allowed)
        with open_source(FOOTAGE / "pets09-s2l1.avi", fps=None, privacy=mask) as src:
            frame = next(iter(src))
        assert zone_mean(frame.image) == 0  # what is stored and shown
        assert (zone_mean(frame.detect_image) > 60) is allowed


def test_export_verify_and_scoped_tokens_from_the_command_line(store: EventStore, tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    raw = pets_site().model_dump(mode="json", by_alias=True, exclude={"service"})
    raw["cameras"]["lobby"] = raw["cameras"]["pets"]
    raw |= {"service": {"data": str(store.data_dir)}, "groups": {"north": ["lobby"]}}
    config.write_text(yaml.safe_dump(raw))
    event_id = next(s.event.id for s in store.query(camera="pets", limit=100)[0] if s.raw_clip)
    out = tmp_path / "export.zip"
    done = cctv("export", event_id, "--reason", "police request 7", "--out", out, "--by", "op-9", "--config", config)
    assert done.returncode == 0 and "boxes masked (others)" in done.stdout, done.stderr
    checked = cctv("verify-export", out, "--config", config)
    assert checked.returncode == 0 and "intact" in checked.stdout and "op-9: police request 7" in checked.stdout
    tampered = bytearray(out.read_bytes())
    tampered[len(tampered) // 3] ^= 0xFF  # inside the clip
    out.write_bytes(bytes(tampered))
    failed = cctv("verify-export", out, "--config", config)
    assert failed.returncode == 2 and failed.stderr.startswith("error: ") and "altered" in failed.stderr
    no_reason = cctv("export", event_id, "--reason", "", "--out", out, "--config", config)
    assert no_reason.returncode == 2 and "needs a reason" in no_reason.stderr

    made = cctv("token", "create", "--role", "viewer", "--name", "desk-n", "--groups", "north", "--config", config)
    assert made.returncode == 0
    bad = cctv("token", "create", "--role", "viewer", "--name", "x", "--cameras", "pets,nowhere", "--config", config)
    assert bad.returncode == 2 and "--cameras: nowhere not in" in bad.stderr
    listed = cctv("token", "list", "--config", config).stdout
    assert "desk-n" in listed and "group north" in listed and made.stdout.strip() not in listed
    assert cctv("token", "revoke", "--name", "desk-n", "--config", config).returncode == 0
    assert "revoked" in cctv("token", "list", "--config", config).stdout.split("desk-n")[1].splitlines()[0]
    assert cctv("audit", "verify", "--config", config).returncode == 0
