"""`cctv report` on a real PETS09 replay: one self-contained page a supervisor can read."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import cctv

from pipeline.eval.scoring import match_events
from pipeline.formats import read_jsonl


def test_report_is_self_contained_with_scores_and_snapshots(pets_run: Path, pets_truth: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = cctv("report", "--run", pets_run, "--truth", pets_truth, "--out", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    scores = match_events(read_jsonl(pets_run / "events.jsonl"), read_jsonl(pets_truth))
    overall = re.search(r"<td>overall</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", page)
    assert overall and tuple(map(int, overall.groups())) == (scores.overall.tp, scores.overall.fp, scores.overall.fn)
    assert f"<b>{scores.overall.f1:.3f}</b>" in page
    assert page.count("data:image/png;base64,") == 2  # scores and timeline
    shots = min(6, len(scores.false_alarms)) + min(6, len(scores.misses))
    assert shots > 0 and page.count("data:image/jpeg;base64,") == shots


def test_report_on_a_directory_without_a_run(tmp_path: Path, pets_truth: Path) -> None:
    result = cctv("report", "--run", tmp_path, "--truth", pets_truth)
    assert result.returncode == 2 and "no summary.json" in result.stderr
