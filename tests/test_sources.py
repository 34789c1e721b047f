"""Video sources: PTS timing, fps sampling, damaged input without tracebacks, live sources that drop."""

import functools
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.assets import asset_dir
from pipeline.errors import CctvError
from pipeline.sources import SourceStats, VideoSource, open_source

FOOTAGE = asset_dir() / "footage"
PETS = FOOTAGE / "pets09-s2l1.avi"
OXFORD = FOOTAGE / "oxford-town-centre.mp4"
pytestmark = pytest.mark.skipif(not FOOTAGE.is_dir(), reason=f"footage not found in {FOOTAGE}")


def _clip(path: Path, frames: int = 8, fps: int = 10) -> Path:
    """A tiny 64x48 MPEG-4 clip whose frame i has grey level 30*i."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="bgr24")))
        out.mux(stream.encode(None))
    return path


def _truncated(tmp_path: Path, video: Path, fraction: float) -> Path:
    path = tmp_path / f"truncated-{video.name}"
    data = video.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _error(source: str | int | Path) -> str:
    with pytest.raises(CctvError) as info:
        open_source(source, fps=None)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_pets_every_frame_timed_by_pts() -> None:
    with open_source(PETS, fps=None) as src:
        frames = [(f.index, f.pts, f.image.shape, f.image.dtype) for f in src]
    assert (src.width, src.height, src.fps, src.frame_count, src.duration) == (768, 576, 10.0, 795, 79.5)
    assert [f[0] for f in frames] == list(range(795))
    assert np.allclose([f[1] for f in frames], np.arange(795) / 10)
    assert {(shape, dtype) for _, _, shape, dtype in frames} == {((576, 768, 3), np.dtype(np.uint8))}
    assert src.stats == SourceStats(frames_read=795, frames_yielded=795)


def test_pets_sampled_at_5_fps() -> None:
    with open_source(str(PETS), fps=5) as src:
        frames = list(src)
    assert len(frames) == 398 and frames[-1].pts == pytest.approx(79.4)
    assert np.allclose(np.diff([f.pts for f in frames]), 0.2)
    assert src.stats.frames_read == 795 and src.stats.frames_yielded == 398


def test_oxford_sampled_at_5_fps() -> None:
    with open_source(str(OXFORD), fps=5) as src:
        frames = list(src)
    assert (src.width, src.height, src.fps) == (1920, 1080, 30.0)
    assert 49 <= len(frames) <= 52 and frames[0].pts == 0.0
    assert np.allclose(np.diff([f.pts for f in frames]), 0.2, atol=1e-3)
    assert set(np.diff([f.index for f in frames])) == {6}


def test_missing_pts_and_jitter() -> None:
    """Frames without PTS are timed a frame period after the last; sampling tolerates half a frame."""
    times = [None, None] + [i / 30 + (0.01 if i % 2 else -0.01) for i in range(2, 58)] + [4.99, 5.09, 5.19]

    class Fake:
        fps, frame_count, duration = 30.0, None, None

        def frames(self) -> Iterator[tuple[float | None, np.ndarray]]:
            return ((t, np.zeros((4, 6, 3), np.uint8)) for t in times)

        def close(self) -> None:
            pass

    everything = [f.pts for f in VideoSource("fake", lambda stats: Fake(), None, False, False, False)]
    assert everything[:4] == pytest.approx([0.0, 1 / 30, 2 / 30, 3 / 30 + 0.02])  # first PTS lands on its slot
    sampled = [f.pts for f in VideoSource("fake", lambda stats: Fake(), 5.0, False, False, False)]
    assert np.allclose(np.round(sampled[:10], 1), np.arange(10) / 5)  # every 6th frame despite jitter
    assert sampled[10:] == pytest.approx([5.0, 5.2])  # after a gap: back on the 0.2 s grid


def test_missing_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.avi") == f"{tmp_path / 'nope.avi'}: file not found"


@pytest.mark.parametrize(
    "name, content",
    [
        ("random.mp4", os.urandom(50_000)),
        ("notes.avi", b"not a video\n" * 100),
        ("boxes.txt", b"1,1,10,10,20,20\n" * 50),  # FFmpeg's tty demuxer renders text as "video"
    ],
)
def test_not_a_video(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert _error(path).startswith(f"cannot open video {path}: ")


def test_no_webcam() -> None:
    assert _error(97).startswith("cannot open webcam 97")


def test_truncated_avi_yields_what_decodes(tmp_path: Path) -> None:
    with open_source(_truncated(tmp_path, PETS, 0.4), fps=None) as src:
        frames = list(src)
    assert 100 < len(frames) < 795 and src.stats.frames_yielded == len(frames)
    assert np.allclose(np.diff([f.pts for f in frames]), 0.1)


def test_truncated_mp4_without_index_is_one_line(tmp_path: Path) -> None:
    path = _truncated(tmp_path, OXFORD, 0.4)  # its moov atom is at the end
    assert _error(path) == f"cannot open video {path}: Invalid data found when processing input"


def test_truncated_mp4_with_index_yields_what_decodes(tmp_path: Path) -> None:
    with open_source(_truncated(tmp_path, FOOTAGE / "shopping-street-crowd.mp4", 0.4), fps=None) as src:
        assert 50 < sum(1 for _ in src) < 314


def test_corrupt_packets_are_skipped_and_counted(tmp_path: Path) -> None:
    data = bytearray((FOOTAGE / "synthetic-crowd.mp4").read_bytes())  # 192 frames at 24 fps
    rng = np.random.default_rng(0)
    for at in rng.integers(len(data) // 5, len(data) * 4 // 5, 20):
        data[at : at + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(data)
    with open_source(path, fps=5) as src:
        frames = list(src)
    assert src.stats.decode_errors > 0 and 0 < len(frames) <= 40
    assert np.all(np.diff([f.pts for f in frames]) > 0)


def test_looped_file_plays_at_real_time_with_rising_pts(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip.mkv")  # 8 frames, 0.8 s
    seen = []
    with open_source(clip, fps=None, loop=True) as src:
        assert src.live and src.duration is None and src.frame_count is None
        start = time.monotonic()
        for frame in src:
            seen.append((frame.index, frame.pts, time.monotonic() - start, int(frame.image.mean())))
            if frame.pts >= 1.5:
                break
    index, pts, wall, grey = map(np.array, zip(*seen, strict=True))
    assert list(index) == list(range(16)) and np.allclose(pts, index / 10)  # across the loop boundary at 0.8 s
    assert abs(grey[8] - grey[0]) < 5  # frame 8 is the clip's first frame again
    assert np.all(np.abs(wall - pts) < 0.3)  # paced at real time, not decoded ahead


def test_a_live_source_is_put_on_the_wall_clock_when_its_frames_arrive_not_when_they_are_taken() -> None:
    """A camera may take its frames well after they arrived (its last batch still with the detector):
    stamping them at that moment put every later frame of the camera up to a sampling period in the future."""
    with open_source(PETS, fps=5, loop=True) as src:  # paced: a frame every 0.2 s
        assert src.wait(5)
        arrived = time.time()
        time.sleep(0.15)  # the camera busy with its last batch; no newer frame yet
        taken = time.time()
        frame = src.take(1)[0]
        assert src.wall_offset is not None
        stamped = frame.pts + src.wall_offset
    assert arrived - 0.05 <= stamped <= taken - 0.1


def test_slow_consumer_gets_newest_frames_and_drops_stale_ones() -> None:
    with open_source(PETS, fps=None, live=True) as src:
        frames = []
        for frame in src:
            frames.append(frame)
            if len(frames) == 5:
                break
            time.sleep(0.3)
        stats = src.stats
    gaps = np.diff([f.pts for f in frames])
    assert np.all(gaps >= 0.2) and np.all(gaps <= 0.6)  # ~0.3 s of media between frames: the newest one
    assert stats.frames_yielded == 5 and stats.dropped >= 5


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def test_http_stream_is_live_and_keeps_the_newest_frame(http_dir: tuple[str, Path]) -> None:
    url, directory = http_dir
    _clip(directory / "clip.mkv")
    with open_source(f"{url}/clip.mkv", fps=None) as src:
        assert src.live and (src.width, src.height) == (64, 48)
        frames = [next(src)]
        time.sleep(0.5)  # the reader decodes the rest meanwhile
        frames += list(src)
    assert frames[-1].index == 7 and len(frames) < 8
    assert src.stats.frames_read == 8 == src.stats.frames_yielded + src.stats.dropped


def test_unreachable_stream_is_one_line() -> None:
    message = _error("rtsp://admin:secret@127.0.0.1:9/live")
    assert message.startswith("cannot open video rtsp://admin:***@127.0.0.1:9/live: ")
