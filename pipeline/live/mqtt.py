"""Optional MQTT event bus: every event change, as JSON, to `{topic}/{camera}/{kind}` for other systems to consume.

The publisher subscribes to the event store, which calls it after each commit, so it must never block or raise:
paho's network thread connects (and reconnects) in the background, and qos>0 messages published while the broker is
away wait in paho's bounded queue until it is back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from pipeline.config import MqttConfig
from pipeline.events import EventChange
from pipeline.store import StoreChange

log = logging.getLogger(__name__)

PUBLISHED = ("start", "update", "end")
MAX_QUEUED = 10_000  # bounds memory while the broker is away; older messages are kept, newer ones dropped


class MqttPublisher:
    """Publishes every event change as JSON to `{topic}/{camera}/{kind}`."""

    def __init__(self, cfg: MqttConfig, client_id: str = "cctv") -> None:
        """Starts connecting in the background: a broker that is down must not stop the cameras from starting."""
        self.cfg = cfg
        self._lock = threading.Condition()
        self._queued = 0  # qos>0 messages paho accepted
        self._acked = 0  # ... and the broker acknowledged (close() waits for these to meet)
        self._down_logged = False  # one warning per outage, not one per reconnect attempt or message
        self._drop_logged = False
        self._error_logged = False
        self._closed = False
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        client.reconnect_delay_set(1, 30)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client
        client.connect_async(cfg.host, cfg.port)  # resolves and connects in the loop thread, so it never blocks here
        client.loop_start()

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def __call__(self, change: EventChange | StoreChange) -> None:
        """Queues one start, update or end for the broker (other store changes are not sent); failures are logged once."""
        if change.kind not in PUBLISHED:
            return
        try:
            event = change.event
            payload = json.dumps({"kind": change.kind, "event": event.to_dict()})
            topic = f"{self.cfg.topic}/{event.camera}/{change.kind}"
            info = self.client.publish(topic, payload, qos=self.cfg.qos)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                if not self._drop_logged:
                    self._drop_logged = True
                    log.warning("MQTT queue full (%d messages): dropping events until the broker is back", MAX_QUEUED)
            elif self.cfg.qos > 0 and info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                with self._lock:  # NO_CONN with qos>0: kept in paho's queue and sent on reconnect
                    self._queued += 1
        except Exception:
            if not self._error_logged:
                self._error_logged = True
                log.exception("MQTT publish failed (further failures are not logged)")

    def close(self, timeout: float = 5.0) -> None:
        """Gives queued qos>0 messages up to `timeout` seconds to be acknowledged, then disconnects (once)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._acked < self._queued and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(min(left, 0.1))
            lost = self._queued - self._acked
        if lost > 0:
            log.warning("MQTT: closing with %d event messages not acknowledged by the broker", lost)
        self.client.disconnect()
        self.client.loop_stop()

    # paho callbacks, run in its network thread

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._went_down("MQTT broker %s:%d refused the connection: %s", reason)
            return
        log.info("MQTT connected to %s:%d", self.cfg.host, self.cfg.port)
        self._down_logged = False
        self._drop_logged = False

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._went_down("MQTT broker %s:%d unreachable (retrying in the background)")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not reason.is_failure:  # our own disconnect() from close()
            return
        self._went_down("MQTT disconnected from %s:%d: %s (reconnecting)", reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if self.cfg.qos > 0:
            with self._lock:
                self._acked += 1
                self._lock.notify_all()

    def _went_down(self, message: str, *args: Any) -> None:
        """Logs the first failure of an outage only: paho retries every 1-30 s, which would flood the log."""
        if not self._down_logged:
            self._down_logged = True
            log.warning(message, self.cfg.host, self.cfg.port, *args)
