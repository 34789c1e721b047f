"""The files a replay writes and the evaluation tools read: `events.jsonl` and MOTChallenge `tracks.txt`.

Both are contracts: other tools (evaluation, benchmarks, MOT scorers) rely on their layout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import CctvError

Prediction = tuple[int, float, float, float, float]  # track_id, x1, y1, x2, y2
Predictions = Mapping[int, Sequence[Prediction]]  # 0-based frame index -> that frame's tracks


class EventLine(BaseModel):
    """One line of an events or ground-truth file; other fields (type, id, zone...) pass through."""

    model_config = ConfigDict(extra="allow")

    camera: str
    rule: str
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    track_id: int | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> EventLine:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """The records of an events or truth JSON-lines file; the first bad line is one CctvError."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CctvError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CctvError(f"{path}: cannot read ({exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise CctvError(f"{path}:{number}: expected a JSON object, not {type(raw).__name__}")
            records.append(EventLine.model_validate(raw).model_dump(exclude_unset=True))
        except json.JSONDecodeError as exc:
            raise CctvError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            where = f"{field}: " if field else ""
            raise CctvError(f"{path}:{number}: {where}{err['msg'].removeprefix('Value error, ')}") from None
    return records


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file as written (blank lines skipped), e.g. a replay's `events.jsonl`."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def read_tracks(path: str | Path) -> dict[int, list[Prediction]]:
    """A MOTChallenge result file (`frame,id,x,y,w,h,...`, e.g. replay's tracks.txt) as predictions.

    A missing file or a malformed line is one CctvError naming the file and line.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CctvError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CctvError(f"{path}: cannot read ({exc})") from None
    predictions: dict[int, list[Prediction]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            frame, track_id, x, y, w, h = (float(v) for v in line.split(",")[:6])
        except ValueError:
            raise CctvError(f"{path}:{number}: expected frame,id,x,y,w,h,... (MOTChallenge format)") from None
        predictions.setdefault(int(frame) - 1, []).append((int(track_id), x, y, x + w, y + h))
    return predictions


def write_tracks(path: str | Path, predictions: Predictions) -> None:
    """Tracks as a MOTChallenge result file (1-based frames, x,y,w,h) for other MOT tools."""
    lines = [
        f"{frame + 1},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1"
        for frame in sorted(predictions)
        for tid, x1, y1, x2, y2 in predictions[frame]
    ]
    Path(path).write_text("".join(line + "\n" for line in lines))


def output_dir(path: str | Path) -> Path:
    """An output directory, made if needed; one CctvError when it cannot be (a file there, no permission)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CctvError(f"--out {path}: a file is in the way; name a directory") from None
    except OSError as exc:
        raise CctvError(f"--out {path}: cannot make the directory ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise CctvError(f"--out {path}: the directory cannot be written")
    return path
