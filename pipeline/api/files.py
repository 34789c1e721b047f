"""Evidence file responses with single-range HTTP Range support, so a browser can seek in a clip."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import HTTPException, status
from fastapi.responses import FileResponse, StreamingResponse
from starlette.responses import Response

CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")  # no file is 10^18 bytes; longer is an attack


def _unsatisfiable(size: int, why: str) -> HTTPException:
    return HTTPException(status.HTTP_416_RANGE_NOT_SATISFIABLE, why, headers={"Content-Range": f"bytes */{size}"})


def parse_range(header: str, size: int) -> tuple[int, int]:
    """(first, last) byte, inclusive, of a single `bytes=` range; multiple ranges are not supported."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        raise _unsatisfiable(size, f"malformed Range {header!r}: use a single 'bytes=first-last' range")
    first, last = match.groups()
    if first == "":  # suffix: the final N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start > end or start >= size:
        raise _unsatisfiable(size, f"Range {header!r} is outside the {size}-byte file")
    return start, end


def _read(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as file:
        file.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = file.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def file_response(path: Path, media_type: str, range_header: str | None) -> Response:
    """200 with the whole file, or 206 with the requested range of it (416 for a bad range)."""
    size = path.stat().st_size
    if range_header is None:
        return FileResponse(path, media_type=media_type, headers={"Accept-Ranges": "bytes"})
    start, end = parse_range(range_header, size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Range": f"bytes {start}-{end}/{size}",
        "Content-Length": str(end - start + 1),
    }
    return StreamingResponse(_read(path, start, end), status.HTTP_206_PARTIAL_CONTENT, headers, media_type)
