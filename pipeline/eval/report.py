"""`cctv report`: one self-contained HTML page for a replay, readable without the tool.

Scores per rule, a timeline of alarms against the truth, and snapshots of the worst false alarms
(most confident first) and misses (longest first), all inlined so the file can be mailed.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.errors import CctvError
from pipeline.eval.scoring import MatchResult, Score, match_events
from pipeline.formats import read_events
from pipeline.sources import open_source

FALSE_ALARM = (40, 40, 230)
MISSED = (0, 160, 255)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def _plots(result: MatchResult, media_seconds: float) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = sorted(result.per_rule)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(rules))
    for k, metric in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (k - 1) * 0.27, [getattr(result.per_rule[r], metric) for r in rules], 0.27, label=metric)
    ax.set_xticks(x, rules, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, ncols=3)
    ax.set_title("Scores per rule")
    fig.tight_layout()
    scores = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.55 * len(rules)))
    row = {r: i for i, r in enumerate(rules)}
    matched = {id(m.predicted) for m in result.matches}

    def span(e: Mapping[str, Any]) -> tuple[float, float]:
        return float(e["start"]), max(float(e["end"] if e.get("end") is not None else e["start"]) - float(e["start"]), 0.4)

    for m in result.matches:
        ax.broken_barh([span(m.truth)], (row[m.truth["rule"]] - 0.4, 0.35), color="#bbbbbb")
    for e in result.misses:
        ax.broken_barh([span(e)], (row[e["rule"]] - 0.4, 0.35), color="#ffa000")
    for m in result.matches:
        ax.broken_barh([span(m.predicted)], (row[m.predicted["rule"]] + 0.05, 0.35), color="#2e7d32")
    for e in result.false_alarms:
        if id(e) not in matched:
            ax.broken_barh([span(e)], (row[e["rule"]] + 0.05, 0.35), color="#d32f2f")
    ax.set_yticks(range(len(rules)), rules, fontsize=8)
    ax.set_xlim(0, max(media_seconds, 1.0))
    ax.set_xlabel("media seconds (lower half: truth, grey matched / orange missed; upper: alarms, green true / red false)")
    ax.set_title("Timeline")
    fig.tight_layout()
    timeline = _png(fig)
    plt.close(fig)
    return [scores, timeline]


def _frame_of(event: Mapping[str, Any], fps: float) -> int:
    return int(event["start_frame"]) if event.get("start_frame") is not None else round(float(event["start"]) * fps)


def _snapshots(video: str, events: Sequence[tuple[Mapping[str, Any], tuple[int, int, int]]]) -> list[str | None]:
    """A JPEG (base64) of each event's first frame with its box drawn, decoding the video once."""
    with open_source(video, fps=None) as src:
        wanted = {_frame_of(e, src.fps) for e, _ in events}
        images = {}
        for frame in src:
            if frame.index in wanted:
                images[frame.index] = frame.image
            if frame.index >= max(wanted, default=-1):
                break
        fps = src.fps
    out: list[str | None] = []
    for event, color in events:
        image = images.get(_frame_of(event, fps))
        if image is None:
            out.append(None)
            continue
        image = image.copy()
        if event.get("box"):
            x1, y1, x2, y2 = (round(v) for v in event["box"])
            cv2.rectangle(image, (x1, y1), (x2, y2), color, 3)
        scale = min(1.0, 480 / image.shape[1])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out.append(base64.b64encode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1]).decode())
    return out


def _score_row(name: str, s: Score) -> str:
    def delay(v: float | None) -> str:
        return "–" if v is None else f"{v:+.2f} s"

    cells = [name, s.tp, s.fp, s.fn, f"{s.precision:.3f}", f"{s.recall:.3f}", f"<b>{s.f1:.3f}</b>", delay(s.mean_delay), delay(s.worst_delay)]
    return "<tr>" + "".join(f"<td>{c if isinstance(c, str) and c.startswith('<b>') else html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _cards(title: str, events: Sequence[Mapping[str, Any]], images: Sequence[str | None], what: str) -> str:
    if not events:
        return f"<h2>{title}</h2><p>None.</p>"
    cards = []
    for e, img in zip(events, images):
        end = e.get("end")
        detail = (
            f"{html.escape(str(e['rule']))} · {float(e['start']):.1f}–{float(end if end is not None else e['start']):.1f} s"
            f" · track {e.get('track_id', '–')}" + (f" · score {float(e['score']):.2f}" if e.get("score") is not None else "")
        )
        pic = f'<img src="data:image/jpeg;base64,{img}" alt="{what}">' if img else "<p>(no frame)</p>"
        cards.append(f'<figure>{pic}<figcaption>{detail}</figcaption></figure>')
    return f"<h2>{title}</h2><div class=cards>{''.join(cards)}</div>"


def write_report(
    run_dir: str | Path, truth_path: str | Path, out: str | Path | None = None, video: str | None = None,
    tolerance: float = 2.0, top: int = 6,
) -> Path:
    run = Path(run_dir)
    try:
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CctvError(f"{run}: no summary.json (give the --out directory of a `cctv replay` run)") from None
    events = read_events(run / "events.jsonl")
    truth = read_events(truth_path)
    result = match_events(events, truth, tolerance=tolerance)
    worst_fa = sorted(result.false_alarms, key=lambda e: -float(e.get("score") or 0))[:top]
    worst_miss = sorted(result.misses, key=lambda e: -(float(e.get("end") or e["start"]) - float(e["start"])))[:top]
    shots = _snapshots(video or summary["video"], [(e, FALSE_ALARM) for e in worst_fa] + [(e, MISSED) for e in worst_miss])
    plots = _plots(result, float(summary.get("media_seconds", 0)))
    rows = "".join(_score_row(rule, s) for rule, s in sorted(result.per_rule.items())) + _score_row("overall", result.overall)
    facts = (
        f"{html.escape(str(summary['camera']))} · {html.escape(str(summary['video']))} · {summary['frames_processed']} frames,"
        f" {summary['media_seconds']} s of video in {summary['wall_seconds']} s ({summary['realtime_factor']}× real time),"
        f" peak RSS {summary['peak_rss_mb']} MB · {len(events)} alarms against {len(truth)} true events, tolerance {tolerance} s"
    )
    page = f"""<!doctype html><html lang=en><meta charset=utf-8><title>Replay report: {html.escape(str(summary['camera']))}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
.cards{{display:flex;flex-wrap:wrap;gap:12px}}figure{{margin:0;width:320px}}figure img{{width:100%}}figcaption{{font-size:12px}}</style>
<h1>Replay report</h1><p>{facts}</p>
<h2>Scores</h2><table><tr><th>rule</th><th>TP</th><th>FP</th><th>missed</th><th>precision</th><th>recall</th><th>F1</th>
<th>mean delay</th><th>worst delay</th></tr>{rows}</table>
{''.join(f'<p><img src="data:image/png;base64,{p}" alt="plot"></p>' for p in plots)}
{_cards("Worst false alarms (most confident first, box in red)", worst_fa, shots[:len(worst_fa)], "false alarm")}
{_cards("Worst misses (longest first, true box in orange)", worst_miss, shots[len(worst_fa):], "miss")}
</html>"""
    path = Path(out) if out else run / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
