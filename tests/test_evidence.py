"""Evidence clips, snapshots and thumbnails from real PETS09 frames and hand-made event changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import FOOTAGE, fill_disk

from pipeline.errors import CctvError
from pipeline.events import Event, EventChange
from pipeline.evidence import BackgroundEvidence, EvidencePaths, EvidenceRecorder, Recorder
from pipeline.rules import HitKind
from pipeline.sources import open_source
from pipeline.types import Box, Frame, Track
from pipeline.video import H264Encoder, PacketWriter

FPS = 10.0  # PETS09 container rate
BOX: Box = (300.0, 200.0, 360.0, 330.0)
BETTER: Box = (400.0, 150.0, 470.0, 300.0)


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    with open_source(FOOTAGE / "pets09-s2l1.avi", fps=None) as src:
        return [f for _, f in zip(range(140), src)]


def change(
    kind: HitKind, start: float, end: float | None, score: float, box: Box, event_id: str = "pets-000001"
) -> EventChange:
    event = Event(
        id=event_id, camera="pets", rule="west-intrusion", type="intrusion", label="person", track_id=7,
        start=start, end=end, start_frame=round(start * FPS), end_frame=None if end is None else round(end * FPS),
        score=score, box=box, priority=1,
    )  # fmt: skip
    return EventChange(kind, event)


def drive(rec: Recorder, frames: list[Frame], changes: dict[int, list[EventChange]]) -> None:
    """As the live loop does: push a frame, then the pipeline publishes that frame's changes, then its tracks."""
    for frame in frames:
        rec.push(frame)
        for c in changes.get(frame.index, []):
            rec.on_change(c)
        rec.observe([])


def clip_times(path: Path) -> tuple[list[float], str, str, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.time) for f in container.decode(stream)]
        return times, stream.codec_context.name, stream.codec_context.pix_fmt, float(container.duration / av.time_base)


def top_atoms(path: Path) -> list[str]:
    data, atoms, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        atoms.append(data[pos + 4 : pos + 8].decode())
        pos += size if size >= 8 else len(data)
    return atoms


def no_parts(out: Path) -> bool:
    return not [p for p in out.iterdir() if p.name.endswith(".part")]


def test_clip_snapshot_thumbnail(frames: list[Frame], tmp_path: Path) -> None:
    done: list[EvidencePaths] = []
    rec = EvidenceRecorder(tmp_path, pre_roll=2.0, post_roll=1.0, on_done=done.append)
    changes = {
        100: [change("start", 10.0, None, 0.5, BOX)],
        110: [change("update", 10.0, None, 0.8, BETTER)],
        112: [change("update", 10.0, None, 0.6, BOX)],  # lower score: not the best frame
        120: [change("end", 10.0, 12.0, 0.8, BETTER)],
    }
    drive(rec, frames, changes)
    assert done == [EvidencePaths.of(tmp_path, "pets-000001")] and not rec.clips

    times, codec, pix_fmt, duration = clip_times(done[0].clip)
    assert (codec, pix_fmt) == ("h264", "yuv420p")
    # Clip time 0 is source time 8.0 (10.0 - pre-roll); the last frame is source 13.0 (12.0 + post-roll).
    assert len(times) == 51 and times[0] == 0.0 and times[-1] == pytest.approx(5.0, abs=0.01)
    assert duration == pytest.approx(5.1, abs=2 / FPS)
    atoms = top_atoms(done[0].clip)
    assert atoms.index("moov") < atoms.index("mdat")

    snap = cv2.imread(str(done[0].snapshot))
    assert snap.shape == (576, 768, 3)
    x1, y1, x2, y2 = map(int, BETTER)
    b, g, r = snap[(y1 + y2) // 2, x1].astype(int)
    assert r > 180 and g < 100 and b < 100  # the alarm colour on the box's left edge
    # The snapshot is the best-scoring update's frame (110), not the start's (100).
    inside = (slice(y1 + 4, y2 - 4), slice(x1 + 4, x2 - 4))
    diff = {i: np.abs(snap[inside].astype(int) - frames[i].image[inside]).mean() for i in (100, 110)}
    assert diff[110] < 5 < diff[100]  # measured 2.9 and 20.6

    thumb = cv2.imread(str(done[0].thumbnail))
    assert thumb.shape == (240, 320, 3)
    assert no_parts(tmp_path)


def test_event_at_stream_start_has_short_pre_roll(frames: list[Frame], tmp_path: Path) -> None:
    done: list[EvidencePaths] = []
    rec = EvidenceRecorder(tmp_path, pre_roll=2.0, post_roll=0.5, on_done=done.append)
    drive(rec, frames[:30], {3: [change("start", 0.3, None, 0.5, BOX)], 5: [change("end", 0.3, 0.5, 0.5, BOX)]})
    times, *_ = clip_times(done[0].clip)
    assert len(times) == 11 and times[-1] == pytest.approx(1.0, abs=0.01)  # source 0.0 to 1.0
    assert done[0].snapshot.exists() and done[0].thumbnail.exists()


def test_overlapping_events_and_close_mid_event(frames: list[Frame], tmp_path: Path) -> None:
    done: list[EvidencePaths] = []
    rec = EvidenceRecorder(tmp_path, pre_roll=1.0, post_roll=0.0, on_done=done.append)
    changes = {
        20: [change("start", 2.0, None, 0.5, BOX, "pets-000001")],
        25: [change("start", 2.5, None, 0.5, BOX, "pets-000002")],
        30: [change("end", 2.0, 3.0, 0.5, BOX, "pets-000001")],
    }
    drive(rec, frames[:41], changes)
    assert [p.event_id for p in done] == ["pets-000001"]
    rec.close()  # the stream stopped at source 4.0 with the second event still open
    assert [p.event_id for p in done] == ["pets-000001", "pets-000002"]
    first, _, _, _ = clip_times(done[0].clip)
    second, _, _, _ = clip_times(done[1].clip)
    assert len(first) == 21  # 1.0 .. 3.0 (post-roll 0: ends on the end frame)
    # The second began while the first was open: at the keyframe (1.0) before its pre-roll (1.5), up to 4.0.
    assert len(second) == 31 and second[-1] == pytest.approx(3.0, abs=0.01)
    assert no_parts(tmp_path)


def test_overlapping_events_share_one_encoding(frames: list[Frame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three events open at once: each frame is encoded once drawn and once raw, not once per clip, and each
    clip still holds every frame of its span; no encoding while no event is open."""
    encoded: list[float] = []
    real = H264Encoder.encode
    monkeypatch.setattr(H264Encoder, "encode", lambda self, image, t: encoded.append(t) or real(self, image, t))
    done: list[EvidencePaths] = []
    rec = EvidenceRecorder(tmp_path, pre_roll=1.0, post_roll=0.0, on_done=done.append)
    changes = {
        30: [change("start", 3.0, None, 0.5, BOX, f"pets-{n:06d}") for n in (1, 2, 3)],
        50: [change("end", 3.0, 5.0, 0.5, BOX, f"pets-{n:06d}") for n in (1, 2, 3)],
    }
    drive(rec, frames[:80], changes)
    assert len(done) == 3 and not rec.clips
    assert len(encoded) == 2 * 32  # 2.0 .. 5.0, pre-roll to end (31 frames), and 5.1 that ended them
    for paths in done:
        times, *_ = clip_times(paths.clip)
        assert len(times) == 31 and times[-1] == pytest.approx(3.0, abs=0.01)  # 2.0 .. 5.0


def test_clip_files_copy_the_packets_without_an_encoder_of_their_own(frames: list[Frame], tmp_path: Path) -> None:
    """A stream added by codec name opens an idle libx264 per file (4 threads, 7-200 MB); a live site holds
    tens of clips open. The files' streams come from the first keyframe instead, and play back whole."""
    height, width = frames[0].image.shape[:2]
    encoder = H264Encoder(width, height)
    writers = [PacketWriter(tmp_path / f"{k}.mp4") for k in range(3)]
    for i, frame in enumerate(frames[:12]):
        for packet in encoder.encode(frame.image, i / FPS):
            for writer in writers:
                writer.write(packet)
    assert all(w.stream is not None and not w.stream.codec_context.is_open for w in writers)
    for writer in writers:
        writer.close()
        with av.open(str(writer.path)) as clip:
            decoded = [f.to_ndarray(format="bgr24") for f in clip.decode(video=0)]
        assert len(decoded) == 12 and decoded[0].shape == (height, width, 3)
    late = PacketWriter(tmp_path / "late.mp4")
    with pytest.raises(ValueError, match="keyframe"):
        late.write(encoder.encode(frames[12].image, 1.2)[0])  # not a keyframe: a clip starts at one
    late.abort()


def test_abort_leaves_no_clip(frames: list[Frame], tmp_path: Path) -> None:
    """An unfinished clip is dropped whole; the snapshot and thumbnail written at the start are complete and stay."""
    done: list[EvidencePaths] = []
    started: list[EvidencePaths] = []
    rec = EvidenceRecorder(tmp_path, pre_roll=1.0, post_roll=1.0, on_done=done.append, on_started=started.append)
    drive(rec, frames[:40], {20: [change("start", 2.0, None, 0.5, BOX)]})
    rec.abort()
    assert not done and len(started) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([started[0].snapshot.name, started[0].thumbnail.name])


def test_a_full_disk_drops_the_clip_at_once_and_the_recorder_goes_on(
    frames: list[Frame], small_disk: Callable[[int], Path]
) -> None:
    """A real full tmpfs: the open clip is dropped when its write fails (no `.part` left), the stills that were
    written are still handed over, the next event starts without evidence, and once there is room again, a
    later event gets its whole clip."""
    out = small_disk(4)
    done: list[EvidencePaths] = []
    rec = EvidenceRecorder(out, pre_roll=1.0, post_roll=0.5, on_done=done.append)
    drive(rec, frames[:20], {15: [change("start", 1.5, None, 0.5, BOX, "pets-000001")]})
    filler = out / "filler"
    fill_disk(filler)
    drive(rec, frames[20:60], {40: [change("start", 4.0, None, 0.5, BOX, "pets-000002")]})
    assert not rec.clips and no_parts(out)
    assert [p.event_id for p in done] == ["pets-000001", "pets-000002"]  # handed over with what exists
    assert done[0].snapshot.is_file() and not done[0].clip.exists()  # the first event's stills were written
    assert not done[1].clip.exists()  # (its stills may fit in what the first clip's removal freed)
    filler.unlink()
    changes = {70: [change("start", 7.0, None, 0.5, BOX, "pets-000003")], 80: [change("end", 7.0, 8.0, 0.5, BOX, "pets-000003")]}
    drive(rec, frames[60:100], changes)
    assert [p.event_id for p in done] == ["pets-000001", "pets-000002", "pets-000003"]
    times, *_ = clip_times(done[2].clip)
    assert len(times) == 26  # 6.0 .. 8.5
    assert no_parts(out)


def test_buffer_is_bounded(frames: list[Frame], tmp_path: Path) -> None:
    rec = EvidenceRecorder(tmp_path, pre_roll=2.0, max_buffer_seconds=3.0)
    drive(rec, frames, {})
    assert rec.buffer[-1].pts - rec.buffer[0].pts <= 3.0 and len(rec.buffer) == 31
    assert sum(b.jpeg.nbytes for b in rec.buffer) < 31 * frames[0].image.nbytes / 5  # JPEG, not raw
    with pytest.raises(CctvError, match="shorter than pre_roll"):
        EvidenceRecorder(tmp_path, pre_roll=5.0, max_buffer_seconds=2.0)


def test_the_clip_shows_the_event_and_the_raw_clip_does_not(frames: list[Frame], tmp_path: Path) -> None:
    """Stills exist from the start; the played clip has the event's box (following its track) and the rule's zone."""
    from pipeline.config import load_config

    cam = load_config(Path(__file__).parents[1] / "configs" / "pets09.yaml").cameras["pets"]
    done: list[EvidencePaths] = []
    started: list[EvidencePaths] = []
    rec = EvidenceRecorder(tmp_path, 1.0, 0.5, on_done=done.append, on_started=started.append, camera=cam)
    moved: Box = (320.0, 210.0, 380.0, 340.0)
    for frame in frames[:50]:
        rec.push(frame)
        if frame.index == 20:
            rec.on_change(EventChange("start", replace(change("start", 2.0, None, 0.5, BOX).event, zone="road_west")))
            assert started and started[0].snapshot.is_file() and started[0].thumbnail.is_file() and not done
        if frame.index == 30:
            rec.observe([Track(7, "person", moved, 0.9, 2.0, 3.0, 30)])
        if frame.index == 40:
            rec.on_change(EventChange("end", replace(change("end", 2.0, 4.0, 0.5, BOX).event, zone="road_west")))
    rec.close()
    (paths,) = done

    def frame_at(path: Path, t: float) -> np.ndarray:
        with av.open(str(path)) as container:
            return next(f.to_ndarray(format="bgr24") for f in container.decode(video=0) if f.time >= t - 1e-3)

    assert len(clip_times(paths.clip)[0]) == len(clip_times(paths.raw)[0])
    t0 = frames[10].pts  # the clip starts one second of pre-roll before the event
    shown, raw = frame_at(paths.clip, 3.5 - t0), frame_at(paths.raw, 3.5 - t0)
    red = lambda img, x, y: img[y, x, 2] > 180 and img[y, x, 0] < 100  # noqa: E731  the alarm colour (BGR)
    assert red(shown, 320, 275) and not red(raw, 320, 275)  # the left edge of the track's box at its new place
    zone_x, zone_y = 150, 180  # on the top edge of road_west
    assert abs(int(shown[zone_y, zone_x, 0]) - int(raw[zone_y, zone_x, 0])) > 60


def test_the_frame_an_event_starts_on_is_recorded_with_its_own_tracked_boxes(
    frames: list[Frame], tmp_path: Path
) -> None:
    """The first event's pre-roll is encoded when it starts, during the analysis of the newest frame: that
    frame waits for its tracks (an export told the subject from a stranger by the frame before's box)."""
    done: list[EvidencePaths] = []
    rec = EvidenceRecorder(tmp_path, pre_roll=1.0, post_roll=0.5, on_done=done.append)
    for frame in frames[:40]:
        rec.push(frame)
        if frame.index == 20:
            rec.on_change(change("start", frame.pts, None, 0.5, BOX))
        if frame.index == 30:
            rec.on_change(change("end", frames[20].pts, frame.pts, 0.5, BOX))
        x = 100.0 + 5 * frame.index  # the track walks 5 px a frame
        rec.observe([Track(7, "person", (x, 200.0, x + 40, 320.0), 0.9, 0.0, frame.pts, frame.index)])
    rec.close()
    (paths,) = done
    doc = json.loads(paths.tracks.read_text())
    t0, boxes = doc["t0"], {round(f["t"], 3): f["boxes"] for f in doc["frames"]}
    for frame in frames[10:31]:
        x = 100.0 + 5 * frame.index
        assert boxes[round(frame.pts - t0, 3)] == [[7, "person", x, 200.0, x + 40, 320.0]], frame.index


def test_background_evidence_writes_the_same_clip_and_drops_frames_when_behind(
    frames: list[Frame], tmp_path: Path
) -> None:
    """Live cameras encode on a background thread: the calls keep their order, so the clip is the one the
    recorder writes in the foreground; when it falls behind, frames are left out and counted, nothing fails."""
    changes = {30: [change("start", 3.0, None, 0.6, BOX)], 60: [change("end", 3.0, 6.0, 0.6, BOX)]}
    drive(EvidenceRecorder(tmp_path / "direct", pre_roll=2, post_roll=1), frames[:90], changes)
    background = BackgroundEvidence(EvidenceRecorder(tmp_path / "bg", pre_roll=2, post_roll=1), max_frames=200)
    drive(background, frames[:90], changes)
    background.close()
    assert background.dropped == 0 and background.latest is not None
    direct, queued = (clip_times(EvidencePaths.of(tmp_path / d, "pets-000001").clip)[0] for d in ("direct", "bg"))
    assert queued == direct and len(queued) == 21 + 30 + 10

    stalled = BackgroundEvidence(EvidenceRecorder(tmp_path / "stalled", pre_roll=2, post_roll=1), max_frames=0)
    drive(stalled, frames[:90], changes)
    stalled.close()  # every frame left out: the event gets no clip, and the camera goes on
    assert stalled.dropped == 90 and stalled.latest is None
    assert not EvidencePaths.of(tmp_path / "stalled", "pets-000001").clip.exists() and no_parts(tmp_path / "stalled")
