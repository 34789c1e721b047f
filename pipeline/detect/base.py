"""The detector interface and the YOLO pre/post-processing that raw-output backends share.

Every backend returns `supervision.Detections` in source-image pixels with
`data["class_name"]`, and `metadata["mode"]` ("full" or "packed") for the stage's statistics.
Backends that run the bare network (OpenVINO, ONNX Runtime) only implement `_infer`; the
letterbox/packing, decoding, class filter, per-class thresholds and NMS live here once.
"""

from __future__ import annotations

import ast
import copy
import difflib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Self

import cv2
import numpy as np
import supervision as sv
import yaml

from pipeline.detect.packing import Layout, Size, letterbox, merge_layouts, pack_frames
from pipeline.errors import CctvError
from pipeline.types import Box

Task = Literal["detect", "pose"]
Items = Sequence[tuple[np.ndarray, Sequence[Box] | None]]  # frames (BGR), each with its regions (None: whole)
Job = tuple[Layout, list[int]]  # one inference: its layout, and the items its images are
MAX_DETECTIONS = 300  # per inference, as Ultralytics caps it
DEFAULT_INPUT: Size = (640, 640)


@dataclass(frozen=True)
class ClassThresholds:
    """Minimum score per class id; classes outside the filter get +inf so nothing passes."""

    min_scores: np.ndarray  # float32, indexed by class id

    @classmethod
    def build(
        cls,
        names: Mapping[int, str],
        classes: Sequence[str] | None,
        thresholds: Mapping[str, float],
        default: float,
    ) -> ClassThresholds:
        """Check every class name against the model's so a typo fails at startup, not silently."""
        known = set(names.values())
        for name in [*(classes or []), *thresholds]:
            if name not in known:
                raise CctvError(_unknown_class(name, names))
        keep = known if classes is None else set(classes)
        min_scores = np.full(max(names) + 1, np.inf, np.float32)
        for class_id, name in names.items():
            if name in keep:
                min_scores[class_id] = thresholds.get(name, default)
        return cls(min_scores)

    @property
    def class_ids(self) -> list[int]:
        return np.flatnonzero(np.isfinite(self.min_scores)).tolist()

    @property
    def lowest(self) -> float:
        return float(self.min_scores.min())

    def keep(self, scores: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
        return scores >= self.min_scores[class_ids]


def _unknown_class(name: str, names: Mapping[int, str]) -> str:
    """One line: the bad name, the closest valid one and a few valid names."""
    valid = list(names.values())
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown class {name!r}{hint}: the model knows {', '.join(valid[:6])}, ... ({len(valid)} classes)"


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by class-aware NMS, best score first, at most MAX_DETECTIONS."""
    if not len(scores):
        return np.empty(0, np.intp)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1).astype(np.float64)
    keep = cv2.dnn.NMSBoxesBatched(
        xywh, scores.astype(np.float32), class_ids.astype(np.int32), 0.0, iou, top_k=MAX_DETECTIONS
    )
    return np.asarray(keep, np.intp).reshape(-1)


def make_detections(
    xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, names: Mapping[int, str]
) -> sv.Detections:
    """Detections with the dtypes and `class_name` data every stage expects, even when empty."""
    return sv.Detections(
        xyxy=np.asarray(xyxy, np.float32).reshape(-1, 4),
        confidence=np.asarray(scores, np.float32),
        class_id=np.asarray(class_ids, np.int64),
        data={"class_name": np.array([names[int(c)] for c in class_ids], dtype=str)},
    )


def to_blob(canvas_bgr: np.ndarray) -> np.ndarray:
    """1x3xHxW float32 RGB in 0..1, the layout Ultralytics exports expect."""
    return cv2.dnn.blobFromImage(canvas_bgr, 1 / 255, swapRB=True)


def decode(
    raw: np.ndarray, names: Mapping[int, str], thresholds: ClassThresholds, iou: float, keypoints: tuple[int, int] | None
) -> sv.Detections:
    """1x(4+C[+K*D])xN raw YOLO output (cx, cy, w, h in input pixels, class scores[, keypoints]) -> NMS'd detections.

    Each anchor takes its best class over all classes before the filter, as Ultralytics does, so
    a bus is not re-labelled a person because only people are kept. A pose model's keypoints
    (x, y in input pixels, visibility) come along in `data["keypoints"]`, K x D per detection.
    """
    pred = raw.reshape(raw.shape[-2:])
    scores = pred[4 : 4 + len(names)]
    class_ids = scores.argmax(axis=0)
    best = np.take_along_axis(scores, class_ids[None], axis=0)[0]
    keep = thresholds.keep(best, class_ids)
    cx, cy, w, h = pred[:4, keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    best, class_ids = best[keep], class_ids[keep]
    kept = nms(xyxy, best, class_ids, iou)
    found = make_detections(xyxy[kept], best[kept], class_ids[kept], names)
    if keypoints is not None:
        points = pred[4 + len(names) :, keep][:, kept]  # (K*D, n)
        found.data["keypoints"] = points.T.reshape(-1, *keypoints).astype(np.float32)
    return found


@dataclass(frozen=True)
class DetectOptions:
    """What every backend is asked: which classes, from which score, with which NMS overlap."""

    classes: Sequence[str] | None = None  # None: every class the model knows
    thresholds: Mapping[str, float] = field(default_factory=dict)  # class name -> minimum score
    default_threshold: float = 0.25
    iou: float = 0.5
    max_canvas: int | None = None  # longest side of any input (None: the model's own size)


def _capped(size: Size, longest: int | None, fit_canvas: bool) -> Size:
    """The model's input size with neither side above `longest` (a camera's `detect.max_canvas`)."""
    if longest is None:
        return size
    if not fit_canvas:
        raise CctvError(
            f"detect.max_canvas {longest}: this model runs at its own {size[0]}x{size[1]} only; "
            "use the openvino backend with model.flexible, or drop max_canvas"
        )
    if longest > max(size):
        raise CctvError(f"detect.max_canvas {longest} is larger than the model's input {size[0]}x{size[1]}")
    return (min(size[0], longest), min(size[1], longest))


class BatchDetector(Protocol):
    """What the engine needs of a detector: a local model, or the live service's shared one."""

    inferences: int

    def detect_many(self, items: Items) -> list[sv.Detections]: ...


class Detector(ABC):
    """Finds objects in a BGR frame, on the whole frame or only in given regions.

    Exactly one inference per call: regions are packed into one canvas when that keeps at
    least the full frame's resolution, otherwise the frame is letterboxed.
    """

    names: dict[int, str]
    model_size: Size  # the model's own input width, height
    input_size: Size  # the largest input this view runs (the model's, or `max_canvas` when `fit_canvas`)

    def __init__(
        self,
        names: Mapping[int, str],
        input_size: Size,
        options: DetectOptions,
        fit_canvas: bool = False,
        keypoints: tuple[int, int] | None = None,
    ) -> None:
        """fit_canvas: the model takes any input up to input_size in multiples of 32 (see `packing`);
        keypoints: a pose model's (keypoints, values per keypoint), e.g. (17, 3)."""
        self.names = dict(names)
        self.model_size = input_size
        self.input_size = _capped(input_size, options.max_canvas, fit_canvas)
        self.fit_canvas = fit_canvas
        self.keypoints = keypoints
        self.iou = options.iou
        self.thresholds = ClassThresholds.build(self.names, options.classes, options.thresholds, options.default_threshold)
        self.inferences = 0
        self.network: Detector = self  # the loaded model this view runs (its views share it)

    def with_options(self, options: DetectOptions) -> Self:
        """This loaded model with other classes and thresholds, and its own inference count (one per camera)."""
        view = copy.copy(self)
        Detector.__init__(view, self.names, self.model_size, options, self.fit_canvas, self.keypoints)
        view.network = self.network
        return view

    def detect(self, image_bgr: np.ndarray, regions: Sequence[Box] | None = None) -> sv.Detections:
        """Detections in source pixels; `regions` (source boxes) limit where to look, None = everywhere."""
        return self.detect_many([(image_bgr, regions)])[0]

    def detect_many(self, items: Items) -> list[sv.Detections]:
        """Detections of several same-sized frames, as few inferences as their regions allow.

        Consecutive frames whose regions fit one canvas together (at no less than the letterbox
        scale) share an inference; a frame without regions is letterboxed on its own. The canvases
        are planned first and inferred together (`_detect_canvases`), so a backend may run them at once.
        """
        jobs = self.plan(items)
        canvases = [layout.render(*(items[j][0] for j in held)) for layout, held in jobs]
        self.inferences += len(jobs)
        results: dict[int, sv.Detections] = {}
        for (layout, held), found in zip(jobs, self._detect_canvases(canvases)):
            for j, mine in zip(held, self._split(layout, found, len(held))):
                results[j] = mine
        return [results[i] for i in range(len(items))]

    def plan(self, items: Items) -> list[Job]:
        """The canvases `detect_many` infers: each one's layout and the items (in order) its images are."""
        jobs: list[Job] = []
        group: Job | None = None  # the packed canvas still taking frames
        for i, (image, regions) in enumerate(items):
            frame = (image.shape[1], image.shape[0])
            if not regions:
                jobs.append((letterbox(frame, self.input_size, self.fit_canvas), [i]))
                continue
            held = [*group[1], i] if group else [i]
            trial = self._pack([items[j][1] or [] for j in held], frame)
            if trial is None and group:
                jobs.append(group)
                group, held, trial = None, [i], self._pack([regions], frame)
            if trial is None:
                jobs.append((letterbox(frame, self.input_size, self.fit_canvas), [i]))
            else:
                group = (trial, held)
        if group:
            jobs.append(group)
        return jobs

    def _pack(self, regions: Sequence[Sequence[Box]], frame: Size) -> Layout | None:
        return pack_frames(regions, frame, self.input_size, fit=self.fit_canvas)

    def _split(self, layout: Layout, found: sv.Detections, images: int) -> list[sv.Detections]:
        """One canvas's detections back in source pixels, per image it holds."""
        detections = layout.to_source(found)
        if len(layout.tiles) > 1:  # an object seen in two overlapping tiles of the same image
            groups = detections.class_id + detections.data["image"] * (max(self.names) + 1)
            detections = detections[nms(detections.xyxy, detections.confidence, groups, self.iou)]
        image = detections.data.pop("image", np.zeros(len(detections), int))
        out = []
        for k in range(images):
            mine = detections[image == k]
            mine.metadata["mode"] = layout.mode
            out.append(mine)
        return out

    def _detect_canvases(self, canvases: Sequence[np.ndarray]) -> list[sv.Detections]:
        """Each canvas's detections; one after the other unless a backend runs several at once."""
        return [self._detect_canvas(canvas) for canvas in canvases]

    @abstractmethod
    def _detect_canvas(self, canvas_bgr: np.ndarray) -> sv.Detections:
        """Filtered, NMS'd detections of one input-sized canvas, in canvas pixels."""


class YoloDetector(Detector):
    """A backend that runs the bare exported network and returns its raw 1x(4+C)xN output."""

    def _detect_canvas(self, canvas_bgr: np.ndarray) -> sv.Detections:
        return self._detect_canvases([canvas_bgr])[0]

    def _detect_canvases(self, canvases: Sequence[np.ndarray]) -> list[sv.Detections]:
        raws = self._infer_many(canvases, self.thresholds.lowest)
        return [decode(raw, self.names, self.thresholds, self.iou, self.keypoints) for raw in raws]

    def _infer_many(self, canvases: Sequence[np.ndarray], floor: float) -> list[np.ndarray]:
        """`_infer` of each canvas; a backend that can run several inferences at once overrides it."""
        return [self._infer(canvas, floor) for canvas in canvases]

    @abstractmethod
    def _infer(self, canvas_bgr: np.ndarray, floor: float = 0.0) -> np.ndarray:
        """Raw network output for an HxWx3 BGR canvas (`to_blob` makes the export's input of it): every
        anchor, or (where the backend can) only those whose best class score reaches `floor`, which
        `decode` would drop anyway."""


@dataclass(frozen=True)
class Together:
    """What `detect_together` found: per request, per item; and what it took."""

    found: list[list[sv.Detections]]
    inferences: int
    shared: int  # inferences that served more than one request


def detect_together(requests: Sequence[tuple[YoloDetector, Items]]) -> Together:
    """Several cameras' frames through one network, as `detect_many` of each, in fewer inferences.

    Each camera's canvases are planned as alone; then a packed canvas joins another camera's when
    the two merged have fewer pixels than apart (`merge_layouts`). The canvases are decoded at the
    lowest threshold any camera asks per class, and each camera's own classes and thresholds are
    applied to its images afterwards (NMS is per class, so that is the same as decoding alone). The
    views must be of one loaded network (`Detector.with_options`) that takes any input size.
    """
    first = requests[0][0]
    if not first.fit_canvas or any(view.network is not first.network for view, _ in requests):
        raise ValueError("detect_together needs views of one network that takes any input size")
    entries: list[tuple[Layout, list[tuple[int, int]]]] = []  # a canvas: its layout, (request, item) per image
    for r, (view, items) in enumerate(requests):
        for layout, held in view.plan(items):
            mine = [(r, j) for j in held]
            for k, (other, owners) in enumerate(entries):
                if layout.mode != "packed" or other.mode != "packed" or r in {q for q, _ in owners}:
                    continue
                if requests[owners[0][0]][0].input_size != view.input_size:
                    continue
                merged = merge_layouts([other, layout], view.input_size)
                if merged is not None:
                    entries[k] = (merged, owners + mine)
                    break
            else:
                entries.append((layout, mine))
    canvases = [layout.render(*(requests[r][1][j][0] for r, j in owners)) for layout, owners in entries]
    raws = first._infer_many(canvases, min(view.thresholds.lowest for view, _ in requests))
    lowest = ClassThresholds(np.minimum.reduce([view.thresholds.min_scores for view, _ in requests]))
    results: list[dict[int, sv.Detections]] = [{} for _ in requests]
    for (layout, owners), raw in zip(entries, raws):
        found = decode(raw, first.names, lowest, first.iou, first.keypoints)
        for (r, j), image in zip(owners, first._split(layout, found, len(owners))):
            kept = image[requests[r][0].thresholds.keep(image.confidence, image.class_id)]
            kept.metadata["mode"] = layout.mode
            results[r][j] = kept
        for r in {r for r, _ in owners}:
            requests[r][0].inferences += 1
    found = [[mine[j] for j in range(len(items))] for mine, (_, items) in zip(results, requests)]
    shared = sum(len({r for r, _ in owners}) > 1 for _, owners in entries)
    return Together(found, len(entries), shared)


def model_file(path: Path, suffix: str, backend: str) -> Path:
    """The model file itself, given the file or the export directory that holds it."""
    if path.is_dir():
        found = sorted(path.glob(f"*{suffix}"))
        if not found:
            raise CctvError(f"{path}: no {suffix} file in this directory for the {backend} backend")
        return found[0]
    if path.suffix != suffix:
        raise CctvError(f"{path}: the {backend} backend needs a {suffix} file or its directory")
    return path


def load_failure(path: Path, runtime: str, exc: Exception) -> CctvError:
    """One line for a model file a runtime rejects (corrupt, wrong format, unknown device)."""
    lines = str(exc).strip().splitlines()
    return CctvError(f"{path}: {runtime} cannot load the model ({lines[0] if lines else type(exc).__name__})")


def export_metadata(directory: Path) -> dict[str, Any]:
    """Ultralytics' metadata.yaml written beside an export (names, imgsz), or {} without one."""
    meta = directory / "metadata.yaml"
    return yaml.safe_load(meta.read_text(encoding="utf-8")) if meta.is_file() else {}


def _literal(value: Any) -> Any:
    """ONNX metadata stores Ultralytics' values as Python literals; metadata.yaml as YAML."""
    return ast.literal_eval(value) if isinstance(value, str) else value


def metadata_names(meta: Mapping[str, Any], where: Path, expected: Task = "detect") -> dict[int, str]:
    """Class names from Ultralytics export metadata; a model of another task (segment, say) is refused."""
    task = meta.get("task", "detect")
    if task != expected:
        raise CctvError(f"{where}: this is a {task} model; the {expected} stage needs a {expected} model")
    names = _literal(meta.get("names"))
    if not names:
        raise CctvError(f"{where}: no class names in the model's metadata (export it with Ultralytics)")
    return {int(k): str(v) for k, v in names.items()}


def check_outputs(channels: int | str | None, names: Mapping[int, str], where: Path, keypoints: int = 0) -> None:
    """The raw output must hold 4 box values, one score per named class and the keypoints (skipped when dynamic)."""
    if isinstance(channels, int) and channels != 4 + len(names) + keypoints:
        raise CctvError(
            f"{where}: the model outputs {channels - 4 - keypoints} class scores but its metadata names {len(names)}"
        )


def metadata_keypoints(meta: Mapping[str, Any]) -> tuple[int, int] | None:
    """(keypoints, values per keypoint) of a pose export, e.g. (17, 3); None for a detect model."""
    shape = _literal(meta.get("kpt_shape"))
    return (int(shape[0]), int(shape[1])) if shape else None


def metadata_size(meta: Mapping[str, Any]) -> Size:
    """Input width, height from Ultralytics export metadata (its imgsz is height, width)."""
    imgsz = _literal(meta.get("imgsz", DEFAULT_INPUT[::-1]))
    height, width = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    return int(width), int(height)
