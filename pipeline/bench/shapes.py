"""`cctv bench-shapes`: what one inference costs at each input size, for the models in `models/`.

The flexible detector (`detect/flexible.py`) runs the fixed 640x640 exports at the canvas each frame
needs; this measures each canvas shape against the export itself on this CPU: median wall and CPU
milliseconds over repeated inferences of a real frame, after warm-up, and the compile time per shape.
Both sides start from the BGR canvas: the export's blob is made with `to_blob`, the flexible model
converts it in its graph.
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from pipeline.bench.machine import cpu_description
from pipeline.detect.base import to_blob
from pipeline.detect.flexible import FlexibleYolo
from pipeline.detect.packing import letterbox
from pipeline.errors import CctvError

SHAPES = ((640, 640), (640, 384), (480, 480), (416, 416), (320, 320))  # width, height
MODELS = ("yolo11n_int8_openvino_model", "yolov8n_int8_openvino_model", "yolov8n-pose_int8_openvino_model")
CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time(infer: Any, canvas: np.ndarray, runs: int) -> tuple[float, float]:
    """(median wall ms, mean CPU ms) of `runs` inferences of a BGR canvas after 3 warm-up ones."""
    for _ in range(3):
        infer(canvas)
    walls, cpu0 = [], _cpu()
    for _ in range(runs):
        start = time.perf_counter()
        infer(canvas)
        walls.append((time.perf_counter() - start) * 1000)
    return statistics.median(walls), (_cpu() - cpu0) * 1000 / runs


def run_bench_shapes(models_dir: Path, image: np.ndarray, runs: int, out: Path) -> dict[str, Any]:
    rows = []
    for name in MODELS:
        xmls = sorted((models_dir / name).glob("*.xml"))
        if not xmls:
            raise CctvError(f"{models_dir / name}: no OpenVINO model (run `cctv assets`)")
        core = ov.Core()
        start = time.perf_counter()
        fixed = core.compile_model(core.read_model(xmls[0]), "CPU", CONFIG).create_infer_request()
        fixed_compile = time.perf_counter() - start
        square = letterbox(image.shape[1::-1], (640, 640)).render(image)
        wall, cpu = _time(lambda canvas, request=fixed: request.infer(to_blob(canvas)), square, runs)
        rows.append({"model": name, "shape": "640x640 (export)", "wall_ms": round(wall, 2), "cpu_ms": round(cpu, 2),
                     "compile_s": round(fixed_compile, 2), "ratio": 1.0})
        base_cpu = cpu
        flexible = FlexibleYolo(core.read_model(xmls[0]), core, "CPU", CONFIG)
        for width, height in SHAPES:
            start = time.perf_counter()
            flexible.compiled((1, 3, height, width))
            compile_s = time.perf_counter() - start
            canvas = letterbox(image.shape[1::-1], (width, height)).render(image)
            wall, cpu = _time(flexible.infer, canvas, runs)
            rows.append({"model": name, "shape": f"{width}x{height}", "wall_ms": round(wall, 2), "cpu_ms": round(cpu, 2),
                         "compile_s": round(compile_s, 2), "ratio": round(cpu / base_cpu, 3)})
    report = {"cpu": cpu_description(), "runs": runs, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-shapes.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def format_shapes(report: dict[str, Any]) -> str:
    lines = [f"CPU: {report['cpu']}; median of {report['runs']} inferences (wall), mean CPU time; decode included",
             f"{'model':34} {'input':18} {'wall ms':>8} {'CPU ms':>8} {'CPU vs export':>13} {'compile s':>9}"]
    for r in report["rows"]:
        lines.append(f"{r['model']:34} {r['shape']:18} {r['wall_ms']:>8} {r['cpu_ms']:>8} {r['ratio']:>13} {r['compile_s']:>9}")
    return "\n".join(lines)
