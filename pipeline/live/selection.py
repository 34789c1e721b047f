"""Selection (선별관제 proper): which cameras are on the operators' wall, and for how much of the time.

A camera is selected while it has an open event and for `selection.hold_seconds` after its last one
ended; a camera with `selection.presence` classes is also selected while a tracked object of one of
them is present, inside `selection.schedule` (people in a park at night). Everything else stays off
the wall. The time each camera spent selected is counted, for the selection-rate figures.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.config import SelectionConfig

Reason = str  # "event", "hold", "presence" or "" (not selected)


@dataclass(frozen=True, slots=True)
class SelectionState:
    selected: bool
    reason: Reason
    since: float | None  # wall time it was put on the wall
    share: float  # of the time since the camera started, the part it was selected


class Selection:
    def __init__(self, cfg: SelectionConfig, timezone: str, started: float) -> None:
        self.cfg = cfg
        self.zone = ZoneInfo(timezone)
        self.started = started
        self._lock = threading.Lock()
        self._open = 0
        self._last_event_end: float | None = None
        self._present_at: float | None = None  # last time a presence class was seen (inside the schedule)
        self._since: float | None = None
        self._selected_seconds = 0.0
        self._counted_to = started

    def observe(self, now: float, open_events: int, labels: set[str]) -> None:
        """After each analysed batch: the camera's open events and the classes of its tracked objects."""
        with self._lock:
            self._advance(now)
            if self._open and not open_events:
                self._last_event_end = now
            self._open = open_events
            if self.cfg.presence and labels & set(self.cfg.presence):
                on = self.cfg.schedule is None or self.cfg.schedule.active(datetime.fromtimestamp(now, self.zone))
                if on:
                    self._present_at = now
            self._mark(now)

    def _reason(self, now: float) -> Reason:
        if self._open:
            return "event"
        if self._last_event_end is not None and now - self._last_event_end < self.cfg.hold_seconds:
            return "hold"
        if self._present_at is not None and now - self._present_at < max(self.cfg.hold_seconds, 2.0):
            return "presence"
        return ""

    def _advance(self, now: float) -> None:
        """Count the time since the last call as selected (it was, at the last call) or not."""
        if self._since is not None:
            self._selected_seconds += max(0.0, now - self._counted_to)
        self._counted_to = now
        self._mark(now)

    def _mark(self, now: float) -> None:
        """Note when selection began, or that it ended."""
        if not self._reason(now):
            self._since = None
        elif self._since is None:
            self._since = now

    def state(self, now: float) -> SelectionState:
        with self._lock:
            self._advance(now)
            reason = self._reason(now)
            total = max(now - self.started, 1e-6)
            return SelectionState(bool(reason), reason, self._since, min(1.0, self._selected_seconds / total))

    @property
    def selected_seconds(self) -> float:
        return self._selected_seconds
