"""`cctv eval`, `cctv truth-from-mot` and `cctv eval-mot` as a user runs them, on hand-written files.

The matching rules themselves are tested in test_scoring.py; these tests check what the commands
print and write, and that bad input is one clear line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cctv(*args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pipeline.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def ok(*args: object) -> str:
    result = cctv(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def ev(start: float, end: float | None = None, rule: str = "in", **extra: Any) -> dict[str, Any]:
    return {"camera": "cam", "rule": rule, "start": start, "end": start if end is None else end, **extra}


def jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def table(stdout: str) -> dict[str, list[str]]:
    """The score table's rows by their first cell."""
    return {line.split()[0]: line.split()[1:] for line in stdout.splitlines() if line.strip()}


def test_eval_table_and_default_json(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    events = jsonl(tmp_path / "run" / "events.jsonl", [ev(3.0, 5.0), ev(10.0, rule="cross")])
    truth = jsonl(tmp_path / "truth.jsonl", [ev(3.0, 5.0, track_id=4, note="man in red"), ev(10.0, rule="cross")])
    rows = table(ok("eval", "--events", events, "--truth", truth))
    assert rows["rule"] == ["TP", "FP", "misses", "precision", "recall", "F1", "alarms/true", "mean", "delay", "worst", "delay"]
    assert rows["in"] == ["1", "0", "0", "1.000", "1.000", "1.000", "1.00", "+0.00", "s", "+0.00", "s"]
    assert rows["overall"][:6] == ["2", "0", "0", "1.000", "1.000", "1.000"]
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert report["overall"] == {
        "tp": 2, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "mean_delay": 0.0, "worst_delay": 0.0,
        "alarms_per_event": 1.0,
    }  # fmt: skip
    assert sorted(report["per_rule"]) == ["cross", "in"] and report["tolerance"] == 2.0
    assert report["matches"][1]["truth"]["note"] == "man in red" and report["misses"] == report["false_alarms"] == []


def test_eval_tolerance_edges(tmp_path: Path) -> None:
    """An alarm exactly `tolerance` early and one exactly `tolerance` late both match; narrower, neither does."""
    events = jsonl(tmp_path / "events.jsonl", [ev(8.0), ev(32.0)])
    truth = jsonl(tmp_path / "truth.jsonl", [ev(10.0), ev(30.0)])
    rows = table(ok("eval", "--events", events, "--truth", truth, "--tolerance", "2"))
    assert rows["in"] == ["2", "0", "0", "1.000", "1.000", "1.000", "1.00", "+0.00", "s", "+2.00", "s"]
    out = tmp_path / "narrow.json"
    rows = table(ok("eval", "--events", events, "--truth", truth, "--tolerance", "1.9", "--out", out))
    assert rows["in"] == ["0", "2", "2", "0.000", "0.000", "0.000", "1.00", "-", "-"]
    narrow = json.loads(out.read_text())
    assert narrow["overall"]["mean_delay"] is None and len(narrow["false_alarms"]) == len(narrow["misses"]) == 2


def test_eval_details_list_every_decision(tmp_path: Path) -> None:
    """A duplicate alarm is 1 TP + 1 FP; an alarm of the wrong rule is a false alarm and a miss."""
    events = jsonl(
        tmp_path / "events.jsonl",
        [ev(10.0, 14.0, track_id=7), ev(10.5, 30.0, track_id=8), ev(20.0, rule="loiter", track_id=3)],
    )
    truth = jsonl(tmp_path / "truth.jsonl", [ev(10.0, 14.0, track_id=1), ev(20.0, track_id=3, note="by the door")])
    stdout = ok("eval", "--events", events, "--truth", truth, "--details")
    rows = table(stdout)
    assert rows["in"][:6] == ["1", "1", "1", "0.500", "0.500", "0.500"]
    assert rows["loiter"][:6] == ["0", "1", "0", "0.000", "1.000", "0.000"]
    details = [line for line in stdout.splitlines() if line.startswith(("match", "false alarm", "miss"))]
    assert details == [
        "match        cam/in 10.00-14.00 s track 1 <- alarm cam/in 10.00-14.00 s track 7, delay +0.00 s",
        "false alarm  cam/in 10.50-30.00 s track 8",
        "false alarm  cam/loiter 20.00-20.00 s track 3",
        "miss         cam/in 20.00-20.00 s track 3 (by the door)",
    ]
    report = json.loads((tmp_path / "eval.json").read_text())
    assert [e["track_id"] for e in report["false_alarms"]] == [8, 3] and report["misses"][0]["note"] == "by the door"


def test_eval_empty_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "events.jsonl"
    empty.write_text("\n")
    stdout = ok("eval", "--events", empty, "--truth", empty, "--details")
    assert table(stdout)["overall"] == ["0", "0", "0", "1.000", "1.000", "1.000", "-", "-", "-"] and "no events" in stdout
    assert json.loads((tmp_path / "eval.json").read_text())["per_rule"] == {}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"camera": "cam", "rule": "in", "start": 1.0}', "truth.jsonl:2: end: Field required"),
        ('{"camera": "cam", "rule": "in", "start": 5, "end": 4}', "truth.jsonl:2: end 4.0 is before start 5.0"),
        ('{"camera": "cam", "rule": "in", "start": 1, "end": 2', "truth.jsonl:2: invalid JSON"),
        ('{"camera": "cam", "rule": "in", "start": 1, "end": 2, "track_id": "x"}', "truth.jsonl:2: track_id: "),
    ],
)
def test_eval_bad_truth_line(tmp_path: Path, line: str, problem: str) -> None:
    events = jsonl(tmp_path / "events.jsonl", [ev(1.0)])
    truth = tmp_path / "truth.jsonl"
    truth.write_text(json.dumps(ev(1.0)) + "\n" + line + "\n")
    assert problem in one_error_line(cctv("eval", "--events", events, "--truth", truth))
    assert not (tmp_path / "eval.json").exists()


def test_eval_missing_file(tmp_path: Path) -> None:
    truth = jsonl(tmp_path / "truth.jsonl", [ev(1.0)])
    line = one_error_line(cctv("eval", "--events", tmp_path / "nope.jsonl", "--truth", truth))
    assert line == f"error: {tmp_path / 'nope.jsonl'}: file not found"


CONFIG = """
cameras:
  cam:
    source: {source}
    zones:
      z: {{polygon: [[0, 0], [100, 0], [100, 100], [0, 100]]}}
    lines:
      l: {{points: [[200, 0], [200, 100]]}}
    rules:
      - {{name: in, type: intrusion, zone: z}}
      - {{name: cross, type: line_crossing, line: l}}
      - {{name: loiter, type: loitering, zone: z, min_seconds: 5}}
"""


def test_truth_from_mot(tmp_path: Path) -> None:
    """Person 1 stands in the zone for MOT frames 1-10 (0.0-0.9 s at 10 fps), then is beyond the line."""
    inside = [f"{f},1,40,30,20,20,1,-1,-1,-1" for f in range(1, 11)]  # bottom-centre (50, 50)
    beyond = [f"{f},1,290,30,20,20,1,-1,-1,-1" for f in range(11, 16)]  # bottom-centre (300, 50)
    mot = tmp_path / "gt.txt"
    mot.write_text("\n".join(inside + beyond) + "\n")
    config = tmp_path / "site.yaml"
    config.write_text(CONFIG.format(source=tmp_path / "missing.avi"))
    out = tmp_path / "truth.jsonl"
    stdout = ok("truth-from-mot", "--mot", mot, "--config", config, "--fps", "10", "--out", out)
    counts = [line.split() for line in stdout.splitlines()[:3]]
    assert counts == [["cam/in", "1"], ["cam/cross", "1"], ["cam/loiter", "0"]]
    events = {e["rule"]: e for e in map(json.loads, out.read_text().splitlines())}
    assert {r: (e["camera"], e["track_id"], e["start"], e["end"]) for r, e in events.items()} == {
        "in": ("cam", 1, 0.0, 0.9),
        "cross": ("cam", 1, 1.0, 1.0),
    }
    assert events["cross"]["type"] == "line_crossing"
    rows = table(ok("eval", "--events", out, "--truth", out))  # the written file is valid truth
    assert rows["overall"][:6] == ["2", "0", "0", "1.000", "1.000", "1.000"]
    line = one_error_line(cctv("truth-from-mot", "--mot", mot, "--config", config, "--out", out))
    assert "give --fps" in line


A = [(10 + 5 * f, 10, 20, 50) for f in range(4)]  # x, y, w, h of person 1 in frames 1-4
B = [(200 - 5 * f, 20, 20, 50) for f in range(4)]


def mot_file(path: Path, ids: tuple[int, int]) -> Path:
    rows = [
        f"{f + 1},{tid},{x},{y},{w},{h},1,-1,-1,-1" for f in range(4) for tid, (x, y, w, h) in zip(ids, (A[f], B[f]))
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_eval_mot_perfect_tracker(tmp_path: Path) -> None:
    pytest.importorskip("motmetrics")
    gt = mot_file(tmp_path / "gt.txt", (1, 2))
    tracks = mot_file(tmp_path / "tracks.txt", (7, 9))
    out = tmp_path / "mot.json"
    rows = table(ok("eval-mot", "--tracks", tracks, "--gt", gt, "--out", out))
    assert (rows["MOTA"], rows["IDF1"], rows["ID"], rows["recall"], rows["frames"]) == (
        ["1.000"], ["1.000"], ["switches", "0"], ["1.000"], ["4"]
    )  # fmt: skip
    scores = json.loads(out.read_text())
    assert (scores["mota"], scores["idf1"], scores["id_switches"], scores["num_frames"]) == (1.0, 1.0, 0, 4)
    first_two = table(ok("eval-mot", "--tracks", tracks, "--gt", gt, "--frames", "2"))
    assert (first_two["MOTA"], first_two["frames"]) == (["1.000"], ["2"])


def test_eval_mot_bad_tracks(tmp_path: Path) -> None:
    gt = mot_file(tmp_path / "gt.txt", (1, 2))
    tracks = tmp_path / "tracks.txt"
    tracks.write_text("1,7,10,10,20,50\n2,7,ten,10,20,50\n")
    assert one_error_line(cctv("eval-mot", "--tracks", tracks, "--gt", gt)) == (
        f"error: {tracks}:2: expected frame,id,x,y,w,h,... (MOTChallenge format)"
    )
