"""`cctv bench --peer`'s plot, from a report of the shape `run_peer_bench` writes (the runs themselves
take minutes and are a benchmark command, not a test)."""

from __future__ import annotations

from pathlib import Path

from pipeline.bench.peer import plot_peer


def test_peer_plot_shows_both_sides_of_each_clip(tmp_path: Path) -> None:
    side = {"wall_seconds": 8.7, "cpu_seconds": 13.3, "peak_rss_mb": 485.0, "frames": 795, "events": 51}
    peer = {"wall_seconds": 18.7, "cpu_seconds": 32.6, "peak_rss_mb": 1084.0, "frames": 795, "events": 47}
    rows = [{"clip": clip, "repeats": 3, "pipeline": side, "peer": peer, "wall_ratio": 0.467, "cpu_ratio": 0.408}
            for clip in ("pets09", "oxford")]
    plot_peer({"cpu": "a test CPU", "clips": rows}, tmp_path / "bench-peer.png")
    assert (tmp_path / "bench-peer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "bench-peer.png").stat().st_size > 10_000
