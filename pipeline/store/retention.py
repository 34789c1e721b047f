"""Evidence files on disk and their rows kept in agreement: retention by age and size, reconcile after a crash.

A path is cleared in the database first and the file unlinked afterwards, so a crash can only leave an
orphan file, which `reconcile()` (run on open) removes, as it clears any path whose file has gone missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from sqlalchemy import or_, select

from pipeline.errors import CctvError
from pipeline.store.audit import add_entry
from pipeline.store.db import Database
from pipeline.store.models import EventRow

EVIDENCE = ("clip", "raw_clip", "snapshot", "thumbnail", "tracks")
CLIPS = ("clip", "raw_clip")  # what the disk budget counts
EVIDENCE_DIR = "evidence"
ORPHAN_GRACE_S = 60.0  # a recorder may be writing a file whose path is not stored yet
_HAS_EVIDENCE = or_(*(getattr(EventRow, k).is_not(None) for k in EVIDENCE))


def evidence_path(data_dir: Path, relative: str) -> Path:
    """Absolute path of a stored evidence path; refuses anything outside `data_dir/evidence`."""
    path = (data_dir / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(data_dir / EVIDENCE_DIR):
        raise CctvError(f"evidence path {relative!r} must be relative to the data dir, under {EVIDENCE_DIR}/")
    return path


class Retention:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _path(self, relative: str) -> Path:
        return evidence_path(self.db.data_dir, relative)

    def retain(
        self,
        max_age_seconds: float | None = None,
        max_clip_bytes: int | None = None,
        camera_ages: Mapping[str, float] | None = None,
    ) -> list[str]:
        """Delete evidence, oldest event first: all of it past its age, then clips until under the byte budget.

        camera_ages: a camera's own maximum age (seconds), instead of max_age_seconds. Escalated events keep
        their evidence until released (a case under investigation). Event rows, reviews and the audit log
        stay. Returns the deleted relative paths.
        """
        now, ages = self.db.clock(), camera_ages or {}
        doomed: list[str] = []
        with self.db.sessions.begin() as session:
            oldest_first = select(EventRow).order_by(EventRow.created_at, EventRow.start, EventRow.id)
            held = EventRow.review_state == "escalated"
            rows = session.scalars(oldest_first.where(_HAS_EVIDENCE, ~held)).all()
            clip_bytes = sum(self._size(getattr(r, name)) for r in rows for name in CLIPS)
            for row in rows:
                age = ages.get(row.camera, max_age_seconds)
                old = age is not None and row.created_at < now - age
                over = max_clip_bytes is not None and clip_bytes > max_clip_bytes
                for name in EVIDENCE if old else CLIPS if over else ():
                    relative = getattr(row, name)
                    if relative is not None:
                        doomed.append(relative)
                        clip_bytes -= self._size(relative) if name in CLIPS else 0
                        setattr(row, name, None)
            if doomed:
                add_entry(self.db, session, "retention", "retain", None, {"deleted": doomed})
        for relative in doomed:  # only after the commit: a crash here leaves orphans for reconcile()
            self._path(relative).unlink(missing_ok=True)
        return doomed

    def _size(self, relative: str | None) -> int:
        path = None if relative is None else self._path(relative)
        return path.stat().st_size if path is not None and path.is_file() else 0

    def _evidence_files(self) -> Iterator[Path]:
        root = self.db.data_dir / EVIDENCE_DIR
        return (p for p in root.rglob("*") if p.is_file()) if root.is_dir() else iter(())

    def reconcile(self, grace_seconds: float = ORPHAN_GRACE_S) -> tuple[list[str], list[str]]:
        """Make rows and evidence files agree after a crash: clear paths to missing files, delete orphans.

        Orphans younger than `grace_seconds` are kept, since a running recorder may not have stored their
        path yet; the live service, the only writer, passes 0 before its cameras start.
        Returns (cleared paths, deleted orphan files), both relative to the data dir.
        """
        cleared: list[str] = []
        with self.db.sessions.begin() as session:
            rows = session.scalars(select(EventRow).where(_HAS_EVIDENCE))
            referenced: set[Path] = set()
            for row in rows:
                for name in EVIDENCE:
                    relative = getattr(row, name)
                    if relative is None:
                        continue
                    if self._path(relative).is_file():
                        referenced.add(self._path(relative))
                    else:
                        cleared.append(relative)
                        setattr(row, name, None)
            if cleared:
                add_entry(self.db, session, "reconcile", "clear_missing", None, {"paths": cleared})
        young = time.time() - grace_seconds  # file times are real wall time, whatever the clock
        orphans = [p for p in self._evidence_files() if p not in referenced and p.stat().st_mtime <= young]
        for path in orphans:
            path.unlink(missing_ok=True)
        return cleared, [str(p.relative_to(self.db.data_dir)) for p in orphans]
