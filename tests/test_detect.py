"""The detector stage on real models and images: what it finds, where, and that packing loses nothing."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
import yaml
from pydantic import ValidationError

from pipeline.config import ModelConfig
from pipeline.detect import Detector, detect_image, format_detections, load_detector
from pipeline.detect.base import DetectOptions, detect_together, to_blob
from pipeline.detect.packing import letterbox, merge_layouts, pack_frames
from pipeline.errors import CctvError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OPENVINO_DIR = SHARED / "models" / "yolo11n_int8_openvino_model"
BUS = SHARED / "images" / "bus.jpg"
ZIDANE = SHARED / "images" / "zidane.jpg"
PETS = SHARED / "footage" / "pets09-s2l1.avi"
OPENVINO = ModelConfig(path=str(OPENVINO_DIR))
FIXED = ModelConfig(path=str(OPENVINO_DIR), flexible=False)  # always the export's own 640x640 input

# Ultralytics' own predict() on bus.jpg with this model: label, score, x1, y1, x2, y2.
BUS_TRUTH = [
    ("bus", 0.94, (12, 229, 798, 735)),
    ("person", 0.90, (48, 398, 242, 904)),
    ("person", 0.83, (221, 404, 346, 860)),
    ("person", 0.82, (670, 391, 810, 880)),
    ("person", 0.44, (1, 559, 62, 873)),  # cut off by the left edge
]


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    return cv2.imread(str(BUS))


@pytest.fixture(scope="module")
def people_detector() -> Detector:
    return load_detector(OPENVINO, ["person"], {}, 0.25)


@pytest.fixture(scope="module")
def all_detector() -> Detector:
    return load_detector(FIXED, None, {}, 0.25)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return sv.box_iou_batch(np.asarray(a, np.float64), np.asarray(b, np.float64))


def assert_same(found: sv.Detections, expected: sv.Detections, min_iou: float, score_tol: float) -> None:
    """One-to-one: every expected detection has a same-class partner with the IoU and score."""
    assert len(found) == len(expected)
    ious = iou_matrix(expected.xyxy, found.xyxy)
    ious[expected.class_id[:, None] != found.class_id[None, :]] = 0
    partner = ious.argmax(axis=1)
    assert len(set(partner.tolist())) == len(expected)
    assert ious[np.arange(len(expected)), partner].min() > min_iou
    assert np.abs(found.confidence[partner] - expected.confidence).max() < score_tol


# --- OpenVINO on the sample image -------------------------------------------------------------


def test_openvino_finds_the_bus_and_four_people(all_detector: Detector, bus: np.ndarray) -> None:
    found = all_detector.detect(bus)
    assert found.metadata["mode"] == "full"
    assert sorted(found.data["class_name"].tolist()) == ["bus", "person", "person", "person", "person"]
    assert found.xyxy.dtype == np.float32
    for label, score, box in BUS_TRUTH:
        same = found[found.data["class_name"] == label]
        err = np.abs(same.xyxy - np.array(box)).max(axis=1)
        i = int(err.argmin())
        assert err[i] < 6, f"{label} {box}: nearest found {same.xyxy[i]}"
        assert abs(same.confidence[i] - score) < 0.03


def test_detect_image_prints_label_score_box() -> None:
    lines = format_detections(detect_image(BUS, FIXED)).splitlines()
    assert len(lines) == 5
    label, score, *box = lines[0].split()
    assert label == "bus" and float(score) == pytest.approx(0.94, abs=0.02)
    assert [int(v) for v in box] == pytest.approx([12, 229, 798, 735], abs=3)
    assert lines[-1].startswith("person 0.4")
    assert format_detections(detect_image(BUS, FIXED, min_score=0.99)) == "no detections"


def test_unreadable_or_missing_image(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a jpeg")
    with pytest.raises(CctvError, match="junk.jpg: cannot read the image"):
        detect_image(junk, OPENVINO)
    with pytest.raises(CctvError, match="nope.jpg: image not found"):
        detect_image(tmp_path / "nope.jpg", OPENVINO)


# --- class filter and thresholds --------------------------------------------------------------


def test_class_filter_keeps_only_named_classes(people_detector: Detector, bus: np.ndarray) -> None:
    people = people_detector.detect(bus)
    assert people.data["class_name"].tolist() == ["person"] * 4
    buses = load_detector(OPENVINO, ["bus"], {}, 0.25).detect(bus)
    assert buses.data["class_name"].tolist() == ["bus"]


def test_per_class_thresholds(bus: np.ndarray) -> None:
    found = load_detector(FIXED, ["person", "bus"], {"person": 0.5}, 0.95).detect(bus)
    # The cut-off person (0.44) misses its 0.5; the bus (0.94) misses the 0.95 default.
    assert found.data["class_name"].tolist() == ["person"] * 3
    assert found.confidence.min() > 0.8


def test_unknown_class_is_one_clear_line() -> None:
    with pytest.raises(CctvError) as info:
        load_detector(OPENVINO, ["persn"], {}, 0.25)
    message = str(info.value)
    assert "\n" not in message
    assert "unknown class 'persn'" in message and "did you mean 'person'" in message
    assert "person, bicycle, car" in message and "(80 classes)" in message
    with pytest.raises(CctvError, match="unknown class 'unicorn'"):
        load_detector(OPENVINO, ["person"], {"unicorn": 0.3}, 0.25)


def test_missing_model_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "yolo11n_int8_openvino_model"
    for backend in ("openvino", "onnx", "ultralytics"):
        with pytest.raises(CctvError) as info:
            load_detector(ModelConfig(path=str(missing), backend=backend), ["person"], {}, 0.25)
        assert str(info.value) == f"model not found: {missing} (run `cctv assets` to fetch the models)"
    with pytest.raises(CctvError, match="no .xml file in this directory"):
        load_detector(ModelConfig(path=str(tmp_path)), ["person"], {}, 0.25)


def test_wrong_kind_of_model_is_refused(tmp_path: Path) -> None:
    pose = SHARED / "models" / "yolov8n-pose_int8_openvino_model"
    with pytest.raises(CctvError, match="this is a pose model; the detect stage needs a detect model"):
        load_detector(ModelConfig(path=str(pose)), ["person"], {}, 0.25)
    for name in ("yolo11n.xml", "yolo11n.bin"):
        (tmp_path / name).symlink_to(OPENVINO_DIR / name)
    (tmp_path / "metadata.yaml").write_text("task: detect\nnames: {0: person, 1: car}\n")
    with pytest.raises(CctvError, match="outputs 80 class scores but its metadata names 2"):
        load_detector(ModelConfig(path=str(tmp_path)), ["person"], {}, 0.25)


def test_openvino_never_imports_torch_or_ultralytics() -> None:
    code = (
        "import sys, cv2\n"
        "from pipeline.config import ModelConfig\n"
        "from pipeline.detect import load_detector\n"
        f"d = load_detector(ModelConfig(path={str(OPENVINO_DIR)!r}), ['person'], {{}}, 0.25)\n"
        f"assert len(d.detect(cv2.imread({str(BUS)!r}))) == 4\n"
        "print(sorted(m for m in ('torch', 'ultralytics', 'onnxruntime') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- any input size from the fixed export (detect/flexible.py) ------------------------------


@pytest.mark.parametrize("model", ["yolo11n", "yolov8n", "yolov8n-pose"])
def test_flexible_model_equals_the_fixed_export_at_640(model: str, bus: np.ndarray) -> None:
    """The rewritten graph, fed the BGR canvas, with the NumPy head decode gives the export's own raw
    output for its blob, every anchor; with a score floor, exactly the anchors that reach it."""
    import openvino as ov

    from pipeline.detect.flexible import FlexibleYolo

    xml = next((SHARED / "models" / f"{model}_int8_openvino_model").glob("*.xml"))
    core, config = ov.Core(), {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    exported = core.read_model(xml)
    fixed = core.compile_model(exported, "CPU", config).create_infer_request()
    flexible = FlexibleYolo(core.read_model(xml), core, "CPU", config)
    frame, _ = _pets_frame_and_people(100)
    for image in (bus, frame):
        canvas = letterbox(image.shape[1::-1], (640, 640)).render(image)
        want, got = fixed.infer(to_blob(canvas))[0], flexible.infer(canvas)
        assert got.shape == want.shape
        scores = want[0, 4:5] if model.endswith("pose") else want[0, 4:84]
        kept = scores.max(axis=0) >= 0.1
        assert kept.sum() >= 2
        np.testing.assert_allclose(got[0, :4, kept], want[0, :4, kept], atol=0.01)  # box pixels
        np.testing.assert_allclose(got[0, 4:], want[0, 4:], atol=1e-4)  # scores (and keypoints)
        # With a floor, only the anchors that can reach it are decoded: the same values, in the same order.
        few = flexible.infer(canvas, 0.1)
        assert kept.sum() <= few.shape[2] < kept.sum() + 5
        top = few[0, 4 : 4 + scores.shape[0]].max(axis=0) >= 0.1
        every = got[0, 4 : 4 + scores.shape[0]].max(axis=0) >= 0.1
        np.testing.assert_allclose(few[0][:, top], got[0][:, every], rtol=1e-6, atol=1e-6)


def test_a_shape_runs_padded_on_a_compiled_one_until_compiling_it_pays(bus: np.ndarray) -> None:
    """A 480x640 blob first runs on the compiled 640x640 model, padded with the letterbox grey, and finds
    what its own compiled shape finds; once the stand-in runs have cost as much as a compile, it is compiled."""
    import openvino as ov

    from pipeline.detect.base import decode
    from pipeline.detect.flexible import FlexibleYolo

    xml = next(OPENVINO_DIR.glob("*.xml"))
    core = ov.Core()
    flexible = FlexibleYolo(core.read_model(xml), core, "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    flexible.compiled((1, 3, 640, 640))
    canvas = letterbox(bus.shape[1::-1], (640, 640), fit=True).render(bus)
    assert canvas.shape == (640, 480, 3)
    detector = load_detector(OPENVINO, None, {}, 0.25)

    def found(raw: np.ndarray) -> sv.Detections:
        return decode(raw, detector.names, detector.thresholds, detector.iou, None)

    with pytest.raises(ValueError, match="multiples of 32"):  # refused at once, though 640x640 would hold it
        flexible.infer(np.zeros((500, 480, 3), np.uint8))
    stand_in = found(flexible.infer(canvas))
    assert set(flexible._compiled) == {(1, 3, 640, 640)}  # not compiled: run padded on 640x640
    flexible.compile_cost = 1.0  # say compiling costs one 640x640 inference: each stand-in run costs 0.2 more
    runs = 1
    while (1, 3, 640, 480) not in flexible._compiled and runs < 20:
        flexible.infer(canvas)
        runs += 1
    assert 5 <= runs <= 7 and set(flexible._compiled) == {(1, 3, 640, 640), (1, 3, 640, 480)}
    own = found(flexible.infer(canvas))
    assert sorted(own.data["class_name"].tolist()) == ["bus", "person", "person", "person", "person"]
    assert_same(stand_in, own, min_iou=0.9, score_tol=0.1)


def test_model_threads_sets_the_threads_of_every_compiled_input_size(bus: np.ndarray) -> None:
    """`model.threads` reaches OpenVINO for each shape compiled later, not only the first; null leaves
    OpenVINO's own choice (every core)."""
    one = load_detector(ModelConfig(path=str(OPENVINO_DIR), threads=1, compile_cache=None), None, {}, 0.25)
    assert one.flexible is not None
    one.flexible.compiled((1, 3, 640, 480))  # a shape compiled after loading
    assert len(one.detect(bus)) >= 5
    requests = [entry.requests[0] for entry in one.flexible._compiled.values()]
    assert len(requests) == 2
    assert {r.get_compiled_model().get_property("INFERENCE_NUM_THREADS") for r in requests} == {1}
    default = load_detector(ModelConfig(path=str(OPENVINO_DIR), compile_cache=None), None, {}, 0.25)
    assert default.flexible is not None
    (request,) = [entry.requests[0] for entry in default.flexible._compiled.values()]
    assert request.get_compiled_model().get_property("INFERENCE_NUM_THREADS") != 1
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ModelConfig(threads=0)


def test_model_streams_infers_a_batch_s_canvases_side_by_side(bus: np.ndarray) -> None:
    """`model.streams: 2` compiles two streams with a request each, and a batch of three frames (two
    canvases at once, then one; the same shape twice) finds what one-at-a-time inference finds."""
    zidane = cv2.imread(str(ZIDANE))
    frames = [(bus, None), (cv2.resize(zidane, (bus.shape[1], bus.shape[0])), None), (bus[:, ::-1].copy(), None)]
    one = load_detector(ModelConfig(path=str(OPENVINO_DIR), compile_cache=None), None, {}, 0.25)
    two = load_detector(ModelConfig(path=str(OPENVINO_DIR), streams=2, compile_cache=None), None, {}, 0.25)
    assert two.flexible is not None
    (entry,) = two.flexible._compiled.values()
    assert len(entry.requests) == 2 and entry.requests[0].get_compiled_model().get_property("NUM_STREAMS") == 2
    expected, found = one.detect_many(frames), two.detect_many(frames)
    assert two.inferences == 3
    for e, f in zip(expected, found):
        assert len(e) >= 2
        assert_same(f, e, min_iou=0.99, score_tol=0.01)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ModelConfig(streams=0)


def test_a_camera_max_canvas_bounds_every_input_of_its_view(bus: np.ndarray) -> None:
    """`detect.max_canvas` caps the letterbox and the packing canvases of one camera's view of the shared
    model; other views keep 640; a model that runs at its own size only, or a cap above it, is refused."""
    from pipeline.config import DetectConfig
    from pipeline.detect.base import DetectOptions

    shared = load_detector(OPENVINO, None, {}, 0.25)
    small = shared.with_options(DetectOptions(max_canvas=448))
    assert small.input_size == (448, 448) and shared.input_size == (640, 640)
    assert small.with_options(DetectOptions()).input_size == (640, 640)
    assert letterbox(bus.shape[1::-1], small.input_size, fit=True).size == (352, 448)
    found = small.detect(bus)
    assert sorted(found.data["class_name"].tolist())[:1] == ["bus"] and (found.class_id == 0).sum() >= 3
    assert found.xyxy[:, 3].max() > 800  # boxes in source pixels, not canvas ones
    with pytest.raises(CctvError, match="runs at its own 640x640 only"):
        load_detector(FIXED, None, {}, 0.25).with_options(DetectOptions(max_canvas=448))
    with pytest.raises(CctvError, match="larger than the model's input 640x640"):
        shared.with_options(DetectOptions(max_canvas=800))
    with pytest.raises(ValidationError, match="multiple of 32"):
        DetectConfig(max_canvas=450)


def test_flexible_detector_letterboxes_at_the_frame_aspect(bus: np.ndarray) -> None:
    flexible = load_detector(OPENVINO, None, {}, 0.25)
    assert flexible.fit_canvas
    assert letterbox((810, 1080), flexible.input_size, fit=True).size == (480, 640)
    assert letterbox((1920, 1080), flexible.input_size, fit=True).size == (640, 384)
    found = flexible.detect(bus)
    assert sorted(found.data["class_name"].tolist()) == ["bus", "person", "person", "person", "person"]
    fixed = load_detector(FIXED, None, {}, 0.25).detect(bus)
    # the cut-off person: 0.42 at 640x640, 0.60 at 480x640, 0.63 on its stand-in (480x640 padded to 640x640)
    assert_same(found, fixed, min_iou=0.85, score_tol=0.25)


def test_flexible_detector_packs_few_regions_into_a_small_canvas() -> None:
    frame, people = _pets_frame_and_people(100)
    one = [tuple(people[0])]
    layout = pack_frames([one], (768, 576), (640, 640), fit=True)
    assert layout is not None and layout.size == (320, 320)
    assert pack_frames([one], (768, 576), (640, 640)).size == (640, 640)
    detector = load_detector(OPENVINO, ["person"], {}, 0.25)
    found = detector.detect(frame, one)
    assert (iou_matrix(people[:1], found.xyxy).max(axis=1, initial=0) > 0.5).all()


def test_two_cameras_frames_share_one_inference_each_with_its_own_classes() -> None:
    """A PETS09 camera tracking people and a camera on the bus image tracking buses only: their packed
    regions go onto one canvas, and each gets what it would have found alone."""
    base = load_detector(OPENVINO, None, {}, 0.25)
    people = base.with_options(DetectOptions(classes=["person"], default_threshold=0.25))
    buses = base.with_options(DetectOptions(classes=["bus", "person"], thresholds={"person": 0.6}))
    frame, truth = _pets_frame_and_people(100)
    bus_image = cv2.imread(str(BUS))
    pets_items = [(frame, [tuple(truth[0])])]
    bus_items = [(bus_image, [(20, 230, 800, 760)])]
    alone = people.detect_many(pets_items), buses.detect_many(bus_items)
    before = people.inferences, buses.inferences
    outcome = detect_together([(people, pets_items), (buses, bus_items)])
    assert outcome.inferences == outcome.shared == 1
    assert (people.inferences - before[0], buses.inferences - before[1]) == (1, 1)
    for together, solo in zip(outcome.found, alone):
        assert together[0].metadata["mode"] == "packed"
        assert_same(together[0], solo[0], min_iou=0.7, score_tol=0.2)
    assert set(outcome.found[0][0].data["class_name"]) == {"person"}
    assert "bus" in outcome.found[1][0].data["class_name"]
    assert (outcome.found[1][0].confidence[outcome.found[1][0].data["class_name"] == "person"] >= 0.6).all()
    with pytest.raises(ValueError, match="one network"):
        detect_together([(people, pets_items), (load_detector(OPENVINO, ["person"], {}, 0.25), pets_items)])


def test_the_live_detector_serves_cameras_waiting_at_once_in_one_round_on_shared_canvases() -> None:
    """While a round runs, the cameras that ask wait; the next round serves them all, their packed
    regions on one canvas (and a failing request fails only its own camera)."""
    import threading

    from pipeline.live.detector import SharedDetector

    shared = SharedDetector(OPENVINO)
    release, started = threading.Event(), threading.Event()

    class Busy:  # a camera whose inference takes until released (a pose camera, say: never shared)
        inferences = 0

        def detect_many(self, items: object) -> list[sv.Detections]:
            started.set()
            release.wait(10)
            raise RuntimeError("this camera's model failed")

    frame, truth = _pets_frame_and_people(100)
    cameras = [shared.base.with_options(DetectOptions(classes=["person"])) for _ in range(2)]
    items = [[(frame, [tuple(truth[k])])] for k in range(2)]
    found: dict[int, list[sv.Detections]] = {}
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            shared.run(Busy(), [(frame, None)])
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=busy)]
    threads[0].start()
    assert started.wait(10)
    for k in range(2):
        threads.append(threading.Thread(target=lambda k=k: found.__setitem__(k, shared.run(cameras[k], items[k]))))
        threads[-1].start()
    while shared.waiting < 2:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(20)
    assert [str(e) for e in errors] == ["this camera's model failed"]
    assert shared.rounds == 2 and shared.shared_inferences == 1
    for k in range(2):
        alone = shared.base.with_options(DetectOptions(classes=["person"])).detect_many(items[k])
        assert_same(found[k][0], alone[0], min_iou=0.7, score_tol=0.2)


# --- region packing ---------------------------------------------------------------------------


def test_packed_people_match_full_frame(people_detector: Detector, bus: np.ndarray) -> None:
    full = people_detector.detect(bus)
    packed = people_detector.detect(bus, [tuple(box) for box in full.xyxy])
    assert packed.metadata["mode"] == "packed"
    assert_same(packed, full, min_iou=0.7, score_tol=0.35)


def test_huge_regions_fall_back_to_the_full_frame(people_detector: Detector, bus: np.ndarray) -> None:
    regions = [(0.0, 0.0, 600.0, 900.0), (300.0, 200.0, 810.0, 1080.0)]
    found = people_detector.detect(bus, regions)
    assert found.metadata["mode"] == "full"
    full = people_detector.detect(bus)
    np.testing.assert_array_equal(found.xyxy, full.xyxy)


def _pets_frame_and_people(index: int) -> tuple[np.ndarray, np.ndarray]:
    """A PETS 2009 frame and its ground-truth people (MOT frame f is video frame f-1)."""
    cap = cv2.VideoCapture(str(PETS))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    gt = np.loadtxt(SHARED / "footage" / "pets09-s2l1.gt.txt", delimiter=",")
    rows = gt[(gt[:, 0] == index + 1) & (gt[:, 6] == 1)]
    return frame, np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]])


def test_packing_sees_small_people_at_least_as_well_as_full_frame(people_detector: Detector) -> None:
    frame, people = _pets_frame_and_people(100)
    full = people_detector.detect(frame)
    packed = people_detector.detect(frame, [tuple(box) for box in people])
    assert packed.metadata["mode"] == "packed"

    def hits(found: sv.Detections) -> int:
        return int((iou_matrix(people, found.xyxy).max(axis=1, initial=0) > 0.5).sum())

    assert hits(packed) >= hits(full) >= len(people) - 1


@pytest.mark.parametrize(("model", "misses"), [(FIXED, 0), (OPENVINO, 1)], ids=["fixed", "flexible"])
def test_consecutive_frames_share_one_inference(model: ModelConfig, misses: int) -> None:
    """Regions of three frames packed into one canvas find the people each full frame finds.

    The fixed 640x640 model packs them at scale 1; the flexible one into the smallest canvas that
    holds them at the full-frame scale (320x320 here, a third of the cost), which misses one person
    of the eighteen that the three full frames find between them.
    """
    detector = load_detector(model, ["person"], {}, 0.25)
    frames = [_pets_frame_and_people(i) for i in (100, 101, 102)]
    items = [(frame, [tuple(box) for box in people]) for frame, people in frames]
    before = detector.inferences
    together = detector.detect_many(items)
    assert detector.inferences - before == 1

    def hits(people: np.ndarray, found: sv.Detections) -> int:
        return int((iou_matrix(people, found.xyxy).max(axis=1, initial=0) > 0.5).sum())

    packed = full = 0
    for (frame, people), shared in zip(frames, together):
        assert "image" not in shared.data and shared.metadata["mode"] == "packed"
        packed, full = packed + hits(people, shared), full + max(hits(people, detector.detect(frame)), 4)
    assert packed >= full - misses


def test_empty_regions_and_empty_canvases(people_detector: Detector, bus: np.ndarray) -> None:
    """A canvas with nothing on it gives each frame an empty result; [] regions mean the full frame."""
    sky = np.full((576, 768, 3), 200, np.uint8)
    found = people_detector.detect_many([(sky, [(10, 10, 60, 60)]), (sky, [(300, 300, 400, 400)])])
    assert [len(f) for f in found] == [0, 0]
    assert len(people_detector.detect_many([(bus, [])])[0]) == 4


def test_packing_layout_keeps_scale_and_tiles_apart() -> None:
    frame, size = (1920, 1080), (640, 640)
    regions = [(100, 100, 160, 260), (130, 150, 200, 300), (1500, 800, 1540, 830), (900, 50, 1000, 400)]
    layout = pack_frames([regions], frame, size)
    assert layout is not None and layout.mode == "packed"
    assert len(layout.tiles) == 3  # the first two overlap and are merged
    for tile in layout.tiles:
        sw, sh = tile.src[2] - tile.src[0], tile.src[3] - tile.src[1]
        assert (tile.dst[2] - tile.dst[0], tile.dst[3] - tile.dst[1]) == (sw, sh)  # scale 1
        assert sw >= 64 and sh >= 64 and 0 <= tile.src[0] and tile.src[2] <= frame[0]
        assert 0 <= tile.dst[0] and tile.dst[2] <= size[0] and tile.dst[3] <= size[1]
    for a in layout.tiles:
        for b in layout.tiles:
            if a is not b:
                assert a.dst[2] <= b.dst[0] or b.dst[2] <= a.dst[0] or a.dst[3] <= b.dst[1] or b.dst[3] <= a.dst[1]
    # The tiny region is grown around its centre, with context on every side.
    small = next(t for t in layout.tiles if t.src[0] > 1400)
    assert small.src[0] < 1500 and small.src[2] > 1540 and small.src[1] < 800 and small.src[3] > 830


def test_packing_scales_down_but_never_below_letterbox() -> None:
    frame, size = (1920, 1080), (640, 640)
    letterbox_scale = 640 / 1920
    regions = [(0, 0, 400, 400), (700, 0, 1100, 400), (1400, 500, 1800, 900)]
    layout = pack_frames([regions], frame, size)
    assert layout is not None
    scales = [(t.dst[2] - t.dst[0]) / (t.src[2] - t.src[0]) for t in layout.tiles]
    assert letterbox_scale < min(scales) and max(scales) < 1
    assert max(scales) - min(scales) < 0.01  # one common scale
    assert pack_frames([[(0, 0, 1900, 1000)]], frame, size) is None  # the frame itself
    assert pack_frames([[(10, 10, 50, 50)]], (320, 240), size) is None  # letterbox upsamples


def test_packed_canvases_of_two_cameras_merge_only_when_cheaper_and_never_below_letterbox() -> None:
    size = (640, 640)
    pets = pack_frames([[(300, 200, 330, 280)]], (768, 576), size, fit=True)
    oxford = pack_frames([[(900, 500, 960, 640), (1500, 200, 1560, 330)]], (1920, 1080), size, fit=True)
    assert pets is not None and oxford is not None and pets.size == oxford.size == (320, 320)
    merged = merge_layouts([pets, oxford], size)
    assert merged is not None and merged.mode == "packed" and merged.frames == ((768, 576), (1920, 1080))
    assert merged.size == (320, 320)  # both fit on one small canvas: half the cost
    assert [t.image for t in merged.tiles] == [0, 1, 1] and [t.src for t in merged.tiles] == [
        t.src for t in (*pets.tiles, *oxford.tiles)
    ]
    for tile in merged.tiles:
        frame = merged.frames[tile.image]
        assert (tile.dst[2] - tile.dst[0]) / (tile.src[2] - tile.src[0]) >= min(size[0] / frame[0], size[1] / frame[1])
    big = pack_frames([[(0, 0, 380, 380)]], (768, 576), size, fit=True)
    assert big is not None and merge_layouts([big, big], size) is None  # two near-full canvases: no saving


def test_canvas_boxes_map_back_to_source() -> None:
    layout = pack_frames([[(500, 300, 700, 600), (1200, 100, 1300, 200)]], (1920, 1080), (640, 640))
    assert layout is not None
    tile = layout.tiles[0]
    gain = (tile.dst[2] - tile.dst[0]) / (tile.src[2] - tile.src[0])
    source = np.array([[560.0, 350.0, 640.0, 550.0]])
    canvas = (source.reshape(2, 2) - tile.src[:2]) * gain + tile.dst[:2]
    on_padding = [639.0, 639.0, 640.0, 640.0]
    found = sv.Detections(
        xyxy=np.array([canvas.reshape(4), on_padding], np.float32),
        confidence=np.array([0.9, 0.9], np.float32),
        class_id=np.array([0, 0]),
        data={"class_name": np.array(["person", "person"])},
    )
    back = layout.to_source(found)
    assert len(back) == 1 and back.data["class_name"].tolist() == ["person"]
    np.testing.assert_allclose(back.xyxy, source, atol=0.5)
    full = letterbox((810, 1080), (640, 640))
    assert full.tiles[0].dst == (80, 0, 560, 640)


def test_objects_entering_at_the_frame_border_are_kept() -> None:
    """A box the model extends beyond the picture is centred on the padding, but is real."""

    def one(xyxy: list[float]) -> sv.Detections:
        return sv.Detections(
            xyxy=np.array([xyxy], np.float32),
            confidence=np.array([0.9], np.float32),
            class_id=np.array([0]),
            data={"class_name": np.array(["person"])},
        )

    full = letterbox((810, 1080), (640, 640))  # pads x < 80 and x >= 560
    back = full.to_source(one([20.0, 100.0, 120.0, 300.0]))  # centre x 70: left of the picture
    np.testing.assert_allclose(back.xyxy[0, [0, 2]], [0, (120 - 80) * 810 / 480], atol=0.5)
    packed = pack_frames([[(0, 500, 60, 700), (1000, 500, 1100, 700)]], (1920, 1080), (640, 640))
    assert packed is not None and packed.mode == "packed"
    edge, inner = sorted(packed.tiles, key=lambda t: t.src[0])
    assert edge.src[0] == 0 and edge.dst[0] == 0 and inner.dst[0] > edge.dst[2]
    beyond = packed.to_source(one([-30.0, 10.0, 10.0, 50.0]))  # centre left of the frame: kept
    assert len(beyond) == 1 and beyond.xyxy[0, 0] == 0
    gap = (edge.dst[2] + inner.dst[0]) / 2  # the grey gap between the tiles, inside the frame
    assert len(packed.to_source(one([gap - 20, 10.0, gap + 20, 50.0]))) == 0


# --- Ultralytics and ONNX backends (the `ultralytics` extra; CI installs it) ------------------


@pytest.fixture(scope="module")
def offline_ultralytics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[object]]:
    """Ultralytics configured offline in a throw-away settings dir; any network attempt is recorded."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError("network blocked by test")
        real_connect(sock, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list[object]:
        attempts.append(host)
        raise socket.gaierror("network blocked by test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics_settings")))
        mp.setenv("YOLO_OFFLINE", "1")
        mp.setenv("YOLO_AUTOINSTALL", "False")
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        yield attempts
    assert attempts == [], f"Ultralytics tried the network: {attempts}"


@pytest.fixture(scope="module")
def random_onnx(offline_ultralytics: list[object], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """YOLO11n from its yaml (random weights, nothing downloaded), exported to ONNX once.

    Fresh weights give an input-independent output (every score is the prior bias), which
    would let a wrong pre-processing pass; so batch-norm statistics are set from two real
    images and the class bias zeroed: the output then depends strongly on the pixels.
    """
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    yolo = YOLO("yolo11n.yaml")
    net = yolo.model
    net.names = yaml.safe_load((OPENVINO_DIR / "metadata.yaml").read_text())["names"]
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
            module.reset_running_stats()
    for branch in net.model[-1].cv3:
        torch.nn.init.zeros_(branch[-1].bias)
    images = [cv2.imread(str(p)) for p in (BUS, ZIDANE)]
    batch = np.concatenate([to_blob(letterbox(im.shape[1::-1], (640, 640)).render(im)) for im in images])
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(batch))
    net.eval()
    out = tmp_path_factory.mktemp("onnx")
    with contextlib.chdir(out):
        exported = Path(yolo.export(format="onnx", imgsz=640, simplify=False, dynamic=False)).resolve()
    assert exported.parent == out
    return exported, net


@pytest.mark.ultralytics
def test_ultralytics_backend_matches_openvino(
    offline_ultralytics: list[object], all_detector: Detector, bus: np.ndarray
) -> None:
    ours = all_detector.detect(bus)
    ultra = load_detector(ModelConfig(path=str(OPENVINO_DIR), backend="ultralytics"), None, {}, 0.25)
    assert ultra.names == all_detector.names and ultra.input_size == (640, 640)
    theirs = ultra.detect(bus)
    assert_same(theirs, ours, min_iou=0.9, score_tol=0.05)
    # ...and our letterbox + decode + NMS agree with Ultralytics' own end to end.
    result = ultra.model.predict(str(BUS), conf=0.25, iou=0.5, verbose=False)[0]
    assert_same(ours, sv.Detections.from_ultralytics(result), min_iou=0.9, score_tol=0.05)


@pytest.mark.ultralytics
def test_ultralytics_backend_filters_and_packs(offline_ultralytics: list[object], bus: np.ndarray) -> None:
    ultra = load_detector(ModelConfig(path=str(OPENVINO_DIR), backend="ultralytics"), ["person"], {"person": 0.3}, 0.9)
    full = ultra.detect(bus)
    assert full.data["class_name"].tolist() == ["person"] * 4  # no bus, even at the 0.9 default
    packed = ultra.detect(bus, [tuple(box) for box in full.xyxy])
    assert packed.metadata["mode"] == "packed"
    assert_same(packed, full, min_iou=0.7, score_tol=0.35)


@pytest.mark.ultralytics
def test_onnx_raw_output_is_the_network_output(random_onnx: tuple[Path, object], bus: np.ndarray) -> None:
    import torch
    from ultralytics.nn.autobackend import AutoBackend

    path, net = random_onnx
    onnx = load_detector(ModelConfig(path=str(path), backend="onnx"), None, {}, 0.25)
    assert onnx.names == net.names and onnx.input_size == (640, 640)
    canvas = letterbox((810, 1080), onnx.input_size).render(bus)
    blob = to_blob(canvas)
    ours = onnx._infer(canvas)
    with torch.no_grad():
        pytorch = net(torch.from_numpy(blob))[0].numpy()
        backend = AutoBackend(str(path), device=torch.device("cpu"), verbose=False)(torch.from_numpy(blob))
    backend = (backend[0] if isinstance(backend, (list, tuple)) else backend).numpy()
    assert ours.shape == (1, 84, 8400)
    np.testing.assert_array_equal(ours, backend)
    np.testing.assert_allclose(ours[:, :4], pytorch[:, :4], atol=0.05)  # pixels
    np.testing.assert_allclose(ours[:, 4:], pytorch[:, 4:], atol=1e-3)  # scores
    zidane = cv2.imread(str(ZIDANE))
    other = onnx._infer(letterbox((1280, 720), onnx.input_size).render(zidane))
    assert np.abs(ours[:, 4:] - other[:, 4:]).mean() > 0.05  # the scores really depend on the image


@pytest.mark.ultralytics
def test_onnx_detect_end_to_end_matches_ultralytics(random_onnx: tuple[Path, object], bus: np.ndarray) -> None:
    path, _ = random_onnx
    cfg = {"classes": ["person", "car"], "thresholds": {"car": 0.75}, "default_threshold": 0.6}
    ours = load_detector(ModelConfig(path=str(path), backend="onnx"), **cfg).detect(bus)
    theirs = load_detector(ModelConfig(path=str(path), backend="ultralytics"), **cfg).detect(bus)
    assert 10 <= len(ours) <= 300  # random weights: a few dozen boxes survive NMS at these thresholds
    assert set(ours.data["class_name"].tolist()) == {"person", "car"}
    assert ours.confidence[ours.data["class_name"] == "car"].min() >= 0.75
    assert (ours.xyxy[:, :2] >= 0).all() and (ours.xyxy[:, 2] <= 810).all() and (ours.xyxy[:, 3] <= 1080).all()
    assert_same(ours, theirs, min_iou=0.99, score_tol=1e-4)
