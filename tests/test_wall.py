"""The selection wall with nine cameras, in a real browser: presence selection inside its schedule, a rule outside
its schedule raising nothing, the layout filling the screen with 9, 4 and 1 cameras (screenshots in artifacts/console/).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import cv2
import httpx
import numpy as np
import pytest
from harness import Service, pets_camera, start_service
from playwright.sync_api import Browser, expect
from test_console import ARTIFACTS, Console, browser  # noqa: F401  (the browser fixture)

SITE_TZ = ZoneInfo("Asia/Seoul")
CAMERAS = 9


def window(start_hours: float, end_hours: float) -> dict[str, str]:
    """A schedule from `start_hours` to `end_hours` from now, in the site's time zone (HH:MM, may span midnight)."""
    now = datetime.now(SITE_TZ)
    return {"from": (now + timedelta(hours=start_hours)).strftime("%H:%M"),
            "to": (now + timedelta(hours=end_hours)).strftime("%H:%M")}


@pytest.fixture(scope="module")
def wall_svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Nine PETS09 cameras (2 fps each): selected while people are present, their intrusion rule off until later."""
    later = window(2, 3)
    cameras = {
        f"cam{k}": pets_camera(
            detect={"fps": 2},
            # The default hold (30 s): the nine cameras play the same clip in step, so a moment with nobody
            # sighted drops them all at once, which would change the wall under the keys being pressed.
            selection={"presence": ["person"], "schedule": window(-1, 1)},
            rules=[{"name": "night-intrusion", "type": "intrusion", "zone": "road_west", "schedule": later}],
        )
        for k in range(1, CAMERAS + 1)
    }
    service = start_service(tmp_path_factory.mktemp("wall"), cameras)
    yield service
    service.close()


def test_presence_fills_the_wall_and_a_rule_outside_its_schedule_is_silent(
    browser: Browser, wall_svc: Service  # noqa: F811
) -> None:
    console = Console(browser, wall_svc, "operator")
    page = console.page
    try:
        page.click("#tab-wall")
        expect(page.locator("#wall .tile")).to_have_count(CAMERAS, timeout=90_000)
        expect(page.locator("#wall-count")).to_have_text(f"{CAMERAS} of {CAMERAS} cameras selected")
        assert {t.get_attribute("data-reason") for t in page.locator("#wall .tile").all()} == {"presence"}
        layout = page.evaluate("getComputedStyle(document.querySelector('#wall')).gridTemplateColumns.split(' ').length")
        assert layout == 3  # 3 x 3
        page.wait_for_function("() => [...document.querySelectorAll('#wall .tile img')].every(i => i.naturalWidth > 0)",
                               timeout=60_000)
        page.screenshot(path=ARTIFACTS / "wall-9.png")
        for _ in range(5):  # dismiss five by keyboard: 2 x 2 remain
            page.keyboard.press("1")
            page.keyboard.press("d")
        expect(page.locator("#wall .tile")).to_have_count(4)
        assert page.evaluate("getComputedStyle(document.querySelector('#wall')).gridTemplateColumns.split(' ').length") == 2
        page.wait_for_function("() => [...document.querySelectorAll('#wall .tile img')].every(i => i.naturalWidth > 0)")
        page.screenshot(path=ARTIFACTS / "wall-4.png")
        for _ in range(3):
            page.keyboard.press("1")
            page.keyboard.press("d")
        expect(page.locator("#wall .tile")).to_have_count(1)
        page.wait_for_function("() => document.querySelector('#wall .tile img').naturalWidth > 0")
        page.screenshot(path=ARTIFACTS / "wall-1.png")
        page.reload()  # dismissals survive a reload (no event brings them back)
        page.click("#tab-wall")
        expect(page.locator("#wall .tile")).to_have_count(1, timeout=30_000)
        # The intrusion rule is outside its schedule on every camera: nothing was raised, though people walked in.
        assert wall_svc.get("/api/events", params={"limit": 10}).json()["items"] == []
        shares = [c["selection_share"] for c in wall_svc.get("/api/cameras").json()]
        assert all(0 < share <= 1 for share in shares)
        assert "cctv_camera_selected{camera=\"cam1\"} 1.0" in wall_svc.get("/metrics").text
    finally:
        console.close()


def test_live_views_are_drawn_frames_as_one_jpeg_or_mjpeg(wall_svc: Service) -> None:
    """What the wall polls (one JPEG) and what an external player opens (MJPEG): the camera's frames, scaled."""
    camera = wall_svc.get("/api/cameras/cam2").json()
    view = wall_svc.get(camera["view_url"], params={"width": 320})
    assert view.status_code == 200 and view.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(view.content, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
    assert wall_svc.get(camera["view_url"], params={"width": 50}).status_code == 422
    assert wall_svc.get(camera["view_url"], role=None).status_code == 401
    headers = {"Authorization": f"Bearer {wall_svc.tokens['viewer']}"}
    with httpx.stream("GET", f"{wall_svc.url}{camera['live_url']}", params={"width": 480}, headers=headers,
                      timeout=30) as stream:
        assert stream.headers["content-type"].startswith("multipart/x-mixed-replace")
        body = b""
        for chunk in stream.iter_bytes():
            body += chunk
            if body.count(b"--frame") >= 3:
                break
    parts = [part for part in body.split(b"--frame") if b"\r\n\r\n" in part][:2]
    images = [cv2.imdecode(np.frombuffer(part.split(b"\r\n\r\n", 1)[1], np.uint8), cv2.IMREAD_COLOR) for part in parts]
    assert [image.shape for image in images] == [(360, 480, 3)] * 2
