"""Real RTSP cameras: GStreamer's RTSP server on loopback serving PETS09 at real time (motion JPEG over RTP),
one camera behind a password (with '@' and ':' in it), one with a wrong password, an encoder restart (timestamps
from 0 again within the session) and a server restart."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FOOTAGE, ROOT
from harness import Service, pets_camera, start_service

from pipeline.bench.live.process import free_port

PASSWORD = "p@ss:1"  # in the URL: p%40ss%3A1
SERVER = ROOT / "tests" / "rtsp_server.py"
FEED = ROOT / "tests" / "rtsp_feed.py"


class RtspCamera:
    """`rtsp_feed.py PETS09 | python3 rtsp_server.py`, started and stopped like a camera's restreamer."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        feed = subprocess.Popen([sys.executable, FEED, FOOTAGE / "pets09-s2l1.avi"], stdout=subprocess.PIPE)
        args = ["--port", str(self.port), "--user", "cam", "--password", PASSWORD]
        with self.log.open("ab") as log:
            server = subprocess.Popen(["/usr/bin/python3", SERVER, *args], stdin=feed.stdout, stdout=subprocess.PIPE, stderr=log)
        assert feed.stdout is not None and server.stdout is not None
        feed.stdout.close()  # the server holds the pipe now
        ready = server.stdout.readline().decode()
        if not ready.startswith("rtsp://"):
            pytest.fail(f"RTSP server did not start (Debian: gir1.2-gst-rtsp-server-1.0): {self.log.read_text()[-500:]}")
        self.procs = [server, feed]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)
        self.procs = []

    def url(self, password: str = "p%40ss%3A1") -> str:
        return f"rtsp://cam:{password}@127.0.0.1:{self.port}/cam"


@pytest.fixture(scope="module")
def rtsp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RtspCamera, Service]]:
    root = tmp_path_factory.mktemp("rtsp")
    camera = RtspCamera(free_port(), root / "rtsp-server.log")
    camera.start()
    pets = pets_camera(detect={"fps": 5}) | {"source": camera.url(), "loop": False}
    cameras = {"door": pets, "wrongpw": {"source": camera.url("guess"), "detect": {"fps": 2}}}
    service = start_service(root, cameras, reconnect_max_seconds=2)
    yield camera, service
    service.close()
    camera.stop()


def _camera(service: Service, name: str) -> dict[str, object]:
    return service.get(f"/api/cameras/{name}").json()


def test_a_camera_behind_a_password_goes_live_and_its_password_is_never_shown(rtsp: tuple[RtspCamera, Service]) -> None:
    camera, service = rtsp
    live = service.wait_for("door analysing", lambda: (c := _camera(service, "door"))["frames_analysed"] > 10 and c, 90)
    assert live["status"] == "live" and live["connected"] and live["source"] == "rtsp://…"
    assert service.get("/api/cameras/door/view.jpg").status_code == 200
    wrong = service.wait_for("the refusal", lambda: (c := _camera(service, "wrongpw"))["error"] and c, 60)
    assert wrong["status"] in ("reconnecting", "failed") and "401" in str(wrong["error"]) and "guess" not in str(wrong["error"])
    assert service.proc is not None
    printed = service.proc.output()
    assert "p%40ss" not in printed and PASSWORD not in printed and "guess" not in printed


def test_timestamps_restarting_within_the_session_are_re_anchored(rtsp: tuple[RtspCamera, Service]) -> None:
    """The server's encoder restarts its timestamps from 0 while the session goes on: the camera stays live and
    analysing on the same connection (before re-anchoring, every frame after it was dropped as old)."""
    camera, service = rtsp
    before = service.wait_for("door analysing", lambda: (c := _camera(service, "door"))["status"] == "live" and c, 90)
    camera.procs[0].send_signal(signal.SIGUSR1)
    jumped = service.wait_for("the re-anchoring", lambda: (c := _camera(service, "door"))["time_jumps"] > before["time_jumps"] and c, 30)
    service.wait_for("frames after it", lambda: _camera(service, "door")["frames_analysed"] > jumped["frames_analysed"] + 10, 30)
    after = _camera(service, "door")
    assert after["status"] == "live" and after["connects"] == before["connects"] and after["stalls"] == before["stalls"]


def test_a_restarted_rtsp_server_is_reconnected_with_back_off(rtsp: tuple[RtspCamera, Service]) -> None:
    camera, service = rtsp
    service.wait_for("door live", lambda: _camera(service, "door")["status"] == "live", 90)
    connects = _camera(service, "door")["connects"]
    camera.stop()
    down = service.wait_for("the loss", lambda: (c := _camera(service, "door"))["status"] != "live" and c, 30)
    assert not down["connected"] and down["error"]
    camera.start()
    back = service.wait_for(
        "the reconnection", lambda: (c := _camera(service, "door"))["status"] == "live" and c["connects"] > connects and c, 60
    )
    before = back["frames_analysed"]
    service.wait_for("frames again", lambda: _camera(service, "door")["frames_analysed"] > before + 5, 30)
