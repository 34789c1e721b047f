"""A small stored site for the privacy tests: 12 s of PETS09 through the engine into a real store, with a
privacy zone over part of the view, events and their evidence (clips, stills, tracked boxes) stored."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import yaml
from conftest import FOOTAGE, ROOT

from pipeline.config import CameraConfig, SiteConfig
from pipeline.detect import camera_detector
from pipeline.engine import CameraRun
from pipeline.evidence import EvidencePaths, EvidenceRecorder
from pipeline.sources import open_source
from pipeline.store import EVIDENCE_DIR, EventStore

PRIVACY_ZONE = [[560, 60], [768, 60], [768, 330], [560, 330]]  # people walk through it
SECONDS = 12.0
FPS = 5.0


def pets_site(**camera: object) -> SiteConfig:
    raw = yaml.safe_load((ROOT / "configs" / "pets09.yaml").read_text())
    pets = raw["cameras"]["pets"] | {"source": str(FOOTAGE / "pets09-s2l1.avi"), "detect": {"fps": FPS}} | camera
    raw["model"]["path"] = str(ROOT / "models" / "yolo11n_int8_openvino_model")
    raw["cameras"] = {"pets": pets}
    return SiteConfig.model_validate(raw)


def record(store: EventStore, site: SiteConfig, name: str = "pets") -> None:
    """Run the camera's first SECONDS into `store`, its evidence under the store's evidence dir."""
    cam: CameraConfig = site.cameras[name]
    root = store.data_dir

    def stored(paths: EvidencePaths) -> None:
        names = {"clip": paths.clip, "raw_clip": paths.raw, "snapshot": paths.snapshot, "thumbnail": paths.thumbnail,
                 "tracks": paths.tracks}
        store.set_evidence(paths.event_id, **{k: str(p.relative_to(root)) for k, p in names.items() if p.is_file()})

    recorder = EvidenceRecorder(root / EVIDENCE_DIR / name, 1.0, 1.0, on_done=stored, camera=cam)
    with open_source(cam.source, fps=cam.detect.fps, privacy=cam.privacy_mask) as src:
        run = CameraRun(
            name, cam, fps=src.fps, subscribers=[store.apply], detector=camera_detector(site.model, cam),
            size=(src.width, src.height), evidence=recorder,
        )
        with run:
            for frame in islice(src, int(SECONDS * FPS)):
                run.process([frame])
            run.close()


def make_store(root: Path, **camera: object) -> EventStore:
    store = EventStore.open(root / "data")
    record(store, pets_site(**camera))
    return store
