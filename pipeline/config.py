"""The site config: one pydantic schema for every camera, validated up front.

A wrong key or value becomes one line naming the file, the path inside it and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import CctvError
from pipeline.types import Point


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(Strict):
    path: str = "models/yolo11n_int8_openvino_model"
    backend: Literal["openvino", "onnx", "ultralytics"] = "openvino"
    device: str = "CPU"
    iou: float = Field(0.5, gt=0, le=1, description="NMS IoU threshold")


class MotionConfig(Strict):
    """Cheap background subtraction that decides where (and whether) the detector runs."""

    enabled: bool = True
    width: int = Field(320, ge=64, description="processing width of the low-resolution motion image")
    threshold: int = Field(25, ge=1, le=255, description="foreground threshold of the background model")
    min_area: float = Field(0.0005, ge=0, le=1, description="smallest motion blob, as a fraction of the frame")
    recheck_seconds: float = Field(1.0, gt=0, description="re-detect tracked objects that stopped moving this often")
    mask: list[list[Point]] = Field(default_factory=list, description="polygons where motion is ignored")


class DetectConfig(Strict):
    fps: float | None = Field(5.0, gt=0, description="frames per media second to run detection on; null = every frame")
    min_score: float = Field(0.1, ge=0, le=1, description="lowest score handed to the tracker")
    pack_regions: bool = True
    pack_frames: int = Field(
        4, ge=1, description="consecutive frames whose motion regions may share one inference (adds latency)"
    )


class ObjectFilter(Strict):
    min_score: float = Field(0.4, ge=0, le=1)
    min_area: float = Field(0, ge=0)
    max_area: float | None = Field(None, gt=0)
    persistence: int | None = Field(None, ge=1, description="frames an object must be seen before it can trigger")


class ObjectsConfig(Strict):
    track: list[str] = Field(default_factory=lambda: ["person"], min_length=1)
    persistence: int = Field(3, ge=1)
    filters: dict[str, ObjectFilter] = Field(default_factory=dict)

    def filter_for(self, label: str) -> ObjectFilter:
        f = self.filters.get(label, ObjectFilter())
        return f if f.persistence is not None else f.model_copy(update={"persistence": self.persistence})


class TrackerConfig(Strict):
    """ByteTrack settings; defaults chosen by MOTA/IDF1 on PETS09-S2L1 at 10 and 5 fps (README)."""

    type: Literal["bytetrack"] = "bytetrack"
    lost_seconds: float = Field(1.5, gt=0, description="how long an unseen track is kept before it is lost")
    activation_score: float = Field(0.7, ge=0, le=1, description="lowest score that starts a new track")
    high_score: float = Field(0.6, ge=0, le=1, description="scores below this only extend existing tracks")
    match_iou: float = Field(0.1, ge=0, le=1)
    min_frames: int = Field(2, ge=1, description="consecutive sightings before a track gets an id")


class ZoneConfig(Strict):
    polygon: list[Point] = Field(min_length=3)


class LineConfig(Strict):
    points: tuple[Point, Point]

    @field_validator("points")
    @classmethod
    def _distinct(cls, v: tuple[Point, Point]) -> tuple[Point, Point]:
        if v[0] == v[1]:
            raise ValueError("the two points of a line must differ")
        return v


class RuleBase(Strict):
    name: str = Field(min_length=1)
    classes: list[str] | None = None
    priority: int = Field(0, description="higher is more urgent in the operator queue")


class IntrusionRule(RuleBase):
    type: Literal["intrusion"]
    zone: str


class LineCrossingRule(RuleBase):
    type: Literal["line_crossing"]
    line: str
    direction: Literal["any", "a_to_b", "b_to_a"] = "any"


class LoiteringRule(RuleBase):
    type: Literal["loitering"]
    zone: str
    min_seconds: float = Field(gt=0)


class CrowdingRule(RuleBase):
    type: Literal["crowding"]
    zone: str
    min_count: int = Field(ge=1)
    min_seconds: float = Field(0, ge=0)


Rule = Annotated[
    Union[IntrusionRule, LineCrossingRule, LoiteringRule, CrowdingRule], Field(discriminator="type")
]


class CameraConfig(Strict):
    source: str | int
    loop: bool = False
    detect: DetectConfig = Field(default_factory=DetectConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    objects: ObjectsConfig = Field(default_factory=ObjectsConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    zones: dict[str, ZoneConfig] = Field(default_factory=dict)
    lines: dict[str, LineConfig] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> CameraConfig:
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
            for cls in rule.classes or []:
                if cls not in self.objects.track:
                    raise ValueError(
                        f"rules[{i}] ({rule.name}): class {cls!r} is not in objects.track {self.objects.track}"
                    )
        return self


class EvidenceConfig(Strict):
    pre_roll: float = Field(5.0, ge=0, description="seconds of video kept before an event starts")
    post_roll: float = Field(5.0, ge=0, description="seconds recorded after an event ends")


class RetentionConfig(Strict):
    """Evidence is deleted oldest event first; event rows, reviews and the audit log are kept."""

    max_age_days: float | None = Field(30, gt=0, description="delete evidence older than this")
    max_clip_gb: float | None = Field(None, gt=0, description="keep clips under this total size")
    interval_minutes: float = Field(10, gt=0, description="how often retention runs")


class MqttConfig(Strict):
    """Publish every event change as JSON to `{topic}/{camera}/{kind}` (kind: start, update, end)."""

    host: str
    port: int = Field(1883, ge=1, le=65535)
    topic: str = Field("cctv/events", min_length=1)
    username: str | None = None
    password: str | None = None
    qos: Literal[0, 1, 2] = 1


class ServiceConfig(Strict):
    """`cctv serve`: where the store lives and how the live service runs (command-line flags override)."""

    data: str = Field("data", description="data dir: the SQLite event store (unless `database` is set) and evidence")
    database: str | None = Field(None, description="a database URL such as postgresql+psycopg://user@host/db")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    timezone: str = Field("Asia/Seoul", description="the site's time zone, for the operator console")
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    mqtt: MqttConfig | None = None
    reconnect_max_seconds: float = Field(60, gt=0, description="the longest wait between reconnect attempts")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Seoul)") from None
        return v


class SiteConfig(Strict):
    model: ModelConfig = Field(default_factory=ModelConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    cameras: dict[str, CameraConfig] = Field(min_length=1)

    def camera(self, name: str | None) -> tuple[str, CameraConfig]:
        """The named camera, or the only one when no name is given."""
        if name is None:
            if len(self.cameras) != 1:
                raise CctvError(f"the config has cameras {sorted(self.cameras)}: choose one with --camera")
            return next(iter(self.cameras.items()))
        if name not in self.cameras:
            raise CctvError(f"unknown camera {name!r}: the config has {sorted(self.cameras)}")
        return name, self.cameras[name]


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
    """The site with its model path and camera file sources resolved (see `resolve_path`)."""
    cameras = {
        name: cam.model_copy(update={"source": resolve_path(cam.source, config_path)}) if isinstance(cam.source, str) else cam
        for name, cam in site.cameras.items()
    }
    model = site.model.model_copy(update={"path": resolve_path(site.model.path, config_path)})
    return site.model_copy(update={"model": model, "cameras": cameras})


def _location(loc: tuple[int | str, ...]) -> str:
    """`cameras.pets.rules[0]` from pydantic's location tuple, dropping union tags."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("intrusion", "line_crossing", "loitering", "crowding") and out.endswith("]"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def load_config(path: str | Path) -> SiteConfig:
    """Read and validate a YAML site config; any problem is a one-line CctvError.

    Relative file paths in it (the model, camera sources) come back resolved (see `resolve_path`).
    """
    path = Path(path)
    try:
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
        err = exc.errors()[0]
        where = _location(err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown rule type {err.get('input', {}).get('type')!r} (expected intrusion, line_crossing, loitering or crowding)"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise CctvError(f"{path}: {where}: {msg}{more}") from None
    return _resolved(site, path)
