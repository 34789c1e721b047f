"""Handing an event's footage over (to the police, or to a person who asks for their own images), as the law asks:
with a reason, with third parties masked, and in a form the recipient can check was not altered.

An export is one ZIP: `clip.mp4` (H.264, the event's raw clip with people and vehicles other than the
event's own subject pixelated, or all of them, or none), `snapshot.jpg` (the event's start frame,
masked alike, its box drawn) and `manifest.json` (the event, who exported it, when and why, the
SHA-256 of each file, and an HMAC-SHA256 signature over all of that with the site's key).

What is masked: every box the tracker recorded on each clip frame (the clip's `tracks` file, carried
tracks included) and, when a detector is given, everything it finds of the masked classes on the
full frame, so a person the live pipeline never tracked is masked too. The subject is the event's
track (and an abandoned object's owner); a detection overlapping the subject's box is the subject.
Privacy zones are already black in the raw clip.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from pipeline.detect import BatchDetector, DetectOptions
from pipeline.draw import draw_box
from pipeline.errors import CctvError
from pipeline.geometry import ious
from pipeline.sources import open_source
from pipeline.store import EventStore, StoredEvent
from pipeline.types import Box
from pipeline.video import H264Writer

MaskMode = Literal["others", "all", "none"]
MASK_MODES: tuple[MaskMode, ...] = ("others", "all", "none")
MASKED_LABELS = ("person", "bicycle", "car", "motorcycle", "bus", "truck")  # who can be identified
MASK_SCORE = 0.25  # the detector's lowest score for a box to mask: masking too much is the safe side
PAD = 0.15  # each masked box grows by this fraction of its size on every side (movement, the detector's slack)
BLOCK = 12  # mosaic cell in pixels
SUBJECT_IOU = 0.3  # a detection overlapping the subject's tracked box this much is the subject
MASK_OPTIONS = DetectOptions(classes=MASKED_LABELS, default_threshold=MASK_SCORE)  # the detector's part of masking
KEY_FILE = "export.key"
FORMAT = "cctv-export/1"
MIN_REASON = 3


def site_key(data_dir: Path, create: bool = True) -> bytes:
    """The site's signing key (`data_dir/export.key`), made on first use, readable by the service's user only."""
    path = data_dir / KEY_FILE
    if not path.exists():
        if not create:
            raise CctvError(f"no site key at {path}: verify on the site that made the export")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """Names the key without revealing it, so a recipient knows which site key checks the signature."""
    return hashlib.sha256(b"cctv-export-key" + key).hexdigest()[:16]


def mosaic(image: np.ndarray, box: Box) -> None:
    """Pixelate `box` (grown by PAD) in place: coarse cells nobody can be recognised from."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    pad_x, pad_y = (x2 - x1) * PAD, (y2 - y1) * PAD
    left, top = max(0, int(x1 - pad_x)), max(0, int(y1 - pad_y))
    right, bottom = min(width, int(np.ceil(x2 + pad_x))), min(height, int(np.ceil(y2 + pad_y)))
    if right - left < 2 or bottom - top < 2:
        return
    region = image[top:bottom, left:right]
    small = cv2.resize(region, (max(1, (right - left) // BLOCK), max(1, (bottom - top) // BLOCK)), interpolation=cv2.INTER_AREA)
    image[top:bottom, left:right] = cv2.resize(small, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST)


@dataclass(frozen=True, slots=True)
class _FrameBoxes:
    subject: list[Box]
    others: list[Box]


def _tracked(tracks: list[dict[str, Any]], t: float, subject_ids: set[int]) -> _FrameBoxes:
    """The clip frame's tracked boxes nearest time `t`, split into the subject's and everyone else's."""
    if not tracks:
        return _FrameBoxes([], [])
    nearest = min(tracks, key=lambda f: abs(f["t"] - t))
    subject, others = [], []
    for track_id, label, *box in nearest["boxes"]:
        if track_id in subject_ids:
            subject.append(tuple(box))
        elif label in MASKED_LABELS:
            others.append(tuple(box))
    return _FrameBoxes(subject, others)


def _to_mask(image: np.ndarray, boxes: _FrameBoxes, found: Sequence[Box], mode: MaskMode) -> list[Box]:
    """The boxes to pixelate on one frame."""
    if mode == "none":
        return []
    if mode == "all":
        return [*boxes.subject, *boxes.others, *found]
    if boxes.subject and found:
        overlap = ious(np.asarray(found), np.asarray(boxes.subject)).max(axis=1)
        found = [b for b, o in zip(found, overlap) if o < SUBJECT_IOU]
    return [*boxes.others, *found]


def _detected(detector: BatchDetector | None, image: np.ndarray) -> list[Box]:
    if detector is None:
        return []
    found = detector.detect_many([(image, None)])[0]  # MASK_OPTIONS: only the masked classes, from MASK_SCORE
    return [tuple(float(v) for v in box) for box in found.xyxy]


def _event_json(stored: StoredEvent) -> dict[str, Any]:
    event = stored.event
    return {
        "id": event.id, "camera": event.camera, "rule": event.rule, "type": event.type, "label": event.label,
        "track_id": event.track_id, "start": event.start, "end": event.end, "score": event.score,
        "box": list(event.box), "review_state": stored.review_state,
    }


def export_event(
    store: EventStore,
    event_id: str,
    *,
    reason: str,
    actor: str,
    mask: MaskMode = "others",
    detector: BatchDetector | None = None,
    source: str | None = None,
    now: float | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """The export ZIP of one event and its manifest; the export is audited (who, why, the files' hashes).

    detector: finds people and vehicles on every frame beyond the tracked ones (None: tracked boxes only).
    """
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise CctvError("an export needs a reason (at least 3 characters): say who asked for it and why")
    if mask not in MASK_MODES:
        raise CctvError(f"unknown mask {mask!r}; use one of {', '.join(MASK_MODES)}")
    stored = store.get(event_id)
    raw = store.evidence_path(stored.raw_clip) if stored.raw_clip else None
    if raw is None or not raw.is_file():
        raise CctvError(f"event {event_id!r} has no raw clip to export (not finished yet, or deleted by retention)")
    event = stored.event
    # The tracks file: the clip's time 0 in source time (`t0`) and every frame's tracked boxes.
    doc = json.loads(store.evidence_path(stored.tracks).read_text()) if stored.tracks else {"t0": event.start}
    tracks, start_t = doc.get("frames", []), event.start - doc["t0"]
    subject_ids = {i for i in (event.track_id, event.object_id, event.owner_track_id) if i is not None}
    with tempfile.TemporaryDirectory() as tmp:
        clip_path = Path(tmp) / "clip.mp4"
        masked_boxes, snapshot, snapshot_gap = 0, None, float("inf")
        with open_source(raw, fps=None) as src:
            writer = H264Writer(clip_path, src.width, src.height, src.fps)
            t0 = None
            try:
                for frame in src:
                    t0 = frame.pts if t0 is None else t0
                    image = frame.image.copy()
                    t = frame.pts - t0
                    boxes = _to_mask(image, _tracked(tracks, t, subject_ids), _detected(detector, image), mask)
                    for box in boxes:
                        mosaic(image, box)
                    masked_boxes += len(boxes)
                    writer.write(image, t)
                    gap = abs(t - start_t)
                    if gap < snapshot_gap:
                        snapshot, snapshot_gap = image.copy(), gap
            except BaseException:
                writer.abort()
                raise
            writer.close()
        assert snapshot is not None  # the raw clip opened, so it had a frame
        draw_box(snapshot, event.box)
        ok, jpeg = cv2.imencode(".jpg", snapshot, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise CctvError("cannot encode the export snapshot")
        files = {"clip.mp4": clip_path.read_bytes(), "snapshot.jpg": jpeg.tobytes()}
    key = site_key(store.data_dir)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "event": _event_json(stored),
        "exported_at": store.clock() if now is None else now,
        "exported_by": actor,
        "reason": reason,
        "mask": mask,
        "masked_boxes": masked_boxes,
        "detector": detector is not None,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "key_id": key_id(key),
    }
    manifest["signature"] = sign(manifest, key)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # H.264 and JPEG do not compress
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
    detail = {"reason": reason, "mask": mask, "files": manifest["files"], "signature": manifest["signature"]}
    store.audit(actor, "export", event_id, detail, camera=event.camera, source=source)
    return buffer.getvalue(), manifest


def verify_export(archive: Path | bytes, key: bytes) -> dict[str, Any]:
    """The manifest of an untouched export; a CctvError saying what was altered otherwise."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive) if isinstance(archive, bytes) else archive) as zipped:
            manifest = json.loads(_member(zipped, "manifest.json"))
            contents = {name: _member(zipped, name) for name in manifest.get("files", {})}
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise CctvError(f"not a readable export: {exc}") from None
    if not hmac.compare_digest(manifest.get("signature", ""), sign(manifest, key)):
        raise CctvError("the manifest's signature does not verify: it was altered, or signed with another site key")
    for name, digest in manifest["files"].items():
        if hashlib.sha256(contents[name]).hexdigest() != digest:
            raise CctvError(f"{name} was altered: its SHA-256 is not the manifest's")
    return manifest


def _member(zipped: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zipped.read(name)
    except zipfile.BadZipFile:  # the ZIP's own CRC-32 caught the change first
        raise CctvError(f"{name} was altered: its CRC-32 is not the one the ZIP recorded") from None
