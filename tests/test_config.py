"""A wrong config is one line naming the file, the path inside it and the problem."""

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import CctvError

BASE = """
cameras:
  cam:
    source: video.avi
    zones:
      z: {polygon: [[0, 0], [10, 0], [10, 10]]}
    lines:
      l: {points: [[0, 0], [10, 10]]}
    rules:
"""


def _load(tmp_path: Path, text: str) -> CctvError:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(CctvError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return info.value


@pytest.mark.parametrize("configs", sorted(Path("configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(configs: Path) -> None:
    site = load_config(configs)
    assert site.cameras and all(cam.rules for cam in site.cameras.values())


def test_unknown_rule_type(tmp_path: Path) -> None:
    err = _load(tmp_path, BASE + "      - {name: r, type: teleport, zone: z}\n")
    assert "cameras.cam.rules[0]" in str(err) and "unknown rule type 'teleport'" in str(err)


def test_zone_with_two_points(tmp_path: Path) -> None:
    text = BASE.replace("[[0, 0], [10, 0], [10, 10]]", "[[0, 0], [10, 0]]") + "      []\n"
    err = _load(tmp_path, text.replace("    rules:\n      []\n", "    rules: []\n"))
    assert "cameras.cam.zones.z.polygon" in str(err) and "at least 3" in str(err)


def test_rule_naming_a_missing_zone(tmp_path: Path) -> None:
    err = _load(tmp_path, BASE + "      - {name: r, type: intrusion, zone: nowhere}\n")
    assert "unknown zone 'nowhere'" in str(err) and "zones: z" in str(err)


def test_rule_naming_a_missing_line(tmp_path: Path) -> None:
    err = _load(tmp_path, BASE + "      - {name: r, type: line_crossing, line: nowhere}\n")
    assert "unknown line 'nowhere'" in str(err)


def test_unknown_key_and_bad_value(tmp_path: Path) -> None:
    err = _load(tmp_path, BASE + "      - {name: r, type: loitering, zone: z, min_seconds: 5, colour: red}\n")
    assert "cameras.cam.rules[0].colour: unknown key" in str(err)
    err = _load(tmp_path, BASE + "      - {name: r, type: loitering, zone: z, min_seconds: -1}\n")
    assert "rules[0].min_seconds" in str(err) and "greater than 0" in str(err)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    err = _load(tmp_path, "cameras: [unclosed\n")
    assert "invalid YAML at line" in str(err)
    with pytest.raises(CctvError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_rule_class_must_be_tracked(tmp_path: Path) -> None:
    err = _load(tmp_path, BASE + "      - {name: r, type: intrusion, zone: z, classes: [car]}\n")
    assert "class 'car' is not in objects.track" in str(err)


def test_site_defaults_merge_under_each_camera(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "defaults: {loop: true, detect: {fps: 3, pack_frames: 2}, objects: {track: [person, car]}}\n"
        "cameras:\n"
        "  a: {source: a.mp4, detect: {fps: 7}}\n"
        "  b: {source: b.mp4, loop: false, objects: {track: [car]}}\n"
    )
    site = load_config(path)
    a, b = site.cameras["a"], site.cameras["b"]
    assert (a.loop, a.detect.fps, a.detect.pack_frames, a.objects.track) == (True, 7, 2, ["person", "car"])
    assert (b.loop, b.detect.fps, b.objects.track) == (False, 3, ["car"])


def test_a_bad_default_is_reported_once_under_defaults(tmp_path: Path) -> None:
    err = _load(tmp_path, "defaults: {detect: {fps: -1}}\n" + BASE + "      []\n")
    assert "defaults.detect.fps" in str(err) and "greater than 0" in str(err) and "more)" not in str(err)
    err = _load(tmp_path, "defaults: {zones: {}}\n" + BASE + "      []\n")
    assert "defaults.zones: unknown key" in str(err)


def test_every_config_key_is_described() -> None:
    from pipeline.config import field_docs

    docs = field_docs()
    assert len(docs) > 80
    assert [d.path for d in docs if not d.description] == []
    paths = {d.path for d in docs}
    assert {"cameras.NAME.detect.fps", "cameras.NAME.rules[](loitering).min_seconds", "defaults.detect"} <= paths
