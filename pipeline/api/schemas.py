"""Pydantic models that are the API's contract (and its OpenAPI schema)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pipeline.api.auth import Principal
from pipeline.live.camera import CameraWorker, Status
from pipeline.store import MAX_LIMIT, ReviewState, Role, StoredEvent, TokenRecord, TokenState

ReviewAction = Literal["acknowledge", "false_positive", "escalate", "release"]


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field("ok", description="degraded: the event store takes no writes (spooled)")
    store_reason: str | None = Field(None, description="why the event store is degraded")
    spooled_writes: int = Field(0, description="event writes waiting on disk for the store")


class Error(BaseModel):
    detail: str


class Issue(BaseModel):
    """One problem with a request, where it is."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = Field(None, description="at most a short excerpt of what was sent")


class Invalid(BaseModel):
    """422: the request's problems, or one sentence for a value the store refuses (a stale cursor, say)."""

    detail: list[Issue] | str


def _plain_text(value: str | None) -> str | None:
    """Text a database can store: no NUL byte (PostgreSQL refuses it), no lone surrogate (not encodable)."""
    if value is not None and ("\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)):
        raise ValueError("text must not contain NUL bytes or unpaired surrogates")
    return value


Text = Annotated[str, AfterValidator(_plain_text)]


class Page(BaseModel):
    """Keyset pagination query parameters shared by every list endpoint."""

    model_config = ConfigDict(allow_inf_nan=False)

    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=512, description="the `next_cursor` of the previous page")


class EventFilter(Page):
    """Query parameters of GET /api/events; every given filter must match."""

    camera: Text | None = Field(None, max_length=128)
    rule: Text | None = Field(None, max_length=128)
    type: Text | None = Field(None, max_length=64)
    label: Text | None = Field(None, max_length=128)
    review_state: ReviewState | None = None
    since: float | None = Field(default=None, description="events starting at or after (stream seconds)")
    until: float | None = Field(default=None, description="events starting before (stream seconds)")
    min_score: float | None = None


class EventOut(BaseModel):
    """One event as the engine produced it, its review state and where to fetch its evidence."""

    id: str
    camera: str
    rule: str
    type: str
    label: str | None
    track_id: int | None
    start: float
    end: float | None
    start_frame: int
    end_frame: int | None
    score: float
    box: list[float]
    priority: int
    zone: str | None
    line: str | None
    direction: str | None
    count: int | None
    entered_at: float | None
    object_id: int | None = Field(description="the scene object (left item, fire) the event is about, per rule")
    owner_track_id: int | None = Field(description="abandoned object: the track of the person who left it")
    left_at: float | None = Field(description="abandoned object: when it was put down")
    fell_at: float | None = Field(description="fall: when the person fell")
    created_at: float
    updated_at: float
    review_state: ReviewState
    clip_url: str | None = Field(description="GET it for the MP4 clip; null when there is none (yet, or retained away)")
    snapshot_url: str | None
    thumbnail_url: str | None
    raw_clip_url: str | None = Field(description="the clip with nothing drawn on it (for export)")
    interrupted: bool = Field(
        False, description="ended by the service because the run that raised it was killed: its clip may be missing"
    )

    @classmethod
    def of(cls, stored: StoredEvent) -> EventOut:
        base = f"/api/events/{stored.event.id}"
        return cls(
            **stored.event.to_dict(),
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            review_state=stored.review_state,
            clip_url=f"{base}/clip.mp4" if stored.clip else None,
            snapshot_url=f"{base}/snapshot.jpg" if stored.snapshot else None,
            thumbnail_url=f"{base}/thumbnail.jpg" if stored.thumbnail else None,
            raw_clip_url=f"{base}/raw.mp4" if stored.raw_clip else None,
            interrupted=stored.interrupted,
        )


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class ExportIn(BaseModel):
    reason: Text = Field(min_length=3, max_length=500, description="who asked for the footage and why (audited)")
    mask: Literal["others", "all", "none"] = Field(
        "others", description="pixelate every person and vehicle but the event's subject (others), all, or none"
    )


class ReviewIn(BaseModel):
    action: ReviewAction
    note: Text | None = Field(default=None, max_length=2000)


class ReviewOut(BaseModel):
    id: int
    event_id: str
    action: str
    operator: str
    note: str | None
    at: float
    review_state: ReviewState


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built straight from the store's AuditEntry

    id: int
    at: float
    actor: str
    action: str
    event_id: str | None
    detail: dict[str, Any] | None
    camera: str | None = Field(None, description="the camera the entry is about, if any")
    source: str | None = Field(None, description="the client address the request came from")
    hash: str = Field("", description="SHA-256 chaining the entry to the one before (`cctv audit verify`)")


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


class SessionIn(BaseModel):
    token: str = Field(min_length=1, description="an API token from `cctv token create`")


class SessionOut(BaseModel):
    name: str
    role: Role
    cameras: list[str] | None = Field(None, description="the cameras this sign-in may see (null: every camera)")

    @classmethod
    def of(cls, who: Principal) -> SessionOut:
        return cls(name=who.name, role=who.role, cameras=None if who.cameras is None else sorted(who.cameras))


class TokenOut(BaseModel):
    """An issued token as `cctv token list` shows it: never the token nor its hash. A console session is a token
    of its own under its holder's name, so it is listed (and revoked) with the holder's tokens."""

    id: int
    name: str
    role: Role
    cameras: list[str] | None = Field(description="the cameras it is limited to (null, with groups null: every camera)")
    groups: list[str] | None = Field(description="the camera groups of the site config it is limited to")
    created_at: float
    expires_at: float | None = Field(description="Unix seconds; null: never")
    state: TokenState

    @classmethod
    def of(cls, record: TokenRecord, now: float) -> TokenOut:
        return cls(**asdict(record.info), id=record.id, created_at=record.created_at, state=record.state(now))


class RevokeIn(BaseModel):
    name: Text = Field(min_length=1, max_length=128, description="revoke every live token issued under this name")


class RevokeOut(BaseModel):
    name: str
    revoked: int = Field(description="how many live tokens (console sessions included) it revoked")


class CameraOut(BaseModel):
    """A camera's live state (fps figures over the last 10 s; lag: frame time to detection, recent frames)."""

    id: str
    source: str = Field(description="file name, or a stream's scheme only (URLs may hold passwords)")
    status: Status | Literal["unassigned"] = Field(description="unassigned: a cluster's camera no live node runs now")
    node: str | None = Field(None, description="the cluster node running it (null: a single service)")
    connected: bool = Field(description="the source is open and delivering frames (status live)")
    error: str | None
    connects: int
    stalls: int = Field(description="times it stopped delivering frames while connected (then reconnected)")
    time_jumps: int = Field(description="timestamp discontinuities of its source (an encoder restart), re-anchored")
    fps_in: float
    fps_analysed: float
    frames_in: int
    frames_analysed: int
    frames_dropped: int
    inferences: int
    evidence_dropped: int = Field(description="sampled frames left out of evidence clips because their encoder was behind")
    last_frame_at: float | None = Field(description="wall time (Unix seconds) of the newest frame")
    lag_p50: float | None
    lag_p95: float | None
    open_events: int
    events_started: int
    latest_url: str | None
    live_url: str = Field(description="GET it for live video (MJPEG: every sampled frame, tracks and alarms drawn)")
    view_url: str = Field(description="GET it for the newest frame of that video as one JPEG (`?width=`): walls poll it")
    selected: bool = Field(description="on the operators' wall now: an open event, just after one, or presence")
    selection_reason: str = Field(description="event, hold, presence, or empty when not selected")
    selected_since: float | None = Field(description="wall time (Unix seconds) it was put on the wall")
    selection_share: float = Field(description="share of the time since the service started it spent selected")

    @classmethod
    def of(cls, worker: CameraWorker, now: float, node: str | None = None) -> CameraOut:
        return cls.of_status(worker.status(now), node)

    @classmethod
    def of_status(cls, status: dict[str, Any], node: str | None) -> CameraOut:
        """From a camera's `CameraWorker.status()` here or, in a cluster, as its node last recorded it."""
        name = status["id"]
        return cls(
            **{k: v for k, v in status.items() if k != "has_frame"},
            node=node,
            latest_url=f"/api/cameras/{name}/latest.jpg" if status["has_frame"] else None,
            live_url=f"/api/cameras/{name}/live.mjpeg",
            view_url=f"/api/cameras/{name}/view.jpg",
        )

    @classmethod
    def unassigned(cls, name: str, source: str) -> CameraOut:
        """A camera of a cluster that no live node runs now (all at capacity, or it is being taken over)."""
        return cls.model_validate({
            "id": name, "source": source, "status": "unassigned", "connected": False, "error": "no node runs it now",
            "connects": 0, "stalls": 0, "time_jumps": 0, "fps_in": 0.0, "fps_analysed": 0.0, "frames_in": 0,
            "frames_analysed": 0, "frames_dropped": 0, "inferences": 0, "evidence_dropped": 0, "last_frame_at": None,
            "lag_p50": None, "lag_p95": None, "open_events": 0, "events_started": 0, "latest_url": None,
            "live_url": f"/api/cameras/{name}/live.mjpeg", "view_url": f"/api/cameras/{name}/view.jpg",
            "selected": False, "selection_reason": "", "selected_since": None, "selection_share": 0.0, "node": None,
        })


class SiteOut(BaseModel):
    """What a console needs to know of the site."""

    timezone: str
    cameras: list[str]
    selection_share: float = Field(description="share of all camera-time spent on the wall since the start")
    rules: dict[str, int] = Field(description="rule name -> priority (higher is more urgent)")


class NodeOut(BaseModel):
    name: str
    url: str = Field(description="where the other nodes reach its API")
    capacity: int = Field(description="cameras it may run (0: API only)")
    live: bool = Field(description="heartbeat within a lease's length")
    started_at: float
    heartbeat_age: float = Field(description="seconds since its last heartbeat")
    cameras: list[str] = Field(description="cameras it holds leases of")


class LeaseOut(BaseModel):
    camera: str
    node: str | None = Field(description="the live node running it (null: none now)")
    held_for: float | None = Field(description="seconds since that node took it")
    renewed_age: float | None = Field(description="seconds since it was last renewed")
    expires_in: float | None = Field(description="seconds until it lapses unless renewed")


class ClusterOut(BaseModel):
    """The cluster as the answering node saw it at its last round (every `renew_seconds`)."""

    node: str = Field(description="the node that answered")
    leader: bool = Field(description="it runs the site-wide chores (retention)")
    seen_at: float = Field(description="wall time of that node's last round")
    nodes: list[NodeOut]
    cameras: list[LeaseOut]
    counts: dict[str, int] = Field(description="this node's lease work since it started")
