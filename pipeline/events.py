"""Events stage: rule hits -> identified events, published to subscribers as start/update/end.

Ids are `{camera}-{n:06d}` in order of start, so a replay of the same video gives the same ids; the
live service adds a run tag (`{camera}-{run}-{n:06d}`) so ids stay unique in a store kept across restarts.
Every change carries its own copy of the event, so a subscriber may keep it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.rules import Alarm, HitKind, RuleHit


@dataclass(slots=True, kw_only=True)
class Event(Alarm):
    """An alarm with the identity an operator and the event log refer to it by."""

    id: str
    camera: str

    def to_dict(self) -> dict[str, Any]:
        """The `events.jsonl` record: id and camera first, then every alarm field (None kept)."""
        record = asdict(self)
        head = {"id": record.pop("id"), "camera": record.pop("camera")}
        return {**head, **record, "box": [float(v) for v in self.box]}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Event:
        """The event of a `to_dict` record (read back from JSON, a spool, a notification, a row)."""
        return cls(**{**record, "box": tuple(record["box"])})


@dataclass(frozen=True, slots=True)
class EventChange:
    kind: HitKind
    event: Event


Subscriber = Callable[[EventChange], None]


class EventBus:
    """Fans every event change out to the later stages (log writer, operator queue, annotator)."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> None:
        self.subscribers.append(callback)

    def publish(self, change: EventChange) -> None:
        for callback in self.subscribers:
            callback(change)


class EventManager:
    """Gives each alarm of one camera an id at its start and publishes its changes on the bus."""

    def __init__(self, camera: str, bus: EventBus, run: str | None = None) -> None:
        self.camera = camera
        self.bus = bus
        self.prefix = f"{camera}-{run}" if run else camera
        self.started = 0
        self.open: dict[tuple[str, int | None, int | None], str] = {}  # alarm key -> id of its open event

    def apply(self, hits: Iterable[RuleHit]) -> None:
        for hit in hits:
            key = hit.alarm.key
            if hit.kind == "start":
                self.started += 1
                self.open[key] = f"{self.prefix}-{self.started:06d}"
            event_id = self.open.pop(key) if hit.kind == "end" else self.open[key]
            self.bus.publish(EventChange(hit.kind, Event(id=event_id, camera=self.camera, **asdict(hit.alarm))))


class EventCollector:
    """A subscriber that keeps the finished events."""

    def __init__(self) -> None:
        self.finished: list[Event] = []

    def __call__(self, change: EventChange) -> None:
        if change.kind == "end":
            self.finished.append(change.event)

    def sorted(self) -> list[Event]:
        """Finished events in order of start."""
        return sorted(self.finished, key=lambda e: (e.start, e.id))
