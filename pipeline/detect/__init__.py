"""Detector stage: a YOLO model behind one interface, whatever runtime executes it.

`load_detector` picks the backend named in the config; each backend module imports its runtime
only when chosen, so OpenVINO users never import onnxruntime or torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import supervision as sv

from pipeline.config import CameraConfig, ModelConfig
from pipeline.detect.base import BatchDetector, DetectOptions, Detector, model_file
from pipeline.errors import CctvError

__all__ = [
    "BatchDetector",
    "DetectOptions",
    "Detector",
    "camera_detector",
    "camera_options",
    "detect_image",
    "format_detections",
    "load_detector",
    "load_model",
]


def camera_options(model_cfg: ModelConfig, cam: CameraConfig) -> DetectOptions:
    """One camera's tracked classes, each down to the lowest score any later stage needs."""
    objects = cam.objects
    thresholds = {label: min(cam.detect.min_score, objects.filter_for(label).min_score) for label in objects.track}
    return DetectOptions(objects.track, thresholds, cam.detect.min_score, model_cfg.iou)


def camera_detector(model_cfg: ModelConfig, cam: CameraConfig) -> Detector:
    """The detector for one camera: its tracked classes, down to the lowest score any stage needs."""
    return load_model(model_cfg, camera_options(model_cfg, cam))


def load_detector(
    model_cfg: ModelConfig,
    classes: Sequence[str] | None,
    thresholds: Mapping[str, float] | None = None,
    default_threshold: float = 0.25,
) -> Detector:
    """The configured model, keeping only `classes` (None: all) at per-class minimum scores."""
    return load_model(model_cfg, DetectOptions(classes, thresholds or {}, default_threshold, model_cfg.iou))


def load_model(model_cfg: ModelConfig, options: DetectOptions) -> Detector:
    """The configured model with the given options (see `camera_options`)."""
    path = Path(model_cfg.path)
    if not path.exists():
        raise CctvError(f"model not found: {path} (run `cctv assets` to fetch the models)")
    if model_cfg.backend == "openvino":
        from pipeline.detect.openvino import OpenVinoDetector

        xml = model_file(path, ".xml", "openvino")
        return OpenVinoDetector(xml, options, device=model_cfg.device, flexible=model_cfg.flexible)
    if model_cfg.backend == "onnx":
        from pipeline.detect.onnx import OnnxDetector

        return OnnxDetector(model_file(path, ".onnx", "onnx"), options, device=model_cfg.device)
    from pipeline.detect.ultralytics import UltralyticsDetector

    return UltralyticsDetector(path, options, device=model_cfg.device)


def detect_image(
    path: str | Path,
    model_cfg: ModelConfig,
    classes: Sequence[str] | None = None,
    min_score: float = 0.25,
) -> sv.Detections:
    """Detections of one image file (for `cctv detect`)."""
    path = Path(path)
    image = cv2.imread(str(path)) if path.is_file() else None
    if image is None:
        raise CctvError(f"{path}: {'cannot read the image' if path.is_file() else 'image not found'}")
    return load_detector(model_cfg, classes, default_threshold=min_score).detect(image)


def format_detections(detections: sv.Detections) -> str:
    """One `label score x1 y1 x2 y2` line per detection, best first."""
    if not len(detections):
        return "no detections"
    order = detections.confidence.argsort()[::-1]
    return "\n".join(
        f"{detections.data['class_name'][i]} {detections.confidence[i]:.2f} "
        + " ".join(str(round(float(v))) for v in detections.xyxy[i])
        for i in order
    )
