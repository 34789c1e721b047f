"""Ultralytics backend: any model Ultralytics loads (.pt, or an export directory such as OpenVINO).

Needs the optional `ultralytics` extra. Ultralytics (and so torch) is imported only when this
backend is constructed, and never reaches for the network: it is told it is offline and must
not pip-install missing requirements.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import supervision as sv

from pipeline.detect.base import (
    MAX_DETECTIONS,
    DetectOptions,
    Detector,
    export_metadata,
    load_failure,
    make_detections,
    metadata_size,
)
from pipeline.detect.packing import PAD_VALUE
from pipeline.errors import CctvError


class UltralyticsDetector(Detector):
    """Ultralytics' own pre/post-processing on each canvas, held to our class filter and thresholds."""

    def __init__(
        self,
        path: Path,
        options: DetectOptions | None = None,
        *,
        device: str = "CPU",
    ) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "False")
        try:
            from ultralytics import YOLO
        except ImportError:
            extra = "pip install 'cctv-pipeline[ultralytics]'"
            raise CctvError(f"the ultralytics backend needs its optional extra: {extra}") from None
        input_size = metadata_size(export_metadata(path if path.is_dir() else path.parent))
        self.device = device.lower()
        try:
            self.model = YOLO(path, task="detect")
            # One blank prediction loads the runtime once (a bad file fails here, not on the first
            # frame); later calls only change per-call arguments, so Ultralytics keeps that predictor.
            width, height = input_size
            blank = np.full((height, width, 3), PAD_VALUE, np.uint8)
            self.model.predict(blank, imgsz=(height, width), device=self.device, verbose=False)
        except Exception as exc:  # Ultralytics raises bare Exception/TypeError/RuntimeError by format
            raise load_failure(path, "Ultralytics", exc) from None
        super().__init__(self.model.names, input_size, options or DetectOptions())

    def _detect_canvas(self, canvas_bgr: np.ndarray) -> sv.Detections:
        result = self.model.predict(
            canvas_bgr,
            imgsz=self.input_size[::-1],
            conf=self.thresholds.lowest,
            iou=self.iou,
            classes=self.thresholds.class_ids,
            max_det=MAX_DETECTIONS,
            device=self.device,
            verbose=False,
        )[0]
        found = sv.Detections.from_ultralytics(result)
        keep = self.thresholds.keep(found.confidence, found.class_id)
        return make_detections(found.xyxy[keep], found.confidence[keep], found.class_id[keep], self.names)
