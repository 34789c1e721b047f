"""`cctv assets`: verified against the manifest, linked into the project, one-line errors otherwise."""

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest

from pipeline.assets import Asset, asset_dir, ensure_assets, load_manifest
from pipeline.errors import CctvError

SHARED = asset_dir()
MANIFEST = load_manifest()
SMALL = next(a for a in MANIFEST if a.path == "models/yolo11n_int8_openvino_model/metadata.yaml")


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"asset directory {SHARED} not found")
    monkeypatch.setenv("CCTV_ASSETS", str(SHARED))
    return SHARED


def _one_line_error(root: Path, **kwargs: object) -> str:
    with pytest.raises(CctvError) as info:
        ensure_assets(root, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _flipped(tmp_path: Path, asset: Asset) -> Path:
    """An asset directory holding a copy of `asset` with one byte changed."""
    directory = tmp_path / "assets"
    copy = directory / asset.path
    copy.parent.mkdir(parents=True)
    data = bytearray((SHARED / asset.path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(data)
    return directory


def test_manifest_lists_every_shared_file(shared: Path) -> None:
    sums = dict(line.split()[::-1] for line in (shared / "SHA256SUMS").read_text().splitlines())
    assert {a.path: a.sha256 for a in MANIFEST} == sums
    assert all(a.target.startswith(("models/", "sample_videos/")) for a in MANIFEST)


def test_real_run_links_verified_files_and_is_idempotent(shared: Path, tmp_path: Path) -> None:
    report = ensure_assets(tmp_path)
    assert set(report.outcomes.values()) <= {"linked", "copied"} and len(report.outcomes) == len(MANIFEST)
    for asset in MANIFEST:
        target = tmp_path / asset.target
        assert hashlib.sha256(target.read_bytes()).hexdigest() == asset.sha256
    assert (tmp_path / "models/yolo11n_int8_openvino_model/yolo11n.xml").is_file()
    assert (tmp_path / "sample_videos/pets09-s2l1.avi").is_file()

    again = ensure_assets(tmp_path)
    assert set(again.outcomes.values()) == {"present"}
    assert str(again).startswith(f"{len(MANIFEST)} assets verified")


def test_stale_target_is_replaced(shared: Path, tmp_path: Path) -> None:
    target = tmp_path / SMALL.target
    target.parent.mkdir(parents=True)
    target.write_text("stale")
    assert ensure_assets(tmp_path, assets=[SMALL]).outcomes == {SMALL.target: "linked"}
    assert hashlib.sha256(target.read_bytes()).hexdigest() == SMALL.sha256


def test_missing_asset_dir_is_one_line(shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("CCTV_ASSETS", str(nowhere))
    message = _one_line_error(tmp_path / "project")
    assert f"asset directory {nowhere} not found" in message and "CCTV_ASSETS" in message


def test_missing_files_are_named(shared: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    message = _one_line_error(tmp_path / "project", directory=empty, assets=[SMALL])
    assert f"missing from {empty}: {SMALL.path} (set CCTV_ASSETS" in message


def test_corrupt_copy_is_a_checksum_error(shared: Path, tmp_path: Path) -> None:
    directory = _flipped(tmp_path, SMALL)
    message = _one_line_error(tmp_path / "project", directory=directory, assets=[SMALL])
    got = hashlib.sha256((directory / SMALL.path).read_bytes()).hexdigest()
    assert message.startswith(f"checksum mismatch: {directory / SMALL.path}: expected sha256 {SMALL.sha256[:12]}")
    assert f"got {got[:12]}" in message
    assert not (tmp_path / "project" / SMALL.target).exists()


def test_download_replaces_a_missing_or_corrupt_copy(shared: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote" / "metadata.yaml"
    remote.parent.mkdir()
    shutil.copyfile(SHARED / SMALL.path, remote)
    asset = dataclasses.replace(SMALL, url=remote.as_uri())
    root = tmp_path / "project"
    report = ensure_assets(root, directory=_flipped(tmp_path, SMALL), assets=[asset])
    assert report.outcomes == {SMALL.target: "downloaded"}
    target = root / SMALL.target
    assert not target.is_symlink() and hashlib.sha256(target.read_bytes()).hexdigest() == SMALL.sha256
    assert sorted(p.name for p in target.parent.iterdir()) == ["metadata.yaml"]  # no temporary left


def test_bad_download_is_rejected(shared: Path, tmp_path: Path) -> None:
    remote = _flipped(tmp_path, SMALL) / SMALL.path
    asset = dataclasses.replace(SMALL, url=remote.as_uri())
    root = tmp_path / "project"
    message = _one_line_error(root, directory=tmp_path / "none", assets=[asset])
    assert message.startswith(f"checksum mismatch: {SMALL.path} downloaded from {remote.as_uri()}")
    assert not (root / SMALL.target).exists() and not list((root / SMALL.target).parent.iterdir())


def test_unreachable_download_says_what_is_missing(shared: Path, tmp_path: Path) -> None:
    asset = dataclasses.replace(SMALL, url=(tmp_path / "gone").as_uri())
    message = _one_line_error(tmp_path / "project", directory=tmp_path / "none", assets=[asset])
    assert message.startswith(f"{tmp_path / 'none' / SMALL.path} not found, and downloading it from")
