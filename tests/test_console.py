"""The operator console in a real browser: Debian's chromium driven by Playwright, against a real `cctv serve`.

Screenshots of the queue, the event view and the camera wall are saved under artifacts/console/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT
from harness import EVENT_WAIT_S, Service, start_service
from playwright.sync_api import Browser, Page, expect, sync_playwright

ARTIFACTS = ROOT / "artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
EVENT_WAIT_MS = int(EVENT_WAIT_S * 1000) + 30_000
SITE_TZ = ZoneInfo("Asia/Seoul")  # the harness's site config leaves the service's default time zone


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_service(tmp_path_factory.mktemp("console"))
    yield service
    service.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """One signed-in browser page (its own context, so its own cookie and localStorage)."""

    def __init__(self, browser: Browser, svc: Service, role: str, path: str = "/", width: int = 1920,
                 height: int = 1080, timezone_id: str = "America/New_York") -> None:
        # The browser runs in a zone other than the site's, so times in the site's zone are the page's doing.
        self.context = browser.new_context(viewport={"width": width, "height": height}, base_url=svc.url,
                                           timezone_id=timezone_id, locale="en-US")
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(path)
        self.page.fill("#token", svc.tokens[role])
        self.page.click("#signin-button")
        expect(self.page.locator("#user")).to_contain_text(f"{role}-1")

    def row(self, event_id: str):  # noqa: ANN201 - a Playwright Locator
        return self.page.locator(f'#queue li[data-id="{event_id}"]')

    def row_ids(self) -> list[str]:
        return self.page.eval_on_selector_all("#queue li", "rows => rows.map(r => r.dataset.id)")

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"


@pytest.fixture
def consoles(browser: Browser, svc: Service) -> Iterator[list[Console]]:
    opened: list[Console] = []
    yield opened
    for console in opened:
        console.close()


def open_console(consoles: list[Console], browser: Browser, svc: Service, role: str, **kwargs: object) -> Console:
    console = Console(browser, svc, role, **kwargs)  # type: ignore[arg-type]
    consoles.append(console)
    return console


def review_state(svc: Service, event_id: str) -> str:
    return svc.get(f"/api/events/{event_id}").json()["review_state"]


def test_bad_token_is_refused(browser: Browser, svc: Service) -> None:
    context = browser.new_context(base_url=svc.url)
    page = context.new_page()
    page.goto("/")
    page.fill("#token", "not-a-token")
    page.click("#signin-button")
    expect(page.locator("#signin-error")).to_contain_text("invalid")
    expect(page.locator("#app")).to_be_hidden()
    assert page.request.get("/api/session").status == 401  # no cookie was set
    context.close()


def test_live_event_plays_and_is_acknowledged_with_the_keyboard(
    browser: Browser, svc: Service, consoles: list[Console]
) -> None:
    console = open_console(consoles, browser, svc, "operator")
    page = console.page
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "live")
    known = console.row_ids()

    # A new event arrives through the server-sent event stream: no reload.
    page.wait_for_function(
        "known => [...document.querySelectorAll('#queue li')].some(li => !known.includes(li.dataset.id))",
        arg=known, timeout=EVENT_WAIT_MS,
    )
    new_id = next(i for i in console.row_ids() if i not in known)
    assert svc.get(f"/api/events/{new_id}").status_code == 200  # a real event of the service

    # Its evidence arrives live too (thumbnail in the row); open an event that has its clip.
    with_clip = page.locator('#queue li[data-has-clip="1"]').first
    expect(with_clip).to_be_visible(timeout=EVENT_WAIT_MS)
    expect(with_clip.locator(".thumb img")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "queue.png")
    event_id = with_clip.get_attribute("data-id")
    assert event_id
    page.locator(f'#queue li[data-id="{event_id}"]').click()  # by id: a new event may take the top meanwhile
    expect(page.locator("#event")).to_have_attribute("data-id", event_id)
    expect(page.locator("#snapshot")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#snapshot').naturalWidth > 0")

    # The clip plays: the video's current time advances; seeking works (Range requests).
    page.wait_for_function("() => document.querySelector('#clip').currentTime > 0.5", timeout=30_000)
    duration = page.evaluate("document.querySelector('#clip').duration")
    assert duration > 1, duration
    page.evaluate("""() => new Promise(resolve => {
        const v = document.querySelector('#clip');
        v.addEventListener('seeked', resolve, {once: true});
        v.currentTime = 0.1;
    })""")
    page.wait_for_function("() => document.querySelector('#clip').currentTime > 0.4", timeout=30_000)
    page.screenshot(path=ARTIFACTS / "event-view.png")

    # Acknowledge with the keyboard shortcut: it leaves the unreviewed queue, and the server has it.
    others = [i for i in console.row_ids() if i != event_id]  # before: an event arriving later is not "next"
    page.keyboard.press("a")
    expect(console.row(event_id)).to_have_count(0)
    expect(page.locator("#action-msg")).to_contain_text("Acknowledged")
    assert review_state(svc, event_id) == "acknowledged"
    if others:  # the console moved on to the next event of the queue
        expect(page.locator("#event")).not_to_have_attribute("data-id", event_id)
    assert event_id not in [e["id"] for e in svc.get("/api/events", params={"review_state": "unreviewed"}).json()["items"]]


def test_next_and_previous_with_the_keyboard(browser: Browser, svc: Service, consoles: list[Console]) -> None:
    page = open_console(consoles, browser, svc, "operator", path="/?review_state=any").page
    expect(page.locator("#queue li").nth(1)).to_be_attached(timeout=EVENT_WAIT_MS)
    ids = page.eval_on_selector_all("#queue li", "rows => rows.map(r => r.dataset.id)")
    page.keyboard.press("j")
    expect(page.locator("#event")).to_have_attribute("data-id", ids[0])
    page.keyboard.press("ArrowDown")
    expect(page.locator("#event")).to_have_attribute("data-id", ids[1])
    expect(page.locator(f'#queue li[data-id="{ids[1]}"]')).to_have_class(re.compile(r"\bselected\b"))
    page.keyboard.press("k")
    expect(page.locator("#event")).to_have_attribute("data-id", ids[0])


def test_viewer_cannot_review(browser: Browser, svc: Service, consoles: list[Console]) -> None:
    page = open_console(consoles, browser, svc, "viewer").page
    first = page.locator("#queue li").first
    expect(first).to_be_visible(timeout=EVENT_WAIT_MS)
    event_id = first.get_attribute("data-id")
    assert event_id
    page.locator(f'#queue li[data-id="{event_id}"]').click()  # by id: a new event may take the top meanwhile
    expect(page.locator("#event")).to_have_attribute("data-id", event_id)
    for action in ("acknowledge", "false_positive", "escalate"):
        expect(page.locator(f'#actions [data-action="{action}"]')).to_be_disabled()
    expect(page.locator("#action-msg")).to_contain_text("viewer")

    page.keyboard.press("a")  # the shortcut does nothing but say why
    expect(page.locator("#action-msg")).to_contain_text("read-only")

    # Forced past the disabled button, the server refuses and the page says so. Enabled and clicked in one
    # script: an update of the open event (it may still be growing) disables the button again.
    page.evaluate(
        "(() => { const b = document.querySelector('#actions [data-action=acknowledge]'); b.disabled = false; b.click(); })()"
    )
    expect(page.locator("#action-msg")).to_contain_text("403")
    expect(page.locator("#action-msg")).to_have_attribute("data-kind", "error")
    assert review_state(svc, event_id) == "unreviewed"
    expect(page.locator(f'#queue li[data-id="{event_id}"]')).to_have_count(1)


def tile_pixels(page: Page, camera: str) -> bytes:
    """A screenshot of a wall tile's video (PNG bytes)."""
    return page.locator(f'.tile[data-camera="{camera}"] .frame').screenshot()


def test_selection_wall_shows_the_selected_camera_live(
    browser: Browser, svc: Service, consoles: list[Console]
) -> None:
    """PETS09 has events (selected, live video with boxes); the broken camera has none: off the wall, listed."""
    page = open_console(consoles, browser, svc, "operator").page
    page.click("#tab-wall")
    pets = page.locator('.tile[data-camera="pets"]')
    expect(pets).to_be_visible(timeout=EVENT_WAIT_MS)  # on the wall once it has had an event
    expect(page.locator('.tile[data-camera="broken"]')).to_have_count(0)
    expect(page.locator("#wall-count")).to_have_text("1 of 2 cameras selected")
    expect(page.locator("#wall-problems-list")).to_contain_text("broken: failed", timeout=60_000)
    expect(pets.locator(".cam-status")).to_have_text("live")
    page.wait_for_function("() => document.querySelector('.tile[data-camera=pets] img').naturalWidth > 0")
    first = tile_pixels(page, "pets")
    page.wait_for_timeout(1500)
    assert tile_pixels(page, "pets") != first  # live video: the frames advance
    # boxes are drawn on the live view: the tracks' green or red outlines are there
    # (looked at once a frame has loaded: the tile's image is between two frames now and then)
    boxes = page.wait_for_function("""() => {
        const img = document.querySelector('.tile[data-camera=pets] img');
        if (!img || !img.complete || img.naturalWidth === 0) return false;
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if ((d[i+1] > 190 && d[i] < 120 && d[i+2] < 120) || (d[i] > 200 && d[i+1] < 80)) n++;
        return n > 200 ? n : false; }""", timeout=15_000).json_value()
    assert boxes > 200, boxes
    page.screenshot(path=ARTIFACTS / "camera-wall.png")

    page.keyboard.press("1")
    page.keyboard.press("p")  # pin it: it stays on the wall, and the pin survives a reload
    expect(pets).to_have_class(re.compile(r"\bpinned\b"))
    page.reload()
    page.click("#tab-wall")
    expect(page.locator('.tile[data-camera="pets"]')).to_have_class(re.compile(r"\bpinned\b"), timeout=30_000)
    page.keyboard.press("1")
    page.keyboard.press("d")  # dismiss: off the wall until its next event
    expect(page.locator('.tile[data-camera="pets"]')).to_have_count(0)
    assert "pets" in page.evaluate("localStorage.getItem('cctv.dismissed')")
    expect(page.locator('.tile[data-camera="pets"]')).to_be_visible(timeout=EVENT_WAIT_MS)  # its next event

    page.click("#topbar .lang-toggle")
    expect(page.locator("#wall-count")).to_have_text("2대 중 1대 선별")
    expect(page.locator("#wall-problems-list")).to_contain_text("장애")
    page.screenshot(path=ARTIFACTS / "camera-wall-ko.png")
    page.click("#topbar .lang-toggle")


def test_korean_mode_shows_no_english_values(browser: Browser, svc: Service, consoles: list[Console]) -> None:
    page = open_console(consoles, browser, svc, "operator", path="/?review_state=any").page
    expect(page.locator("#queue li").first).to_be_visible(timeout=EVENT_WAIT_MS)
    page.click("#topbar .lang-toggle")
    page.locator("#queue li").first.click()
    expect(page.locator("#user")).to_contain_text("운영자")  # the role too
    english = {"person", "intrusion", "line_crossing", "loitering", "crowding", "a_to_b", "b_to_a", "operator"}
    shown = page.eval_on_selector_all("#queue .label, #details dd, #event-title, #user", "els => els.map(e => e.textContent)")
    assert not [text for text in shown if any(word in text.split() for word in english)], shown
    page.screenshot(path=ARTIFACTS / "event-view-ko.png")
    page.click("#topbar .lang-toggle")


def test_language_switch_persists(browser: Browser, svc: Service, consoles: list[Console]) -> None:
    page = open_console(consoles, browser, svc, "operator").page
    expect(page.locator("#queue-heading")).to_have_text("Event queue")
    page.click("#topbar .lang-toggle")
    expect(page.locator("#queue-heading")).to_have_text("이벤트 대기열")
    expect(page.locator('#tab-wall [data-i18n="wall"]')).to_have_text("카메라 월")
    assert page.evaluate("localStorage.getItem('cctv.lang')") == "ko"
    page.reload()  # still signed in (cookie), still Korean (localStorage)
    expect(page.locator("#queue-heading")).to_have_text("이벤트 대기열")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    page.screenshot(path=ARTIFACTS / "queue-ko.png")
    page.click("#topbar .lang-toggle")
    expect(page.locator("#queue-heading")).to_have_text("Event queue")


def test_times_are_in_the_site_time_zone(browser: Browser, svc: Service, consoles: list[Console]) -> None:
    event = svc.wait_for("a finished PETS09 event with evidence", svc.finished_event)
    assert isinstance(event, dict)
    page = open_console(consoles, browser, svc, "operator", path="/?review_state=any").page
    row = page.locator(f'#queue li[data-id="{event["id"]}"]')
    start = datetime.fromtimestamp(event["start"], SITE_TZ)
    expect(row.locator("time")).to_have_text(start.strftime("%H:%M:%S"))
    row.click()
    expect(page.locator("#details .d-start dd")).to_have_text(start.strftime("%Y-%m-%d %H:%M:%S"))
    # The browser itself runs in New York, where the hour differs.
    browser_hour = datetime.fromtimestamp(event["start"], ZoneInfo("America/New_York")).strftime("%H:%M:%S")
    assert browser_hour != start.strftime("%H:%M:%S")


def test_filters_in_the_url_survive_a_reload(browser: Browser, svc: Service, consoles: list[Console]) -> None:
    def unreviewed() -> list[dict[str, object]]:
        return svc.get("/api/events", params={"camera": "pets", "review_state": "unreviewed"}).json()["items"]

    event_id = svc.wait_for("an unreviewed PETS09 event", unreviewed)[0]["id"]  # type: ignore[index]
    assert svc.post(f"/api/events/{event_id}/review", {"action": "false_positive"}).status_code == 200
    page = open_console(consoles, browser, svc, "operator", path="/?camera=pets&review_state=false_positive").page
    expect(page.locator("#f-camera")).to_have_value("pets")
    expect(page.locator("#f-review")).to_have_value("false_positive")
    expect(page.locator(f'#queue li[data-id="{event_id}"]')).to_have_count(1)
    states = page.eval_on_selector_all("#queue li", "rows => rows.map(r => r.dataset.state)")
    assert set(states) == {"false_positive"}, states

    page.select_option("#f-camera", "broken")  # a camera without events: the queue empties
    expect(page).to_have_url(f"{svc.url}/?camera=broken&review_state=false_positive")
    expect(page.locator("#queue li")).to_have_count(0)
    expect(page.locator("#queue-empty")).to_be_visible()
    page.reload()
    expect(page.locator("#f-camera")).to_have_value("broken")
    expect(page.locator("#f-review")).to_have_value("false_positive")
    expect(page.locator("#queue-empty")).to_be_visible()
    expect(page.locator("#queue li")).to_have_count(0)


def test_usable_at_1280x720(browser: Browser, svc: Service, consoles: list[Console]) -> None:
    page = open_console(consoles, browser, svc, "operator", path="/?review_state=any", width=1280, height=720).page
    first = page.locator("#queue li").first
    expect(first).to_be_visible(timeout=EVENT_WAIT_MS)
    first.click()
    expect(page.locator("#event")).to_be_visible()
    for selector in ("#queue", "#filters", "#note", *(f'#actions [data-action="{a}"]' for a in
                                                     ("acknowledge", "false_positive", "escalate"))):
        expect(page.locator(selector)).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("document.querySelector('#event-view').scrollWidth <= document.querySelector('#event-view').clientWidth")
    page.screenshot(path=ARTIFACTS / "event-view-1280x720.png")
    expect(page.locator("#clock")).to_be_in_viewport()
    page.click("#tab-wall")
    expect(page.locator('.tile[data-camera="pets"]')).to_be_in_viewport(timeout=EVENT_WAIT_MS)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=ARTIFACTS / "camera-wall-1280x720.png")
