"""Event-level scoring: predicted events against true ones, matched one-to-one per camera and rule.

A prediction matches a true event of the same camera and rule whose start is within `tolerance`
seconds. Among all one-to-one matchings the one with the most matches wins, then the one whose
[start, end] intervals overlap most, then the one with the closest starts (an optimal assignment,
so one early alarm cannot steal the truth that a better alarm matches).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

EventRecord = Mapping[str, Any]  # an `events.jsonl` record: needs camera, rule, start, end


@dataclass(frozen=True, slots=True)
class Match:
    predicted: EventRecord
    truth: EventRecord

    @property
    def delay(self) -> float:
        """Alarm delay in seconds: negative when the alarm came early."""
        return float(self.predicted["start"]) - float(self.truth["start"])


@dataclass(frozen=True, slots=True)
class Score:
    tp: int
    fp: int
    fn: int
    precision: float  # 1.0 when nothing was predicted
    recall: float  # 1.0 when there was nothing to find
    f1: float
    mean_delay: float | None  # over matches; None without any
    worst_delay: float | None  # the latest alarm

    @classmethod
    def of(cls, matches: Sequence[Match], fp: int, fn: int) -> Score:
        tp = len(matches)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        delays = [m.delay for m in matches]
        return cls(
            tp,
            fp,
            fn,
            precision,
            recall,
            f1,
            sum(delays) / len(delays) if delays else None,
            max(delays) if delays else None,
        )

    @property
    def alarms_per_event(self) -> float | None:
        """Alarms raised per true event (1.0: one each; above: duplicates or false alarms); None without truth."""
        return (self.tp + self.fp) / (self.tp + self.fn) if self.tp + self.fn else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"alarms_per_event": self.alarms_per_event}


@dataclass(frozen=True, slots=True)
class MatchResult:
    overall: Score
    per_rule: dict[str, Score]
    matches: list[Match]
    false_alarms: list[EventRecord]
    misses: list[EventRecord]


def _overlap(a: EventRecord, b: EventRecord) -> float:
    """Intersection over union of the two [start, end] intervals; 0 when both are instants."""
    a0, b0 = float(a["start"]), float(b["start"])
    a1 = a0 if a.get("end") is None else float(a["end"])
    b1 = b0 if b.get("end") is None else float(b["end"])
    union = max(a1, b1) - min(a0, b0)
    return max(0.0, min(a1, b1) - max(a0, b0)) / union if union > 0 else 0.0


def _assign(predicted: Sequence[EventRecord], truth: Sequence[EventRecord], tolerance: float) -> list[tuple[int, int]]:
    """Index pairs (predicted, truth) of the best one-to-one matching."""
    if not predicted or not truth:
        return []
    delta = np.abs(np.array([[float(p["start"]) - float(t["start"]) for t in truth] for p in predicted]))
    feasible = delta <= tolerance + 1e-9
    overlap = np.array([[_overlap(p, t) for t in truth] for p in predicted])
    # Each pair's tie-break cost is below 1.001, so a reward above the sum of all of them makes
    # the number of matches the first criterion.
    tie = (1.0 - overlap) + 1e-3 * delta / max(tolerance, 1e-9)
    reward = 2.0 * (min(len(predicted), len(truth)) + 1)
    rows, cols = linear_sum_assignment(np.where(feasible, tie - reward, 0.0))
    return [(int(i), int(j)) for i, j in zip(rows, cols) if feasible[i, j]]


def match_events(
    predicted: Sequence[EventRecord], truth: Sequence[EventRecord], tolerance: float = 2.0
) -> MatchResult:
    """Match, count and time the alarms, per rule and over all rules."""
    groups: dict[tuple[str, str], tuple[list[EventRecord], list[EventRecord]]] = defaultdict(lambda: ([], []))
    for event in predicted:
        groups[(event["camera"], event["rule"])][0].append(event)
    for event in truth:
        groups[(event["camera"], event["rule"])][1].append(event)
    matches: list[Match] = []
    false_alarms: list[EventRecord] = []
    misses: list[EventRecord] = []
    for preds, truths in (groups[key] for key in sorted(groups)):
        pairs = _assign(preds, truths, tolerance)
        matched_p, matched_t = {i for i, _ in pairs}, {j for _, j in pairs}
        matches += [Match(preds[i], truths[j]) for i, j in pairs]
        false_alarms += [p for i, p in enumerate(preds) if i not in matched_p]
        misses += [t for j, t in enumerate(truths) if j not in matched_t]
    per_rule = {
        rule: Score.of(
            [m for m in matches if m.truth["rule"] == rule],
            sum(e["rule"] == rule for e in false_alarms),
            sum(e["rule"] == rule for e in misses),
        )
        for rule in sorted({rule for _, rule in groups})
    }
    return MatchResult(Score.of(matches, len(false_alarms), len(misses)), per_rule, matches, false_alarms, misses)
