"""A real mosquitto MQTT broker on loopback for tests, and a subscriber that records what arrives."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = Path("/usr/bin/mosquitto_passwd")


def mosquitto_bin() -> str:
    found = str(MOSQUITTO) if MOSQUITTO.is_file() else shutil.which("mosquitto")
    if found is None:
        pytest.fail("mosquitto (MQTT broker) not found: run `./setup.sh --test` (apt-get install mosquitto)")
    return found


def start_broker(directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """A mosquitto on 127.0.0.1:`port`, returned once the port accepts connections."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"listener {port} 127.0.0.1", "persistence false", *extra]
    if os.geteuid() == 0:  # as root, mosquitto would switch to user `mosquitto`, who cannot read pytest's tmp dirs
        lines.append("user root")
    conf = directory / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    log = directory / "mosquitto.log"
    proc = subprocess.Popen([mosquitto_bin(), "-c", str(conf)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited with {proc.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop_broker(proc)
    pytest.fail(f"mosquitto did not listen on port {port} within 10 s: {log.read_text()}")


def stop_broker(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Subscriber:
    """A separate paho client that records (topic, decoded JSON) of everything under `{topic}/#`."""

    def __init__(self, port: int, topic: str, username: str | None = None, password: str | None = None) -> None:
        self.messages: list[tuple[str, dict]] = []
        self._subscribed = threading.Event()
        self._topic = topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}")
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{self._topic}/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.append((msg.topic, json.loads(msg.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "the test subscriber could not subscribe"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # anything beyond `count` would be a duplicate: give it a moment to show up
        return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
