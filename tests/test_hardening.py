"""Reliability and security (issue 15, the parts built so far): cameras never silently blind, nothing a client
sends takes the service down or is echoed back, secrets hidden, one-line errors for bad configs and commands,
one service per data dir and port."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import yaml
from conftest import ROOT, cctv
from fastapi.testclient import TestClient
from harness import pets_camera, start_service
from test_api import make_event

from pipeline.api import create_app
from pipeline.api import stream as stream_module
from pipeline.api.guard import LOG_EVERY_S
from pipeline.api.stream import EventHub
from pipeline.bench.live.process import free_port
from pipeline.config import load_config
from pipeline.errors import CctvError
from pipeline.events import EventChange
from pipeline.serve import MALLOC_ARENAS, lock_data_dir
from pipeline.sources import open_source, redact
from pipeline.store import EventStore

# -- cameras never silently blind ------------------------------------------------------------------


def _ts_segment(start_seconds: float, frames: int, fps: int = 10) -> bytes:
    """An MPEG-TS segment whose timestamps start at `start_seconds` (as after an encoder restart)."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"seg-{os.getpid()}-{start_seconds}.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("mpeg2video", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i % 250, np.uint8), format="bgr24")
            frame.pts = round(start_seconds * fps) + i
            frame.time_base = stream.codec_context.time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = path.read_bytes()
    path.unlink()
    return data


def test_timestamps_jumping_back_are_re_anchored_and_analysis_goes_on(tmp_path: Path) -> None:
    """A restreamer that restarts, played as a camera: 1.5 s of video at PTS 1000 s, then 1.5 s from 0 again
    (FFmpeg turns that into a jump of 26.5 h forward, the MPEG-TS wrap; before, the camera went blind)."""
    video = tmp_path / "restart.ts"
    video.write_bytes(_ts_segment(1000.0, 15) + _ts_segment(0.0, 15))
    with open_source(video, fps=5, live=True) as src:
        frames = []
        while batch := src.take(1):
            frames += batch
        assert src.stats.discontinuities == 1
    times = [f.pts for f in frames]
    assert len(frames) in range(14, 17)  # 3 s at 5 fps
    assert all(b > a for a, b in zip(times, times[1:])) and times[-1] == pytest.approx(2.8, abs=0.15)


@pytest.fixture
def stalled_fifo(tmp_path: Path) -> Iterator[Path]:
    """A camera source that delivers 8 s of video (enough for FFmpeg to probe it), then nothing, still open."""
    fifo = tmp_path / "camera.ts"
    os.mkfifo(fifo)
    data = _ts_segment(0.0, 80)
    done = threading.Event()

    def write() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(data)
            pipe.flush()
            done.wait(120)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    yield fifo
    done.set()


def test_a_connected_camera_without_frames_is_stalled_not_live(tmp_path: Path, stalled_fifo: Path) -> None:
    service = start_service(
        tmp_path, {"pets": pets_camera(detect={"fps": 2}), "stuck": {"source": str(stalled_fifo), "detect": {"fps": 5}}},
        stall_seconds=2,
    )
    try:
        def stalled() -> dict | None:
            camera = service.get("/api/cameras/stuck").json()
            return camera if camera["stalls"] >= 1 else None

        camera = service.wait_for("the stall", stalled, 60)
        assert camera["status"] in ("stalled", "reconnecting", "failed") and not camera["connected"]
        assert "no frame for 2 s while connected" in (camera["error"] or "")
        metrics = service.get("/metrics").text
        assert 'cctv_camera_up{camera="stuck"} 0.0' in metrics and 'cctv_camera_stalls_total{camera="stuck"}' in metrics
        assert service.get("/api/cameras/pets").json()["status"] == "live"  # the other camera goes on
    finally:
        service.close()


# -- one service per data dir and port ---------------------------------------------------------------


def _site(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "site.yaml"
    cameras = {"pets": pets_camera()}
    config.write_text(yaml.safe_dump({
        "model": {"path": str(ROOT / "models" / "yolo11n_int8_openvino_model")},
        "service": {"data": str(tmp_path / "data"), "port": port}, "cameras": cameras,
    }))
    return config


def test_a_second_service_on_the_data_dir_or_the_port_refuses_before_touching_anything(tmp_path: Path) -> None:
    config = _site(tmp_path, free_port())
    held = lock_data_dir(tmp_path / "data")
    part = tmp_path / "data" / "evidence" / "pets" / ".pets-1.mp4.part"  # the running one's clip in progress
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x")
    second = cctv("serve", "--config", config)
    assert second.returncode == 2 and second.stderr.count("\n") == 1 and "is in use by another cctv serve" in second.stderr
    assert part.exists()
    held.close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = cctv("serve", "--config", config, "--port", taken.getsockname()[1])
    assert busy.returncode == 2 and "cannot listen on 127.0.0.1" in busy.stderr and "Traceback" not in busy.stderr


# -- memory: the service's threads share two heaps --------------------------------------------------

_HEAPS = """
import ctypes, os, sys, tempfile, threading
from pipeline.serve import limit_malloc_arenas
if sys.argv[1] == "limit":
    limit_malloc_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes, libc.fdopen.restype = ctypes.c_void_p, [ctypes.c_void_p], ctypes.c_void_p
start = threading.Barrier(8)
def allocate():  # ctypes releases the GIL: eight threads in malloc at once, as the camera threads are
    start.wait()
    for _ in range(3000):
        for block in [libc.malloc(4096) for _ in range(8)]:
            libc.free(block)
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
with tempfile.TemporaryFile("w+") as out:
    stream = ctypes.c_void_p(libc.fdopen(os.dup(out.fileno()), b"w"))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    out.seek(0)
    print(out.read().count("<heap nr="))
"""


def _heaps(mode: str, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", _HEAPS, mode], capture_output=True, text=True, env=environ, cwd=ROOT,
                          timeout=60, check=True)
    return int(done.stdout)


def test_the_service_threads_share_two_malloc_heaps_unless_the_environment_says_otherwise() -> None:
    assert _heaps("default") > 2  # glibc's own: a heap per contending thread, up to 8 per core
    assert _heaps("limit") == MALLOC_ARENAS == 2
    assert _heaps("limit", MALLOC_ARENA_MAX="4") == 4


# -- nothing a client sends takes the service down ---------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, EventStore, dict[str, str]]]:
    store = EventStore.open(tmp_path / "data")
    for n in range(3):
        store.apply(EventChange("end", make_event(f"pets-{n}", start=10.0 + n)))
    tokens = {role: store.create_token(role, role) for role in ("viewer", "operator")}
    with TestClient(create_app(store)) as client:
        yield client, store, tokens
    store.close()


def _auth(tokens: dict[str, str], role: str = "operator") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def test_bodies_are_limited_before_authentication(api: tuple) -> None:
    client, _, tokens = api
    huge = client.post("/api/events/pets-0/review", content=b"x" * 200_000)
    assert huge.status_code == 413 and "over" in huge.json()["detail"]  # not 401: refused before the token

    def chunks() -> Iterator[bytes]:
        yield from (b"[" + b"0," * 50_000 for _ in range(3))

    chunked = client.post("/api/events/pets-0/review", content=chunks(), headers=_auth(tokens))
    assert chunked.status_code == 413
    array = client.post("/api/events/pets-0/review", content=json.dumps([0] * 2_000_000), headers=_auth(tokens))
    assert array.status_code == 413


def test_a_422_never_echoes_more_than_an_excerpt(api: tuple) -> None:
    client, _, tokens = api
    reply = client.post("/api/events/pets-0/review", json={"action": "x" * 20_000}, headers=_auth(tokens))
    assert reply.status_code == 422 and len(reply.content) < 1000
    assert reply.json()["detail"][0]["loc"] == ["body", "action"]


@pytest.mark.parametrize("key", [[None, None], [True, False], ["a", "b"], [1e308 * 10, "x"], [1]])
def test_crafted_cursors_are_422(api: tuple, key: list[object]) -> None:
    client, _, tokens = api
    cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
    reply = client.get("/api/events", params={"cursor": cursor}, headers=_auth(tokens))
    assert reply.status_code == 422 and "bad cursor" in reply.json()["detail"]


def test_ranges_surrogates_and_nul_bytes_are_4xx(api: tuple, tmp_path: Path) -> None:
    client, store, tokens = api
    clip = store.data_dir / "evidence" / "c.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(b"0" * 1000)
    store.set_evidence("pets-0", clip="evidence/c.mp4")
    huge = client.get("/api/events/pets-0/clip.mp4", headers=_auth(tokens) | {"Range": "bytes=" + "9" * 4300 + "-"})
    assert huge.status_code == 416
    body = '{"action": "acknowledge", "note": "\\ud800"}'
    surrogate = client.post("/api/events/pets-0/review", content=body, headers=_auth(tokens) | {"Content-Type": "application/json"})
    assert surrogate.status_code == 422 and "surrogates" in surrogate.text
    nul = client.post("/api/events/pets-0/review", json={"action": "acknowledge", "note": "a\x00b"}, headers=_auth(tokens))
    assert nul.status_code == 422
    assert client.get("/api/events/pets%000", headers=_auth(tokens)).status_code == 400
    assert client.get("/api/events", params={"camera": "a\x00"}, headers=_auth(tokens)).status_code == 400
    assert client.get("/api/events", params={"since": "inf"}, headers=_auth(tokens)).status_code == 422


def test_security_headers_and_a_console_session_that_is_not_the_token(api: tuple) -> None:
    client, store, tokens = api
    for reply in (client.get("/api/health"), client.get("/api/events"), client.get("/")):
        assert reply.headers["x-content-type-options"] == "nosniff" and reply.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    signed = client.post("/api/session", json={"token": tokens["viewer"]})
    session = client.cookies["cctv_token"]
    assert signed.status_code == 200 and session != tokens["viewer"]
    assert client.get("/api/events").status_code == 200
    assert client.delete("/api/session").status_code == 204
    client.cookies.set("cctv_token", session)  # a copied cookie, after sign-out
    assert client.get("/api/events").status_code == 401
    client.cookies.clear()
    assert client.get("/api/events", headers=_auth(tokens, "viewer")).status_code == 200  # the token lives on
    assert [e.action for e in store.audit_log(limit=5)[0]][:2] == ["sign_out", "sign_in"]


def test_an_event_stream_ends_when_its_token_is_revoked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "RECHECK_S", 0.05)
    live = [True]

    async def run() -> list[str]:
        hub = EventHub()
        queue = hub.connect()
        asyncio.get_running_loop().call_later(0.3, live.__setitem__, 0, False)
        return [m async for m in hub.stream(queue, lambda: live[0])]

    messages = asyncio.run(asyncio.wait_for(run(), 5))  # ends by itself, well before the 5 s
    assert messages and messages[0].startswith("retry:")


def test_credentials_are_hidden_in_every_form() -> None:
    assert redact("rtsp://admin:p@ss:w0rd@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    assert redact("http://cam/live?apikey=123&channel=1") == "http://cam/live?apikey=***&channel=1"
    assert redact("rtsps://token@cam/x") == "rtsps://***@cam/x"
    assert redact("rtsp://cam/x") == "rtsp://cam/x"
    with pytest.raises(CctvError) as err:
        open_source("rtsp://admin:s3cret@127.0.0.1:9/none", fps=5)
    assert "s3cret" not in str(err.value)


# -- configs and commands: one error line ----------------------------------------------------------


BASE = "cameras:\n  pets:\n    source: a.mp4\n"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (BASE + "    detect: {fps: .inf}\n", "cameras.pets.detect.fps: Input should be a finite number"),
        (BASE + "    detect: {fps: 1e300}\n", "less than or equal to 120"),
        (BASE + "    rules: [{name: r, type: loitering, zone: z, min_seconds: 1e300}]\n", "numbers must lie within ±1e+09"),
        (BASE + "    zones: {z: {polygon: [[0, 0], [1e12, 0], [0, 10]]}}\n", "numbers must lie within ±1e+09"),
        ("cameras:\n  ../x: {source: a.mp4}\n", "camera name '../x' must be"),
        (BASE + "    zones: {z: {polygon: [[0, 0], [10, 10], [10, 0], [0, 10]]}}\n", "crosses itself"),
        (BASE + "    zones: {z: {polygon: [[0, 0], [5, 5], [10, 10]]}}\n", "encloses no area"),
        (BASE + "    privacy_zones: [[]]\n", "at least 3 corners"),
        (BASE + "    motion: {mask: [[]]}\n", "cameras.pets.motion.mask: mask[0]: a polygon needs at least 3 corners"),
        (BASE + "    rules: [{name: r, type: loitering, zone: z, min_secs: 3}]\n", "did you mean 'min_seconds'?"),
        (BASE + "service: {database: /var/lib/db}\n", "is not a database URL"),
        (BASE + "groups: {north: [nowhere]}\n", "groups.north: unknown cameras ['nowhere']"),
    ],
)
def test_bad_configs_are_one_line_naming_the_cause(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml_text)
    with pytest.raises(CctvError) as err:
        load_config(path)
    assert expected in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_huge_config_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(BASE + "#" * 2_000_000 + "\n")
    with pytest.raises(CctvError, match="over 1 MB"):
        load_config(path)


def test_token_commands_refuse_bad_input_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for args, expected in (
        (["--expires-days", "0", "--data", data], "--expires-days must be a positive number"),
        (["--expires-days", "nan", "--data", data], "--expires-days must be a positive number"),
        ([], "which store?"),
        (["--db", "/not/a/url"], "is not a database URL"),
    ):
        done = cctv("token", "create", "--role", "viewer", "--name", "x", *args)
        assert done.returncode == 2 and expected in done.stderr and done.stderr.count("\n") == 1, done.stderr
    long_name = cctv("token", "create", "--role", "viewer", "--name", "n" * 300, "--data", data)
    assert long_name.returncode == 2 and "1-128 characters" in long_name.stderr


def test_half_sent_requests_are_cut_off_and_the_service_keeps_answering(tmp_path: Path) -> None:
    """A slowloris: 300 connections that never finish their request head. Health answers within 1 s meanwhile,
    the camera keeps analysing, and the server closes them all at its header deadline."""
    service = start_service(tmp_path, {"pets": pets_camera(detect={"fps": 2})})
    try:
        service.wait_for("the camera", lambda: service.get("/api/cameras/pets").json()["frames_analysed"] > 2, 60)
        host, port = "127.0.0.1", service.port
        slow = [socket.create_connection((host, port)) for _ in range(300)]
        for connection in slow:
            connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        analysed = service.get("/api/cameras/pets").json()["frames_analysed"]
        seconds = []
        for _ in range(5):
            start = time.monotonic()
            assert service.get("/api/health", role=None).status_code == 200
            seconds.append(time.monotonic() - start)
            time.sleep(1)
        assert max(seconds) < 1.0, seconds
        assert service.get("/api/cameras/pets").json()["frames_analysed"] > analysed
        closed = 0
        for connection in slow:
            connection.settimeout(20)
            try:
                closed += connection.recv(1) == b""
            except OSError:
                closed += 1
            connection.close()
        assert closed == len(slow)

        # Bad clients do not flood the log: 400 refusals of two kinds make a line of each per LOG_EVERY_S.
        assert service.proc is not None
        lines_before, started = service.proc.output().count("\n"), time.monotonic()
        for _ in range(200):
            too_big = httpx.post(f"{service.url}/api/session", content=b"x" * 70_000, timeout=10)
            assert too_big.status_code == 413
            assert httpx.get(f"{service.url}/api/events?camera=a%00b", timeout=10).status_code == 400
        output, most = service.proc.output(), 2 + int((time.monotonic() - started) / LOG_EVERY_S)
        assert output.count("refused an oversized body") <= most and output.count("refused NUL in a URL") <= most
        assert output.count("\n") - lines_before <= 2 * most, output[-3000:]
    finally:
        service.close()


def test_replay_out_that_cannot_be_a_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker, "/proc/x"):
        done = cctv("replay", "--config", ROOT / "configs" / "pets09.yaml", "--out", out)
        assert done.returncode == 2 and done.stderr.startswith("error: --out") and "Traceback" not in done.stderr, done.stderr


def test_zones_outside_the_frame_are_named_once_its_size_is_known(caplog: pytest.LogCaptureFixture) -> None:
    cam = pets_site_camera()
    with caplog.at_level("WARNING"):
        assert cam.warn_outside("pets", 768, 576) == []
        assert cam.warn_outside("pets", 320, 240) == ["zone road_west", "line mid"]
    assert "pets: zone road_west, line mid reach outside the 320x240 frame" in caplog.text


def pets_site_camera():  # type: ignore[no-untyped-def]
    return load_config(ROOT / "configs" / "pets09.yaml").cameras["pets"]
