"""`cctv bench-live` end to end: a short real run on the looped PETS09 camera, its JSON and plot.

Only the structure and real outcomes are checked (the camera kept its rate, the load made requests
without errors, the service stopped cleanly); speed figures are reported by the command, not asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import FOOTAGE, ROOT, cctv


def pets_site(path: Path) -> Path:
    """configs/site.yaml with only its PETS09 camera, paths made absolute."""
    site = yaml.safe_load((ROOT / "configs" / "site.yaml").read_text())
    pets = site["cameras"]["pets"]
    pets["source"] = str(FOOTAGE / "pets09-s2l1.avi")
    site["cameras"] = {"pets": pets}
    site["model"]["path"] = str(ROOT / "models" / "yolo11n_int8_openvino_model")
    path.write_text(yaml.safe_dump(site))
    return path


def test_bench_live_short_run(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    config = pets_site(tmp_path / "site.yaml")
    result = cctv("bench-live", "--config", config, "--seconds", 40, "--load-seconds", 10, "--clients", 5, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pets" in result.stdout and "event latency" in result.stdout

    report = json.loads((out / "bench-live.json").read_text())
    pets = report["cameras"]["pets"]
    assert set(report["cameras"]) == {"pets"}
    assert 4 <= pets["fps_in_mean"] <= 6
    assert pets["frames_analysed"] > 0 and pets["frames_in"] >= pets["frames_analysed"] + pets["frames_dropped"]
    assert pets["lag_p50_s"] is not None and pets["lag_p95_s"] >= pets["lag_p50_s"]
    assert "fps_analysed_mean_load" in pets
    for key in ("cpu_mean_pct", "cpu_max_pct", "rss_peak_mb"):
        assert report["process"][key] > 0
    assert report["detector"]["inferences"] > 0 and report["detector"]["inference_ms_mean"] > 0
    assert (
        report["event_latency"]["count"]
        == report["event_latency"]["watch"]["count"] + report["event_latency"]["load"]["count"]
    )

    load = report["load"]
    assert load["requests"] > 0 and load["errors"] == 0, load["errors_by_kind"]
    assert {"list", "event"} <= set(load["endpoints"])
    assert sum(e["requests"] for e in load["endpoints"].values()) == load["requests"]
    assert report["shutdown"]["exit_code"] == 0
    assert (out / "bench-live.png").stat().st_size > 10_000
    assert (out / "data").is_dir()  # the service's own fresh data dir, kept for a look at the clips
    assert 0 < report["health_ms"]["watch"]["p50"] <= report["health_ms"]["watch"]["max"]
    assert report["health_ms"]["load"]["max"] is not None and not report["unauthenticated"]


def test_bench_live_unauthenticated_load_is_refused_and_measured(tmp_path: Path) -> None:
    """What anyone on the network can send: every request answered 401 (not an error), health timed meanwhile."""
    out = tmp_path / "bench"
    config = pets_site(tmp_path / "site.yaml")
    args = ("--seconds", 15, "--load-seconds", 10, "--clients", 20, "--unauthenticated", "--out", out)
    result = cctv("bench-live", "--config", config, *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "unauthenticated clients, every request refused" in result.stdout and "GET /api/health" in result.stdout
    report = json.loads((out / "bench-live.json").read_text())
    load = report["load"]
    assert report["unauthenticated"] and load["requests"] > 50 and load["errors"] == 0, load
    assert set(load["endpoints"]) == {"list"}
    assert report["health_ms"]["load"]["max"] > 0 and report["cameras"]["pets"]["fps_analysed_mean_load"] is not None


def test_bench_live_walls_receive_the_live_frames_and_cost_is_reported(tmp_path: Path) -> None:
    """Two operators' walls poll the camera's drawn frame at its sampled rate: frames arrive, the CPU is split by phase."""
    out = tmp_path / "bench"
    config = pets_site(tmp_path / "site.yaml")
    result = cctv("bench-live", "--config", config, "--seconds", 15, "--load-seconds", 10, "--viewers", 2, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "walls (2 viewers" in result.stdout
    report = json.loads((out / "bench-live.json").read_text())
    load = report["load"]
    assert load["errors"] == 0 and set(load["endpoints"]) == {"view"}, load
    assert 1.0 < load["frames_per_s_per_tile"]["pets"] <= 6.0  # distinct frames of 5 sampled a second
    assert report["process"]["cpu_mean_pct_sampled_load"] > 0 and report["process"]["cpu_mean_pct_sampled_watch"] > 0
