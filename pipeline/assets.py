"""Models and sample footage, verified against the SHA-256 manifest in the repo and linked into it.

The files never enter git: they come from a local asset directory (`--asset-dir`, `$CCTV_ASSETS`,
or `../shared` beside the checkout), or from their official URL where one exists. Hashing all of
them takes well under a second, so every run verifies every file instead of trusting a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipeline.errors import CctvError

MANIFEST = Path(__file__).with_name("assets_manifest.json")
ENV = "CCTV_ASSETS"
DOWNLOAD_TIMEOUT = 30.0  # seconds without progress before a download fails
CHUNK = 1 << 20
LISTED = 3  # missing files named in the one-line error


@dataclass(frozen=True)
class Asset:
    path: str  # inside the asset directory
    target: str  # inside the project: models/... or sample_videos/...
    size: int
    sha256: str
    url: str | None = None  # official download, None where there is none


@dataclass
class AssetReport:
    directory: Path
    outcomes: dict[str, str] = field(default_factory=dict)  # target -> present | linked | copied | downloaded

    def __str__(self) -> str:
        how = {
            "present": "already in place",
            "linked": f"linked from {self.directory}",
            "copied": f"copied from {self.directory}",
            "downloaded": "downloaded",
        }
        counts = Counter(self.outcomes.values())
        done = ", ".join(f"{counts[k]} {text}" for k, text in how.items() if counts[k])
        return f"{len(self.outcomes)} assets verified in models/ and sample_videos/: {done}"


def load_manifest(path: Path = MANIFEST) -> list[Asset]:
    return [Asset(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))["files"]]


def project_root() -> Path:
    """The checkout this package runs from (installed editable), which holds models/ and sample_videos/."""
    return Path(__file__).resolve().parent.parent


def asset_dir(root: Path | None = None, explicit: Path | None = None) -> Path:
    """Where assets are looked for: `explicit`, else $CCTV_ASSETS, else ../shared beside the project."""
    chosen = explicit or os.environ.get(ENV) or (root or project_root()).parent / "shared"
    return Path(os.path.abspath(Path(chosen).expanduser()))


def _sha256(path: Path) -> str | None:
    """Hex digest of a file; None where there is none (also a dangling link)."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise CctvError(f"cannot read {path}: {exc.strerror}") from None


def _mismatch(where: str, asset: Asset, got: str, size: int) -> str:
    sizes = f" ({size} bytes, expected {asset.size})" if size != asset.size else ""
    return f"checksum mismatch: {where}: expected sha256 {asset.sha256[:12]}, got {got[:12]}{sizes}"


def _place(source: Path, target: Path) -> str:
    """Link target to source (copy where links are not allowed), replacing whatever was there atomically."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        try:
            tmp.symlink_to(source.resolve())
            how = "linked"
        except OSError:
            shutil.copyfile(source, tmp)
            how = "copied"
        os.replace(tmp, target)
    except OSError as exc:
        raise CctvError(f"cannot write {target}: {exc.strerror}") from None
    return how


def _download(asset: Asset, url: str, target: Path, why: str) -> None:
    """Fetch into a temporary file beside the target, verify it, then rename it into place."""
    tmp = target.with_name(f".{target.name}.part")
    digest = hashlib.sha256()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response,
            open(tmp, "wb") as out,
            tqdm(total=asset.size, unit="B", unit_scale=True, desc=asset.target, disable=None, leave=False) as bar,
        ):
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        got, size = digest.hexdigest(), tmp.stat().st_size
        if got != asset.sha256:
            raise CctvError(_mismatch(f"{asset.path} downloaded from {url}", asset, got, size))
        os.replace(tmp, target)
    except OSError as exc:  # urllib.error.URLError included
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc.strerror or exc
        raise CctvError(f"{why}, and downloading it from {url} failed: {reason}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _problems(directory: Path, missing: list[str], corrupt: list[str]) -> str:
    parts = list(corrupt)
    if missing and not directory.is_dir():
        parts.append(f"asset directory {directory} not found")
    elif missing:
        more = f" and {len(missing) - LISTED} more" if len(missing) > LISTED else ""
        parts.append(f"missing from {directory}: {', '.join(missing[:LISTED])}{more}")
    return "; ".join(parts) + f" (set {ENV} or --asset-dir to the directory that holds them)"


def ensure_assets(root: Path, directory: Path | None = None, assets: Sequence[Asset] | None = None) -> AssetReport:
    """Verify every asset (the repo's manifest by default) and make it available under `root`.

    Each target that already verifies is left alone; otherwise it is linked from the asset directory,
    or downloaded where the local copy is missing or corrupt and a URL exists. Anything that cannot
    be had is one CctvError line, raised before any download starts.
    """
    directory = asset_dir(root, directory)
    report = AssetReport(directory)
    missing: list[str] = []
    corrupt: list[str] = []
    downloads: list[tuple[Asset, str, str]] = []
    for asset in load_manifest() if assets is None else assets:
        target = root / asset.target
        if _sha256(target) == asset.sha256:
            report.outcomes[asset.target] = "present"
            continue
        source = directory / asset.path
        got = _sha256(source)
        if got == asset.sha256:
            report.outcomes[asset.target] = _place(source, target)
            continue
        problem = _mismatch(str(source), asset, got, source.stat().st_size) if got else f"{source} not found"
        if asset.url:
            downloads.append((asset, asset.url, problem))
        elif got:
            corrupt.append(problem)
        else:
            missing.append(asset.path)
    if missing or corrupt:
        raise CctvError(_problems(directory, missing, corrupt))
    for asset, url, why in downloads:
        _download(asset, url, root / asset.target, why)
        report.outcomes[asset.target] = "downloaded"
    return report
