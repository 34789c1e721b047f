"""The fall rule on hand-made poses (a fall, lying down slowly, sitting, bending, squatting) and on real clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, cctv
from poses import RATES, SCENARIOS, sequence

from pipeline.config import FallRule
from pipeline.rules import RuleHit, Scene
from pipeline.rules.fall import FallWatch

FALLS = [name for name, (_, _, kind, _) in SCENARIOS.items() if kind == "fall"]


def watch(name: str, fps: float, jitter: float) -> list[RuleHit]:
    rule, hits = FallWatch(FallRule(name="person-down", type="fall"), None), []
    frames = sequence(name, fps, jitter)
    for k, (t, tracks) in enumerate(frames):
        hits += rule.update(Scene(t, k, tracks))
    return hits + rule.close(frames[-1][0], len(frames) - 1)


@pytest.mark.parametrize("name", FALLS)
@pytest.mark.parametrize(("fps", "jitter"), RATES, ids=["10fps", "5fps", "3fps-irregular"])
def test_fall_or_not(name: str, fps: float, jitter: float) -> None:
    hits = watch(name, fps, jitter)
    starts = [h.alarm for h in hits if h.kind == "start"]
    if not SCENARIOS[name][3]:
        assert starts == []
        return
    (alarm,) = starts  # one event per fall
    assert alarm.type == "fall" and alarm.track_id == 1 and 2.0 <= alarm.fell_at <= 2.8 <= alarm.start <= 4.5
    assert [h.kind for h in hits].count("end") == 1


@pytest.mark.parametrize(("clip", "fell"), [("s1_fall_14", True), ("s4_fall_01", True), ("s1_adl_16", False)])
def test_real_clips(tmp_path: Path, clip: str, fell: bool) -> None:
    """GMDCSA24: a backward fall, a fall from standing on a bed, and picking a phone up from the floor."""
    out = tmp_path / clip
    result = cctv("replay", ROOT / "sample_videos" / "events" / "fall" / f"{clip}.mp4", "--config", ROOT / "configs" / "fall.yaml", "--out", out)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == (["fall"] if fell else [])
    if fell:
        labels = {"s1_fall_14": (0.3, 5.73), "s4_fall_01": (1.8, 4.66)}[clip]
        assert labels[0] <= events[0]["fell_at"] <= events[0]["start"] <= labels[1]
