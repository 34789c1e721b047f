"""Detector stage: a YOLO model behind one interface, whatever runtime executes it.

`load_detector` picks the backend named in the config; each backend module imports its runtime
only when chosen, so OpenVINO users never import onnxruntime or torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import supervision as sv

from pipeline.config import POSE_RULES, CameraConfig, ModelConfig
from pipeline.detect.base import BatchDetector, DetectOptions, Detector, Task, model_file
from pipeline.detect.combined import PeopleWithPose
from pipeline.errors import CctvError

POSE_KEYPOINTS = (17, 3)  # COCO keypoints: x, y, visibility

__all__ = [
    "BatchDetector",
    "DetectOptions",
    "Detector",
    "camera_detector",
    "camera_options",
    "combine",
    "pose_options",
    "uses_pose",
    "detect_image",
    "format_detections",
    "load_detector",
    "load_model",
]


def uses_pose(cam: CameraConfig) -> bool:
    """Whether a rule of the camera needs body keypoints (so its people go through the pose model)."""
    return any(isinstance(rule, POSE_RULES) for rule in cam.rules)


def _options(model_cfg: ModelConfig, cam: CameraConfig, classes: list[str]) -> DetectOptions | None:
    if not classes:
        return None
    objects = cam.objects
    thresholds = {label: min(cam.detect.min_score, objects.filter_for(label).min_score) for label in classes}
    return DetectOptions(classes, thresholds, cam.detect.min_score, model_cfg.iou, cam.detect.max_canvas)


def camera_options(model_cfg: ModelConfig, cam: CameraConfig) -> DetectOptions | None:
    """The detector's classes on one camera (people go to the pose model when a rule needs pose), each down
    to the lowest score any later stage needs; None when the pose model covers every tracked class."""
    pose = uses_pose(cam)
    return _options(model_cfg, cam, [c for c in cam.objects.track if not (pose and c == "person")])


def pose_options(model_cfg: ModelConfig, cam: CameraConfig) -> DetectOptions | None:
    """The pose model's options on one camera (people), or None when no rule needs pose."""
    return _options(model_cfg, cam, ["person"]) if uses_pose(cam) else None


def combine(main: Detector | BatchDetector | None, pose: Detector | BatchDetector | None) -> BatchDetector:
    """One camera's detector from its parts (see `camera_options`, `pose_options`)."""
    if pose is None:
        assert main is not None
        return main
    return PeopleWithPose(pose, main, POSE_KEYPOINTS)


def camera_detector(model_cfg: ModelConfig, cam: CameraConfig) -> BatchDetector:
    """The detector for one camera: its tracked classes, down to the lowest score any stage needs."""
    main, pose = camera_options(model_cfg, cam), pose_options(model_cfg, cam)
    return combine(
        None if main is None else load_model(model_cfg, main),
        None if pose is None else load_model(model_cfg, pose, task="pose"),
    )


def load_detector(
    model_cfg: ModelConfig,
    classes: Sequence[str] | None,
    thresholds: Mapping[str, float] | None = None,
    default_threshold: float = 0.25,
) -> Detector:
    """The configured model, keeping only `classes` (None: all) at per-class minimum scores."""
    return load_model(model_cfg, DetectOptions(classes, thresholds or {}, default_threshold, model_cfg.iou))


def load_model(model_cfg: ModelConfig, options: DetectOptions, task: Task = "detect") -> Detector:
    """The configured model (or, for `task` pose, the pose model) with the given options (see `camera_options`)."""
    path = Path(model_cfg.path if task == "detect" else model_cfg.pose_path)
    if not path.exists():
        raise CctvError(f"model not found: {path} (run `cctv assets` to fetch the models)")
    if model_cfg.backend == "openvino" or task == "pose":  # the pose model is an OpenVINO export
        from pipeline.detect.openvino import OpenVinoDetector

        xml = model_file(path, ".xml", "openvino")
        return OpenVinoDetector(
            xml, options, device=model_cfg.device, flexible=model_cfg.flexible, task=task,
            cache=model_cfg.compile_cache, threads=model_cfg.threads, streams=model_cfg.streams,
        )
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
