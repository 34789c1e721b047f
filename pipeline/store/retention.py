"""Evidence files on disk and their rows kept in agreement: retention by age, size and free space, reconcile
after a crash.

A path is cleared in the database first and the file unlinked afterwards, so a crash can only leave an
orphan file, which `reconcile()` (run on open) removes, as it clears any path whose file has gone missing.
One exception: when the disk is short of space and the database cannot take the write (it is on the same
full disk), the files go first, and their paths are cleared by the next round that can write.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import DBAPIError

from pipeline.errors import CctvError
from pipeline.store.audit import add_entry
from pipeline.store.db import Database
from pipeline.store.models import EventRow

EVIDENCE = ("clip", "raw_clip", "snapshot", "thumbnail", "tracks")
CLIPS = ("clip", "raw_clip")  # what the disk budget counts
EVIDENCE_DIR = "evidence"
ORPHAN_GRACE_S = 60.0  # a recorder may be writing a file whose path is not stored yet
_HAS_EVIDENCE = or_(*(getattr(EventRow, k).is_not(None) for k in EVIDENCE))

log = logging.getLogger(__name__)


def _with_evidence(cameras: Collection[str] | None) -> Select[tuple[EventRow]]:
    query = select(EventRow).where(_HAS_EVIDENCE)
    return query if cameras is None else query.where(EventRow.camera.in_(list(cameras)))


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What evidence is kept; None: no limit of that kind."""

    max_age_seconds: float | None = None
    max_clip_bytes: int | None = None  # all clips together
    camera_ages: Mapping[str, float] = field(default_factory=dict)  # a camera's own maximum age, in seconds
    min_free_bytes: int | None = None  # free space kept on the data dir's disk


def evidence_path(data_dir: Path, relative: str) -> Path:
    """Absolute path of a stored evidence path; refuses anything outside `data_dir/evidence`."""
    path = (data_dir / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(data_dir / EVIDENCE_DIR):
        raise CctvError(f"evidence path {relative!r} must be relative to the data dir, under {EVIDENCE_DIR}/")
    return path


class Retention:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._missing = False  # evidence files were deleted before their paths were cleared

    def _path(self, relative: str) -> Path:
        return evidence_path(self.db.data_dir, relative)

    def shortfall(self, min_free_bytes: int | None) -> int:
        """Bytes to free for the data dir's disk to have `min_free_bytes` free (0: enough)."""
        if min_free_bytes is None:
            return 0
        return max(0, min_free_bytes - shutil.disk_usage(self.db.data_dir).free)

    def retain(self, policy: RetentionPolicy) -> list[str]:
        """Delete evidence, oldest event first: all of it past its age or while the disk is short of free space,
        then clips until under the byte budget.

        Escalated events keep their evidence until released (a case under investigation). Event rows, reviews
        and the audit log stay. Returns the deleted relative paths.
        """
        if self._missing:  # files deleted by an earlier round whose database write failed
            self.clear_missing()
        now, short = self.db.clock(), self.shortfall(policy.min_free_bytes)
        freeing = short > 0
        doomed: list[str] = []
        try:
            with self.db.sessions.begin() as session:
                oldest_first = select(EventRow).order_by(EventRow.created_at, EventRow.start, EventRow.id)
                held = EventRow.review_state == "escalated"
                rows = session.scalars(oldest_first.where(_HAS_EVIDENCE, ~held)).all()
                clip_bytes = sum(self._size(getattr(r, name)) for r in rows for name in CLIPS)
                for row in rows:
                    age = policy.camera_ages.get(row.camera, policy.max_age_seconds)
                    old = age is not None and row.created_at < now - age
                    over = policy.max_clip_bytes is not None and clip_bytes > policy.max_clip_bytes
                    for name in EVIDENCE if old or short > 0 else CLIPS if over else ():
                        relative = getattr(row, name)
                        if relative is not None:
                            size = self._size(relative)
                            doomed.append(relative)
                            clip_bytes -= size if name in CLIPS else 0
                            short -= size
                            setattr(row, name, None)
                if doomed:
                    add_entry(self.db, session, "retention", "retain", None, {"deleted": doomed})
        except DBAPIError as exc:
            if not freeing:
                raise
            self._missing = True  # the disk must have room again before the database can record anything
            log.warning("disk short of free space and the store cannot write (%s): deleting %d evidence files "
                        "first, their paths are cleared once it can", type(exc.orig or exc).__name__, len(doomed))
        for relative in doomed:  # only after the commit: a crash here leaves orphans for reconcile()
            self._path(relative).unlink(missing_ok=True)
        if freeing and self.shortfall(policy.min_free_bytes):
            log.warning("disk still short of free space after deleting all evidence retention may delete")
        return doomed

    def _size(self, relative: str | None) -> int:
        path = None if relative is None else self._path(relative)
        return path.stat().st_size if path is not None and path.is_file() else 0

    def _evidence_files(self, cameras: Collection[str] | None = None) -> Iterator[Path]:
        """Every evidence file, or those of `cameras` (each camera's files are in its own folder)."""
        root = self.db.data_dir / EVIDENCE_DIR
        roots = [root] if cameras is None else [root / camera for camera in cameras]
        return (p for top in roots if top.is_dir() for p in top.rglob("*") if p.is_file())

    def clear_missing(self, cameras: Collection[str] | None = None) -> list[str]:
        """Clear every stored path (of `cameras`' events, if given) whose file has gone missing; returns them,
        relative to the data dir."""
        cleared: list[str] = []
        with self.db.sessions.begin() as session:
            rows = session.scalars(_with_evidence(cameras))
            for row in rows:
                for name in EVIDENCE:
                    relative = getattr(row, name)
                    if relative is not None and not self._path(relative).is_file():
                        cleared.append(relative)
                        setattr(row, name, None)
            if cleared:
                add_entry(self.db, session, "reconcile", "clear_missing", None, {"paths": cleared})
        self._missing = False
        return cleared

    def reconcile(
        self, grace_seconds: float = ORPHAN_GRACE_S, cameras: Collection[str] | None = None
    ) -> tuple[list[str], list[str]]:
        """Make rows and evidence files agree after a crash: clear paths to missing files, delete orphans
        (of `cameras` only, if given: a cluster node cleans up after the cameras it takes over).

        Orphans younger than `grace_seconds` are kept, since a running recorder may not have stored their
        path yet; the live service, the only writer, passes 0 before its cameras start.
        Returns (cleared paths, deleted orphan files), both relative to the data dir.
        """
        cleared = self.clear_missing(cameras)
        with self.db.sessions.begin() as session:
            referenced = {
                self._path(relative)
                for row in session.scalars(_with_evidence(cameras))
                for relative in (getattr(row, name) for name in EVIDENCE)
                if relative is not None
            }
        young = time.time() - grace_seconds  # file times are real wall time, whatever the clock
        orphans = [p for p in self._evidence_files(cameras) if p not in referenced and p.stat().st_mtime <= young]
        for path in orphans:
            path.unlink(missing_ok=True)
        return cleared, [str(p.relative_to(self.db.data_dir)) for p in orphans]
