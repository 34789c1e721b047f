"""MqttPublisher against a real mosquitto broker on loopback, with the events of the real PETS09 replay."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from mosquitto import MOSQUITTO_PASSWD, Subscriber, start_broker, stop_broker

from pipeline.bench.live.process import free_port
from pipeline.config import MqttConfig
from pipeline.events import Event, EventChange
from pipeline.live.mqtt import MqttPublisher


@pytest.fixture(scope="module")
def pets_events(pets_run: Path) -> list[Event]:
    """The events of the real PETS09 replay, rebuilt from `events.jsonl`."""
    records = [json.loads(line) for line in (pets_run / "events.jsonl").read_text().splitlines() if line.strip()]
    assert records, "the PETS09 replay produced no events"
    return [Event.from_dict(d) for d in records]


def _changes(events: list[Event]) -> list[EventChange]:
    """Start and end of every event, in the order a live camera would publish them."""
    timeline = [(e.start, 0, i, EventChange("start", e)) for i, e in enumerate(events)]
    timeline += [(e.end if e.end is not None else e.start, 1, i, EventChange("end", e)) for i, e in enumerate(events)]
    return [change for *_, change in sorted(timeline, key=lambda t: t[:3])]


def _expected(topic: str, changes: list[EventChange]) -> list[tuple[str, dict]]:
    return [(f"{topic}/{c.event.camera}/{c.kind}", {"kind": c.kind, "event": c.event.to_dict()}) for c in changes]


def _wait_connected(publisher: MqttPublisher, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not publisher.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    return publisher.connected


def _publish_all(port: int, cfg: MqttConfig, client_id: str, changes: list[EventChange]) -> list[tuple[str, dict]]:
    """Publish every change through a connected publisher; what a subscriber to cfg.topic received."""
    sub = Subscriber(port, cfg.topic)
    publisher = MqttPublisher(cfg, client_id=client_id)
    try:
        assert _wait_connected(publisher)
        for change in changes:
            publisher(change)
        publisher.close()
        return sub.wait_for(len(changes))
    finally:
        sub.close()


def test_every_change_arrives_on_its_topic_with_the_exact_payload(broker: int, pets_events: list[Event]) -> None:
    changes = _changes(pets_events)
    received = _publish_all(broker, MqttConfig(host="127.0.0.1", port=broker), "test-pub-default", changes)
    expected = _expected("cctv/events", changes)
    assert len(received) == len(expected)
    assert sorted(map(json.dumps, received)) == sorted(map(json.dumps, expected))
    per_event: dict[str, list[str]] = {}
    for topic, payload in received:
        assert topic == f"cctv/events/{payload['event']['camera']}/{payload['kind']}"
        per_event.setdefault(payload["event"]["id"], []).append(payload["kind"])
    assert per_event == {e.id: ["start", "end"] for e in pets_events}
    assert received == expected  # one client, one connection, qos 1: the broker keeps the publishing order


def test_custom_topic(broker: int, pets_events: list[Event]) -> None:
    changes = _changes(pets_events[:3])
    cfg = MqttConfig(host="127.0.0.1", port=broker, topic="site-a/alarms", qos=2)
    received = _publish_all(broker, cfg, "test-pub-2", changes)
    assert received == _expected("site-a/alarms", changes)


def test_broker_down_never_blocks_and_delivers_once_it_is_up(
    tmp_path: Path, pets_events: list[Event], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens here yet
    before, after = _changes(pets_events[:4]), _changes(pets_events[4:8])
    started = time.monotonic()
    publisher = MqttPublisher(MqttConfig(host="127.0.0.1", port=port, qos=1), client_id="test-pub-down")
    proc = None
    sub = None
    try:
        assert time.monotonic() - started < 1.0, "__init__ blocked on a broker that is down"
        assert not publisher.connected
        for change in before:
            call = time.monotonic()
            publisher(change)
            assert time.monotonic() - call < 1.0, "__call__ blocked on a broker that is down"
        assert not publisher.connected
        # paho retries 1 s, then 3 s, after the first attempt: start the broker and subscribe in between, so the
        # subscriber is there before the publisher connects and hands over its queue
        time.sleep(max(0.0, started + 1.5 - time.monotonic()))
        proc = start_broker(tmp_path / "late", port, "allow_anonymous true")
        sub = Subscriber(port, "cctv/events")
        assert _wait_connected(publisher, timeout=35.0), "the publisher did not reconnect to the late broker"
        for change in after:
            publisher(change)
        publisher.close()
        received = sub.wait_for(len(before) + len(after))
    finally:
        publisher.close(timeout=0)
        if sub is not None:
            sub.close()
        if proc is not None:
            stop_broker(proc)
    assert received == _expected("cctv/events", before + after)
    unreachable = [r for r in caplog.records if r.name == "pipeline.live.mqtt" and "unreachable" in r.getMessage()]
    assert len(unreachable) == 1, "the outage must be logged once, not once per reconnect attempt"


if MOSQUITTO_PASSWD.is_file():

    def test_username_and_password(tmp_path: Path, pets_events: list[Event]) -> None:
        passwords = tmp_path / "passwd"
        subprocess.run([str(MOSQUITTO_PASSWD), "-b", "-c", str(passwords), "cctv", "s3cret"], check=True)
        port = free_port()
        proc = start_broker(tmp_path / "auth", port, "allow_anonymous false", f"password_file {passwords}")
        changes = _changes(pets_events[:2])
        try:
            wrong = MqttPublisher(MqttConfig(host="127.0.0.1", port=port, username="cctv", password="nope"), "bad")
            sub = Subscriber(port, "cctv/events", "cctv", "s3cret")
            cfg = MqttConfig(host="127.0.0.1", port=port, username="cctv", password="s3cret")
            publisher = MqttPublisher(cfg, client_id="test-pub-auth")
            try:
                assert _wait_connected(publisher)
                for change in changes:
                    publisher(change)
                    wrong(change)  # refused by the broker: must neither raise nor deliver
                publisher.close()
                received = sub.wait_for(len(changes))
                assert not wrong.connected
            finally:
                wrong.close(timeout=0)
                sub.close()
        finally:
            stop_broker(proc)
        assert received == _expected("cctv/events", changes)
