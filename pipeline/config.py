"""The site config: one pydantic schema for every camera, validated up front.

A wrong key or value becomes one line naming the file, the path inside it and the problem.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import CctvError
from pipeline.privacy import PrivacyMask
from pipeline.types import Point

log = logging.getLogger(__name__)
NAME_PATTERN = r"^\w[\w.-]{0,63}$"  # camera, rule, zone and group names: they become file names and URL parts
_NAME = re.compile(NAME_PATTERN)
MAX_CONFIG_BYTES = 1_000_000  # a site of thousands of cameras is well under this


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )


def check_polygon(points: list[Point], what: str) -> None:
    """A polygon must enclose an area and not cross itself (a bow-tie zone holds nothing anyone meant)."""
    xy = [(float(x), float(y)) for x, y in points]
    edges = list(zip(xy, xy[1:] + xy[:1]))
    for i, (a, b) in enumerate(edges):
        for j in range(i + 2, len(edges)):
            if i == 0 and j == len(edges) - 1:
                continue  # neighbours through the closing corner
            c, d = edges[j]
            if _crosses(a, b, c, d):
                raise ValueError(f"{what}: the polygon crosses itself (edges {i} and {j}); list its corners in order")
    area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in edges) / 2
    if abs(area) < 1.0:
        raise ValueError(f"{what}: the polygon encloses no area (are its corners on one line?)")


def check_polygons(polygons: list[list[Point]], what: str) -> list[list[Point]]:
    """A list of polygons (privacy zones, a motion mask), each with 3 corners or more, as `check_polygon` wants."""
    for i, polygon in enumerate(polygons):
        if len(polygon) < 3:
            raise ValueError(f"{what}[{i}]: a polygon needs at least 3 corners, got {len(polygon)}")
        check_polygon(polygon, f"{what}[{i}]")
    return polygons


def _crosses(a: Point, b: Point, c: Point, d: Point) -> bool:
    def side(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0


NUMBER_LIMIT = 1e9  # no setting needs a larger number; 1e300 would overflow the arithmetic it goes into


def _out_of_range(value: object) -> bool:
    """A number (in lists and tuples too, polygons say) beyond ±NUMBER_LIMIT."""
    if isinstance(value, (list, tuple)):
        return any(_out_of_range(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > NUMBER_LIMIT


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan is never a setting

    @field_validator("*")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if _out_of_range(value):
            raise ValueError(f"numbers must lie within ±{NUMBER_LIMIT:.0e}")
        return value


class ModelConfig(Strict):
    """The object detector every camera of the site shares."""

    path: str = Field(
        "models/yolo11n_int8_openvino_model", description="the exported model: a file, or the directory Ultralytics wrote"
    )
    backend: Literal["openvino", "onnx", "ultralytics"] = Field(
        "openvino", description="runtime that executes it (ultralytics needs the optional extra)"
    )
    device: str = Field("CPU", description="the runtime's device name, e.g. CPU or GPU")
    flexible: bool = Field(
        True,
        description="openvino: run a fixed 640x640 export at the input size each frame needs (its own aspect, "
        "or a smaller canvas for packed regions); false: always 640x640",
    )
    compile_cache: str | None = Field(
        "~/.cache/cctv/openvino",
        description="openvino: directory that keeps compiled models between runs (each input size compiles "
        "once, about 1 s; from the cache about half that); null: compile every run",
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="openvino: threads the inferences run on, shared among `streams`; null: every core. Fewer "
        "leave cores to decoding, the motion gate and tracking, which run beside the detector (README, How it is built)",
    )
    streams: int = Field(
        1,
        ge=1,
        le=64,
        description="openvino with flexible: canvases of one batch inferred at once, each on its share of the "
        "threads; 2 on two cores costs less CPU than one inference on both (README, How it is built)",
    )
    iou: float = Field(0.5, gt=0, le=1, description="NMS IoU threshold: overlapping boxes of one class above it merge")
    share_canvases: bool = Field(
        True,
        description="live, openvino with flexible: the packed regions of cameras waiting for the detector at the "
        "same time share one inference where the merged canvas has fewer pixels than theirs, each at no less "
        "than its frame's letterbox scale",
    )
    pose_path: str = Field(
        "models/yolov8n-pose_int8_openvino_model",
        description="the pose model (17 COCO keypoints), run for people only on cameras with a fall rule",
    )


class MotionConfig(Strict):
    """Cheap background subtraction that decides where (and whether) the detector runs."""

    enabled: bool = Field(True, description="off: the detector runs on every sampled frame, full frame")
    width: int = Field(320, ge=64, le=3840, description="processing width of the low-resolution motion image")
    threshold: int = Field(25, ge=1, le=255, description="foreground threshold of the background model")
    min_area: float = Field(0.0005, ge=0, le=1, description="smallest motion blob, as a fraction of the frame")
    recheck_seconds: float = Field(1.0, gt=0, description="re-detect tracked objects that stopped moving this often")
    mask: list[list[Point]] = Field(default_factory=list, description="polygons where motion is ignored")

    @field_validator("mask")
    @classmethod
    def _mask_corners(cls, mask: list[list[Point]]) -> list[list[Point]]:
        return check_polygons(mask, "mask")


class DetectConfig(Strict):
    """How often and how the detector looks at a camera."""

    fps: float | None = Field(
        5.0, gt=0, le=120, description="frames per media second to run detection on; null = every frame"
    )
    min_score: float = Field(0.1, ge=0, le=1, description="lowest score handed to the tracker")
    max_canvas: int | None = Field(
        None,
        ge=64,
        multiple_of=32,
        description="longest side in pixels of the detector's input on this camera (null: the model's own, 640): "
        "frames letterbox and regions pack at most this large. Smaller costs less per inference and suits a "
        "camera whose objects are large in the frame (PETS09 at 448: 25 % less CPU, event F1 0.98 against 0.97, "
        "but fewer alarms per true event when frames are dropped)",
    )
    pack_regions: bool = Field(True, description="detect only moving regions and tracked objects, packed into one input")
    pack_frames: int = Field(
        4, ge=1, le=32, description="consecutive frames whose motion regions may share one inference (adds latency)"
    )
    carry_seconds: float = Field(
        0.2,
        ge=0,
        description="a track far from every zone edge and line, with no new motion by it, is carried by the tracker "
        "and re-detected at least this often (0: every tracked object on every detected frame)",
    )
    near_heights: float = Field(
        1.5, ge=0, description="box heights from a zone edge or a line within which a track is detected every frame"
    )


class ObjectFilter(Strict):
    """What a tracked object of one class must be before it can trigger a rule."""

    min_score: float = Field(0.4, ge=0, le=1, description="detections below this keep a track alive but never move it")
    min_area: float = Field(0, ge=0, description="smallest box area in source pixels")
    max_area: float | None = Field(None, gt=0, description="largest box area in source pixels (null: no limit)")
    persistence: int | None = Field(None, ge=1, description="sightings an object needs before it can trigger")
    persistence_seconds: float | None = Field(
        None, ge=0, description="or two sightings at least this many seconds apart (null: the camera's)"
    )


class ObjectsConfig(Strict):
    """Which classes a camera tracks, and the filters they must pass."""

    track: list[str] = Field(
        default_factory=lambda: ["person"], min_length=1, description="class names of the model to track"
    )
    persistence: int = Field(3, ge=1, description="sightings (at min_score) an object needs before it can trigger")
    persistence_seconds: float | None = Field(
        0.3,
        ge=0,
        description="or two such sightings this many seconds apart: 3 frames at 10 fps, not 2 s at 1.5 fps (null: off)",
    )
    filters: dict[str, ObjectFilter] = Field(default_factory=dict, description="per-class filters, by class name")

    def filter_for(self, label: str) -> ObjectFilter:
        """The class's filter, with the camera's persistence where the class sets none."""
        f = self.filters.get(label, ObjectFilter())
        inherit = {k: getattr(self, k) for k in ("persistence", "persistence_seconds") if getattr(f, k) is None}
        return f.model_copy(update=inherit)


class _TrackerBase(Strict):
    lost_seconds: float = Field(
        1.5, gt=0, description="how long an unseen track is kept before it is lost (media seconds)"
    )
    min_frames: int = Field(
        2, ge=1, description="consecutive analysed frames a track must be seen in before it gets an id"
    )



class ByteTrackConfig(_TrackerBase):
    """Roboflow `trackers` ByteTrack; chosen by MOTA/IDF1 on PETS09-S2L1 at 10 and 5 fps (README).

    Its association is IoU only, so it loses people between analysed frames below about 3 fps.
    """

    type: Literal["bytetrack"] = Field(description="the tracking algorithm")
    activation_score: float = Field(0.7, ge=0, le=1, description="lowest score that starts a new track")
    high_score: float = Field(0.6, ge=0, le=1, description="scores below this only extend existing tracks")
    match_iou: float = Field(0.1, ge=0, le=1, description="lowest box overlap that matches a detection to a track")


class TimeTrackerConfig(_TrackerBase):
    """`pipeline.timetrack`: motion in media seconds, gates that widen with the gap between analysed frames.

    The default: it keeps identities at the irregular 1.5-2 fps a loaded live service analyses
    (README, PETS09-S2L1: IDF1 89 at 10 fps, 87 at 2 fps, where ByteTrack has 82 and 42).
    """

    type: Literal["time"] = Field("time", description="the tracking algorithm")
    activation_score: float = Field(0.65, ge=0, le=1, description="lowest score that starts a new track")
    high_score: float = Field(0.5, ge=0, le=1, description="scores below this only extend confirmed tracks")
    max_speed: float = Field(1.0, gt=0, description="box heights per second an unseen track may have moved")
    reid_model: str | None = Field(
        None, description="OSNet re-identification ONNX model (models/osnet_x0_25_msmt17/...onnx); null: motion only"
    )
    reid_weight: float = Field(
        2.0, ge=0, description="weight of appearance distance where motion is ambiguous (0: off)"
    )
    reid_refresh_seconds: float = Field(
        0.5, ge=0, description="how often a track's appearance is refreshed (0: every sighting)"
    )


def _tracker_type(value: object) -> str:
    """The tracker a config section asks for; `time` when it names none."""
    if isinstance(value, dict):
        return str(value.get("type", "time"))
    return str(getattr(value, "type", "time"))


TrackerConfig = Annotated[
    Union[Annotated[ByteTrackConfig, Tag("bytetrack")], Annotated[TimeTrackerConfig, Tag("time")]],
    Discriminator(_tracker_type),
]


class ZoneConfig(Strict):
    polygon: list[Point] = Field(min_length=3, description="corners [x, y] in source-frame pixels")

    @field_validator("polygon")
    @classmethod
    def _simple(cls, polygon: list[Point]) -> list[Point]:
        check_polygon(polygon, "polygon")
        return polygon


class LineConfig(Strict):
    points: tuple[Point, Point] = Field(description="the segment's ends A and B, [x, y] in source-frame pixels")

    @field_validator("points")
    @classmethod
    def _distinct(cls, v: tuple[Point, Point]) -> tuple[Point, Point]:
        if v[0] == v[1]:
            raise ValueError("the two points of a line must differ")
        return v


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class Schedule(Strict):
    """When something is on, in the site's time zone: from `from` to `to` on `days` (a window may span midnight)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(DAYS), min_length=1, description="days the window starts on"
    )
    start: str = Field("00:00", alias="from", description="HH:MM the window opens")
    end: str = Field("24:00", alias="to", description="HH:MM it closes (before `from`: the next day)")

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        if v != "24:00" and not _CLOCK.fullmatch(v):
            raise ValueError(f"{v!r} is not a time of day: write HH:MM, e.g. 22:00")
        return v

    def active(self, when: datetime) -> bool:
        """Whether the window holds at `when` (an aware datetime in the site's zone)."""
        minute = when.hour * 60 + when.minute
        start, end = (int(v[:2]) * 60 + int(v[3:]) for v in (self.start, self.end))
        day = DAYS[when.weekday()]
        if start <= end:
            return day in self.days and start <= minute < end
        yesterday = DAYS[(when.weekday() - 1) % 7]
        return (day in self.days and minute >= start) or (yesterday in self.days and minute < end)


class RuleBase(Strict):
    name: str = Field(min_length=1, description="the rule's name, unique per camera; events carry it")
    classes: list[str] | None = Field(None, description="classes it applies to (null: every tracked class)")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        _check_name("rule", name)
        return name

    priority: int = Field(0, ge=-1000, le=1000, description="higher is more urgent in the operator queue")
    cooldown_seconds: float = Field(
        0, ge=0, description="no new alarm of this rule (for the same track) until this long after the last one ended"
    )
    schedule: Schedule | None = Field(
        None, description="when the rule is on (live cameras, site time zone); outside it the rule raises nothing"
    )


class _ZoneDwell(RuleBase):
    zone: str = Field(description="the zone's name")
    inertia: float = Field(
        1.0, ge=0, description="seconds a track may be outside the zone (or unseen) and come back as the same event"
    )
    handoff_seconds: float = Field(
        1.5,
        ge=0,
        description="a track first seen this soon after a visit's track vanished, where it vanished, continues it",
    )


class IntrusionRule(_ZoneDwell):
    """One event per track inside the zone, from entering to leaving (for longer than `inertia`) or being lost."""

    type: Literal["intrusion"] = Field(description="the rule type")
    min_seconds: float = Field(0, ge=0, description="seconds inside before the alarm starts")


class LineCrossingRule(RuleBase):
    """One instantaneous event per crossing of the segment (not its extension)."""

    type: Literal["line_crossing"] = Field(description="the rule type")
    line: str = Field(description="the line's name")
    direction: Literal["any", "a_to_b", "b_to_a"] = Field(
        "any", description="a_to_b: the cross product (B - A) x (point - A) going from negative to positive"
    )
    band: float = Field(
        0.1,
        ge=0,
        description="box heights: after a crossing the point must get this far from the line before it can cross again",
    )


class LoiteringRule(_ZoneDwell):
    """Starts when a track's continuous stay in the zone reaches min_seconds."""

    type: Literal["loitering"] = Field(description="the rule type")
    min_seconds: float = Field(gt=0, description="seconds of continuous stay before the alarm")


class CrowdingRule(RuleBase):
    """At least min_count objects in the zone for min_seconds; ends when fewer remain for end_seconds."""

    type: Literal["crowding"] = Field(description="the rule type")
    zone: str = Field(description="the zone's name")
    min_count: int = Field(ge=1, description="objects in the zone that make a crowd")
    min_seconds: float = Field(0, ge=0, description="seconds the crowd must last before the alarm")
    end_seconds: float = Field(
        1.0, ge=0, description="seconds the count may stay below min_count without ending the alarm"
    )


class AbandonedObjectRule(RuleBase):
    """An object that was not part of the scene appears, stays still and is left without its owner.

    Found both as a detector object of `classes` and as a static foreground region where a long-term
    and a short-term background model disagree (objects the detector does not know). One event per
    object: it starts at the alarm, carries `left_at` and the owner's track id, and ends when the
    object is taken away or its owner comes back.
    """

    type: Literal["abandoned_object"] = Field(description="the rule type")
    zone: str | None = Field(None, description="the zone's name (null: the whole frame)")
    unattended_seconds: float = Field(
        30, gt=0, description="seconds without its owner (or anyone standing by it) before the alarm; PETS 2006 uses 30"
    )
    owner_distance: float | None = Field(
        None, gt=0, description="pixels between the owner's box and the object's box (null: 3 object sizes)"
    )
    classes: list[str] | None = Field(
        None, description="detector classes that are left objects (null: backpack, handbag, suitcase, where tracked)"
    )


class FireRule(RuleBase):
    """Flames: flame-coloured pixels that keep flickering in place for `min_seconds`."""

    type: Literal["fire"] = Field(description="the rule type")
    zone: str | None = Field(None, description="the zone's name (null: the whole frame)")
    min_seconds: float = Field(1.0, gt=0, description="seconds the flames must flicker before the alarm")
    end_seconds: float = Field(10.0, gt=0, description="seconds without flames before the event ends (a fire dying down and flaring up again is one fire)")


class FallRule(RuleBase):
    """A person goes from upright to lying or collapsed (from body pose) and stays down for `min_seconds`."""

    type: Literal["fall"] = Field(description="the rule type")
    zone: str | None = Field(None, description="the zone's name (null: the whole frame)")
    min_seconds: float = Field(1.0, gt=0, description="seconds the person must stay down before the alarm")


RULE_MODELS = (IntrusionRule, LineCrossingRule, LoiteringRule, CrowdingRule, AbandonedObjectRule, FireRule, FallRule)
RULE_TYPES = tuple(get_args(m.model_fields["type"].annotation)[0] for m in RULE_MODELS)
Rule = Annotated[Union[RULE_MODELS], Field(discriminator="type")]
POSE_RULES = (FallRule,)  # rules that need body keypoints, and so the pose model


class SelectionConfig(Strict):
    """When the camera is put on the operators' wall (선별관제): while it has an open event, and after."""

    hold_seconds: float = Field(30, ge=0, description="seconds it stays on the wall after its last event ended")
    presence: list[str] = Field(
        default_factory=list, description="classes whose presence alone selects it (e.g. people at night in a park)"
    )
    schedule: Schedule | None = Field(None, description="when `presence` selects it (null: always)")


class CameraConfig(Strict):
    """One camera: its source, how it is analysed, its geometry and its rules."""

    source: str | int = Field(description="a video file, an rtsp:// or http:// URL, or a webcam index")
    loop: bool = Field(False, description="play a file source as a live camera: paced at real time, restarted at its end")
    detect: DetectConfig = Field(default_factory=DetectConfig, description="detection rate and packing")
    motion: MotionConfig = Field(default_factory=MotionConfig, description="the motion gate")
    objects: ObjectsConfig = Field(default_factory=ObjectsConfig, description="tracked classes and their filters")
    tracker: TrackerConfig = Field(default_factory=TimeTrackerConfig, description="the multi-object tracker")
    zones: dict[str, ZoneConfig] = Field(default_factory=dict, description="named polygons, for zone rules")
    lines: dict[str, LineConfig] = Field(default_factory=dict, description="named segments, for line rules")
    rules: list[Rule] = Field(default_factory=list, description="what raises an event (see the rule types)")
    selection: SelectionConfig = Field(default_factory=SelectionConfig, description="when it is on the wall")
    privacy_zones: list[list[Point]] = Field(
        default_factory=list,
        description="polygons [[x, y], ...] (source pixels) blacked out before anything is stored or shown, e.g. the windows of homes",
    )
    privacy_detect: bool = Field(
        False, description="let the detector and rules see under the privacy zones (what is stored and shown stays black)"
    )
    retention_days: float | None = Field(
        None, gt=0, description="days its evidence is kept (null: the site's service.retention.max_age_days)"
    )

    def warn_outside(self, name: str, width: int, height: int) -> list[str]:
        """Log one line naming the zones, lines and privacy zones with corners outside the frame (once its size
        is known): a zone drawn for another resolution never fires. Returns their names."""
        shapes = {f"zone {k}": z.polygon for k, z in self.zones.items()}
        shapes |= {f"line {k}": list(line.points) for k, line in self.lines.items()}
        shapes |= {f"privacy_zones[{i}]": p for i, p in enumerate(self.privacy_zones)}
        outside = [k for k, pts in shapes.items() if any(not (0 <= x <= width and 0 <= y <= height) for x, y in pts)]
        if outside:
            log.warning("%s: %s reach outside the %dx%d frame", name, ", ".join(outside), width, height)
        return outside

    @property
    def privacy_mask(self) -> PrivacyMask | None:
        return PrivacyMask.of(self.privacy_zones, self.privacy_detect)

    @field_validator("privacy_zones")
    @classmethod
    def _zone_corners(cls, zones: list[list[Point]]) -> list[list[Point]]:
        return check_polygons(zones, "privacy_zones")

    @model_validator(mode="after")
    def _references(self) -> CameraConfig:
        for cls in self.selection.presence:
            if cls not in self.objects.track:
                raise ValueError(f"selection.presence: class {cls!r} is not in objects.track {self.objects.track}")
        names: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.name in names:
                raise ValueError(f"rules[{i}]: duplicate rule name {rule.name!r}")
            names.add(rule.name)
            zone = getattr(rule, "zone", None)
            if zone is not None and zone not in self.zones:
                known = ", ".join(sorted(self.zones)) or "none defined"
                raise ValueError(f"rules[{i}] ({rule.name}): unknown zone {zone!r} (zones: {known})")
            line = getattr(rule, "line", None)
            if line is not None and line not in self.lines:
                known = ", ".join(sorted(self.lines)) or "none defined"
                raise ValueError(f"rules[{i}] ({rule.name}): unknown line {line!r} (lines: {known})")
            if isinstance(rule, POSE_RULES) and "person" not in self.objects.track:
                raise ValueError(f"rules[{i}] ({rule.name}): a {rule.type} rule needs 'person' in objects.track")
            for cls in rule.classes or []:
                if cls not in self.objects.track:
                    raise ValueError(
                        f"rules[{i}] ({rule.name}): class {cls!r} is not in objects.track {self.objects.track}"
                    )
        return self


class CameraDefaults(Strict):
    """Settings merged into every camera of the site, key by key, before it is validated (the camera's own win)."""

    loop: bool | None = Field(None, description="as a camera's `loop`")
    detect: DetectConfig | None = Field(None, description="as a camera's `detect`, e.g. {fps: 5}")
    motion: MotionConfig | None = Field(None, description="as a camera's `motion`")
    objects: ObjectsConfig | None = Field(None, description="as a camera's `objects`")
    tracker: TrackerConfig | None = Field(None, description="as a camera's `tracker`")
    selection: SelectionConfig | None = Field(None, description="as a camera's `selection`")


class EvidenceConfig(Strict):
    pre_roll: float = Field(5.0, ge=0, le=120, description="seconds of video kept before an event starts")
    post_roll: float = Field(5.0, ge=0, le=120, description="seconds recorded after an event ends")


class RetentionConfig(Strict):
    """Evidence is deleted oldest event first; event rows, reviews and the audit log are kept."""

    max_age_days: float | None = Field(30, gt=0, description="delete evidence older than this")
    max_clip_gb: float | None = Field(None, gt=0, le=1e6, description="keep clips under this total size")
    min_free_gb: float | None = Field(
        1.0, gt=0, le=1e6,
        description="free space kept on the data dir's disk: below it, the oldest events' evidence is deleted "
        "(checked every few seconds; null: no minimum)",
    )
    interval_minutes: float = Field(10, gt=0, le=10080, description="how often retention by age and size runs")
    audit_days: float = Field(
        730, gt=0, description="audit entries older than this are purged (kept apart from evidence: the law asks for the record of access)"
    )


class MqttConfig(Strict):
    """Publish every event change as JSON to `{topic}/{camera}/{kind}` (kind: start, update, end)."""

    host: str = Field(description="the broker's host name or address")
    port: int = Field(1883, ge=1, le=65535, description="the broker's port")
    topic: str = Field("cctv/events", min_length=1, description="topic prefix")
    username: str | None = Field(None, description="broker user (null: anonymous)")
    password: str | None = Field(None, description="broker password")
    qos: Literal[0, 1, 2] = Field(1, description="MQTT quality of service; 1 and 2 queue while the broker is away")


class ClusterConfig(Strict):
    """This process as one node of a cluster: nodes share the site config, one PostgreSQL `database` and the
    `data` dir (evidence on storage every node reaches: NFS or another shared path); each camera is run by
    the one node that holds its lease."""

    node: str = Field(description="this node's name, unique in the cluster (`cctv serve --node`)")
    max_cameras: int | None = Field(None, ge=0, le=100_000, description="cameras it may run (0: API only; null: any)")
    advertise: str | None = Field(
        None, description="URL the other nodes reach this node's API at, for live frames (default: http://host:port)"
    )
    lease_seconds: float = Field(
        8, ge=2, le=300, description="a camera's lease: another node takes it over this long after its node dies"
    )
    renew_seconds: float = Field(2, gt=0, le=60, description="how often a node renews its leases and rebalances")

    @field_validator("node")
    @classmethod
    def _name(cls, v: str) -> str:
        _check_name("node", v)
        return v

    @field_validator("advertise")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https?://[^/\s]+", v.rstrip("/")):
            raise ValueError(f"advertise {v!r} must be an http(s)://host:port URL with no path")
        return None if v is None else v.rstrip("/")

    @model_validator(mode="after")
    def _renew_in_time(self) -> ClusterConfig:
        if self.renew_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"renew_seconds {self.renew_seconds:g} must be at most half of lease_seconds {self.lease_seconds:g}, "
                "or one slow renewal loses the cameras"
            )
        return self


class ServiceConfig(Strict):
    """`cctv serve`: where the store lives and how the live service runs (command-line flags override)."""

    data: str = Field("data", description="data dir: the SQLite event store (unless `database` is set) and evidence")
    database: str | None = Field(None, description="a database URL such as postgresql+psycopg://user@host/db")
    host: str = Field("127.0.0.1", description="address the API listens on")
    port: int = Field(8080, ge=1, le=65535, description="port the API listens on")
    timezone: str = Field("Asia/Seoul", description="the site's time zone, for the operator console")
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig, description="clip pre- and post-roll")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="when evidence is deleted")
    mqtt: MqttConfig | None = Field(None, description="an MQTT broker to publish events to (null: none)")
    reconnect_max_seconds: float = Field(60, gt=0, le=3600, description="the longest wait between reconnect attempts")
    stall_seconds: float = Field(
        8, gt=0, le=600, description="a connected camera that delivers no frame this long is `stalled` and reconnected"
    )
    cluster: ClusterConfig | None = Field(None, description="run as one node of a cluster (null: a single service)")

    @field_validator("database")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and "://" not in v:
            raise ValueError(f"{v!r} is not a database URL (e.g. postgresql+psycopg://user@host/db); for SQLite set `data`")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Seoul)") from None
        return v


class SiteConfig(Strict):
    """A whole site: the shared model, the live service, defaults for every camera, and the cameras."""

    model: ModelConfig = Field(default_factory=ModelConfig, description="the object detector")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="`cctv serve`: store, API, evidence")
    defaults: CameraDefaults = Field(default_factory=CameraDefaults, description="merged into every camera")
    cameras: dict[str, CameraConfig] = Field(min_length=1, description="the cameras, by name")
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="named sets of cameras (a district, a building): a token limited to a group sees only its cameras",
    )

    @model_validator(mode="after")
    def _group_members(self) -> SiteConfig:
        for kind, names in (("camera", self.cameras), ("group", self.groups)):
            for name in names:
                _check_name(kind, name)
        for name, cam in self.cameras.items():
            for zone in (*cam.zones, *cam.lines):
                _check_name(f"cameras.{name}: zone or line", zone)
        for group, members in self.groups.items():
            unknown = sorted(set(members) - set(self.cameras))
            if unknown:
                raise ValueError(f"groups.{group}: unknown cameras {unknown} (cameras: {sorted(self.cameras)})")
        return self

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        """Every camera gets the site's `defaults` underneath its own settings."""
        if not isinstance(data, dict):
            return data
        defaults, cameras = data.get("defaults"), data.get("cameras")
        if not isinstance(defaults, dict) or not isinstance(cameras, dict):
            return data
        try:
            CameraDefaults.model_validate(defaults)
        except ValidationError:
            return data  # reported under `defaults`, not again under every camera
        merged = {
            name: deep_update(defaults, cam) if isinstance(cam, dict) else cam for name, cam in cameras.items()
        }
        return {**data, "cameras": merged}

    def camera(self, name: str | None) -> tuple[str, CameraConfig]:
        """The named camera, or the only one when no name is given."""
        if name is None:
            if len(self.cameras) != 1:
                raise CctvError(f"the config has cameras {sorted(self.cameras)}: choose one with --camera")
            return next(iter(self.cameras.items()))
        if name not in self.cameras:
            raise CctvError(f"unknown camera {name!r}: the config has {sorted(self.cameras)}")
        return name, self.cameras[name]


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One documented config key, for `cctv config-schema`."""

    path: str  # e.g. cameras.NAME.detect.fps
    type: str
    default: str
    description: str


def _type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("pipeline.types.", "").replace("pipeline.config.", "")
    return text.replace("<class '", "").replace("'>", "").replace("NoneType", "null")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation holds: itself, list items, dict values, union members."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _nested_path(path: str, annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is dict:
        return f"{path}.NAME"
    if origin is list:
        return f"{path}[]"
    return path


def field_docs(model: type[BaseModel] = None, prefix: str = "") -> list[FieldDoc]:  # type: ignore[assignment]
    """Every key of the site config (or of `model`), depth first, with its type, default and description."""
    model = model or SiteConfig
    docs = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        default = "required" if info.is_required() else repr(info.get_default(call_default_factory=True))
        nested = _models_in(info.annotation)
        kind = " | ".join(m.__name__ for m in nested) if nested else _type_name(info.annotation)
        if len(default) > 40:
            default = "see below" if nested else default[:37] + "..."
        docs.append(FieldDoc(path, kind, default, info.description or ""))
        if model is CameraDefaults:  # its parts are the camera's, documented under cameras.NAME
            continue
        for sub in nested:
            label = f"{_nested_path(path, _inner(info.annotation))}"
            if sub.__name__.endswith("Rule") and "type" in sub.model_fields:
                label += f"({sub.model_fields['type'].annotation.__args__[0]})"
            docs += field_docs(sub, label)
    return docs


def _inner(annotation: Any) -> Any:
    """A container annotation under Optional: dict[...] | None -> dict[...]."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if get_origin(annotation) in (Union, UnionType) and len(args) == 1 else annotation


def deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` merged in, nested mappings key by key (changes win)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_path(path: str, config_path: Path) -> str:
    """A path written in a config: tried from the working directory, then from the config's project."""
    if "://" in path or path.isdigit():  # a stream URL (Path would fold its double slash), a webcam index
        return path
    p = Path(path)
    if p.is_absolute() or p.exists():
        return str(p)
    for base in (config_path.resolve().parent, config_path.resolve().parent.parent):
        if (base / p).exists():
            return str(base / p)
    return str(p)


def _resolved(site: SiteConfig, config_path: Path) -> SiteConfig:
    """The site with its model paths and camera file sources resolved (see `resolve_path`)."""
    cameras = {}
    for name, cam in site.cameras.items():
        update: dict[str, Any] = {"source": resolve_path(cam.source, config_path)} if isinstance(cam.source, str) else {}
        reid = getattr(cam.tracker, "reid_model", None)
        if reid is not None:
            update["tracker"] = cam.tracker.model_copy(update={"reid_model": resolve_path(reid, config_path)})
        cameras[name] = cam.model_copy(update=update)
    paths = {"path": resolve_path(site.model.path, config_path), "pose_path": resolve_path(site.model.pose_path, config_path)}
    model = site.model.model_copy(update=paths)
    return site.model_copy(update={"model": model, "cameras": cameras})


UNION_TAGS = (*RULE_TYPES, "bytetrack", "time")  # pydantic's union branches, left out of error locations  # pydantic's union branches


def _location(loc: tuple[int | str, ...]) -> str:
    """`cameras.pets.rules[0]` from pydantic's location tuple, dropping union tags."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in UNION_TAGS and (out.endswith("]") or out.endswith("tracker")):
            continue
        elif part in ("bytetrack", "time") and out.endswith(".tracker"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


@functools.cache
def _key_names() -> tuple[str, ...]:
    """Every key name the config schema knows, for suggesting the one a misspelt key meant."""
    return tuple(sorted({re.split(r"[.\]]", doc.path)[-1] for doc in field_docs()}))


def load_config(path: str | Path) -> SiteConfig:
    """Read and validate a YAML site config; any problem is a one-line CctvError.

    Relative file paths in it (the model, camera sources) come back resolved (see `resolve_path`).
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise CctvError(f"{path}: config file over {MAX_CONFIG_BYTES // 1_000_000} MB: is it the right file?")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CctvError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CctvError(f"{path}: cannot read config ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CctvError(f"{path}: invalid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise CctvError(f"{path}: expected a mapping with 'model' and 'cameras' at the top level")
    try:
        site = SiteConfig.model_validate(raw)
    except ValidationError as exc:
        # A misspelt key causes the "Field required" of the key it should have been: name the cause first.
        err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        where = _location(err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            guess = difflib.get_close_matches(str(err["loc"][-1]), _key_names(), n=1, cutoff=0.6)
            msg = "unknown key" + (f" (did you mean {guess[0]!r}?)" if guess else "")
        elif err["type"] == "union_tag_invalid":
            what, kinds = ("tracker", ("time", "bytetrack")) if where.endswith("tracker") else ("rule", RULE_TYPES)
            msg = f"unknown {what} type {err.get('input', {}).get('type')!r} (expected one of {', '.join(kinds)})"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise CctvError(f"{path}: {where}: {msg}{more}") from None
    return _resolved(site, path)
