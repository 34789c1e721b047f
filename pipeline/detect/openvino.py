"""OpenVINO backend: the fastest path on Intel/AMD CPUs for the int8 IR exports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openvino as ov

from pipeline.detect.base import (
    DetectOptions,
    Task,
    YoloDetector,
    check_outputs,
    export_metadata,
    load_failure,
    metadata_keypoints,
    metadata_names,
    metadata_size,
    to_blob,
)
from pipeline.detect.flexible import FlexibleYolo


class OpenVinoDetector(YoloDetector):
    """An Ultralytics OpenVINO export (the .xml, with metadata.yaml beside it for the names).

    `hint` LATENCY (one stream using every core) is the default because frames arrive one at a
    time; THROUGHPUT only pays when several requests are kept in flight.

    Inference runs in f32: on CPUs with AMX or AVX-512 BF16, OpenVINO otherwise computes in bf16,
    which moved scores by up to 0.15 and, measured on PETS09, cost event F1 0.925 -> 0.879 and
    track IDF1 81.8 -> 67.8 for about 5 % less CPU time. Elsewhere f32 is the default anyway.

    With `flexible` (the default), a fixed-shape export is rewritten to take any input size that is a
    multiple of 32 (`flexible.py`), so letterboxed frames and packed regions pay only for their canvas.
    """

    def __init__(
        self,
        xml: Path,
        options: DetectOptions | None = None,
        *,
        device: str = "CPU",
        hint: str = "LATENCY",
        flexible: bool = True,
        task: Task = "detect",
        cache: str | None = None,
        threads: int | None = None,
        streams: int = 1,
    ) -> None:
        """task: "pose" for a pose export (people, with keypoints in `data["keypoints"]`); cache: a
        directory for OpenVINO's compiled-model cache (skipped when it cannot be created); threads:
        that the inferences share (None: OpenVINO's choice, every core); streams: inferences of one batch
        run at once, each on its share of the threads (flexible models only)."""
        meta = export_metadata(xml.parent)
        names = metadata_names(meta, xml, task)
        keypoints = metadata_keypoints(meta) if task == "pose" else None
        core = ov.Core()
        try:
            model = core.read_model(xml)
            if model.input(0).get_partial_shape().is_dynamic:
                width, height = metadata_size(meta)
                model.reshape([1, 3, height, width])
        except RuntimeError as exc:
            raise load_failure(xml, "OpenVINO", exc) from None
        height, width = model.input(0).shape[2:]
        channels = model.output(0).get_partial_shape()[1]
        extra = keypoints[0] * keypoints[1] if keypoints else 0
        check_outputs(channels.get_length() if channels.is_static else None, names, xml, extra)
        config: dict[str, object] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        if cache is not None:
            try:
                directory = Path(cache).expanduser()
                directory.mkdir(parents=True, exist_ok=True)
                config["CACHE_DIR"] = str(directory)
            except OSError:
                pass  # a read-only home: compile every run, as without the cache
        self.flexible: FlexibleYolo | None = None
        if flexible:
            try:
                self.flexible = FlexibleYolo(model, core, device, config, streams)
            except ValueError:  # not an Ultralytics detect head: run it at its own size
                self.flexible = None
        # Check the class names before the (seconds-long) compilation.
        super().__init__(
            names, (width, height), options or DetectOptions(), fit_canvas=self.flexible is not None, keypoints=keypoints
        )
        try:
            if self.flexible is not None:
                self.flexible.compiled((1, 3, height, width))
            else:
                self.request = core.compile_model(model, device, config).create_infer_request()
        except RuntimeError as exc:
            raise load_failure(xml, f"OpenVINO ({device})", exc) from None

    def _infer_many(self, canvases: Sequence[np.ndarray], floor: float) -> list[np.ndarray]:
        if self.flexible is not None:
            return self.flexible.infer_many(canvases, floor)
        return super()._infer_many(canvases, floor)

    def _infer(self, canvas_bgr: np.ndarray, floor: float = 0.0) -> np.ndarray:
        if self.flexible is not None:
            return self.flexible.infer(canvas_bgr, floor)
        return self.request.infer(to_blob(canvas_bgr))[0]
