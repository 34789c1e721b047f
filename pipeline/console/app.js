// Operator console: sign-in, the live event queue, the event view with review actions, the camera wall.
// Plain ES module, no build step. All text goes into the page through textContent (never innerHTML).
import { applyStatic, getLang, setLang, t, value } from "./i18n.js";

const $ = (selector) => document.querySelector(selector);
const FILTERS = ["camera", "rule", "label", "review_state", "since", "until"];
const PAGE = 100;
const CAMERA_POLL_MS = 1500;
const TILE_MIN_MS = 200; // at most 5 frames a second per tile

const state = {
  me: null,
  site: null,
  tz: "UTC",
  filters: {},
  events: new Map(), // id -> EventOut, every known event that matches the filters
  rows: new Map(), // id -> <li> of the queue
  tiles: new Map(), // camera id -> tile element
  cameras: [],
  nextCursor: null,
  current: null, // the EventOut in the event view
  view: "events",
  stream: null,
  streamState: "connecting",
};
window.cctv = { state, review: (action) => review(action) }; // for debugging from the browser's console

// ---- HTTP -------------------------------------------------------------------------------------------------

async function api(path, { method = "GET", body } = {}) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, data: null }; // the server is unreachable: callers show it or try again
  }
  let data = null;
  if (response.status !== 204) data = await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, data };
}

function detailOf(result) {
  const detail = result.data?.detail;
  if (typeof detail === "string") return detail;
  if (detail) return JSON.stringify(detail);
  return result.status ? `HTTP ${result.status}` : t("unreachable");
}

// ---- Time, always in the site's time zone -------------------------------------------------------------------

let formatter = null;
function parts(epoch) {
  if (!formatter || formatter.resolvedOptions().timeZone !== state.tz) {
    formatter = new Intl.DateTimeFormat("en-CA", {
      timeZone: state.tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
  }
  return Object.fromEntries(formatter.formatToParts(new Date(epoch * 1000)).map((p) => [p.type, p.value]));
}
const fmtTime = (epoch) => { const p = parts(epoch); return `${p.hour}:${p.minute}:${p.second}`; };
const fmtDateTime = (epoch) => { const p = parts(epoch); return `${p.year}-${p.month}-${p.day} ${fmtTime(epoch)}`; };

// "YYYY-MM-DDTHH:MM" meant in the site's zone -> epoch seconds (two corrections handle the zone's offset).
function zonedToEpoch(text) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text || "");
  if (!match) return null;
  const [y, mo, d, h, mi] = match.slice(1).map(Number);
  const wanted = Date.UTC(y, mo - 1, d, h, mi) / 1000;
  let guess = wanted;
  for (let i = 0; i < 2; i += 1) {
    const p = parts(guess);
    guess += wanted - Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) / 1000;
  }
  return guess;
}

function fmtDuration(event) {
  const seconds = Math.max(0, (event.end ?? Date.now() / 1000) - event.start);
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  const m = Math.floor(seconds / 60);
  const s = String(Math.floor(seconds % 60)).padStart(2, "0");
  return m < 60 ? `${m}:${s}` : `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}`;
}

const prioClass = (p) => `p${Math.max(0, Math.min(3, p | 0))}`;
const stateText = (reviewState) => t(`st_${reviewState}`);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// ---- Filters, kept in the URL so a search survives a reload -------------------------------------------------

function readFilters() {
  const params = new URLSearchParams(location.search);
  const filters = {};
  for (const key of FILTERS) filters[key] = params.get(key) ?? "";
  // The queue shows unreviewed events unless the URL says otherwise ("any" = every state).
  if (!params.has("review_state")) filters.review_state = "unreviewed";
  if (filters.review_state === "any") filters.review_state = "";
  return filters;
}

function writeFilters() {
  const params = new URLSearchParams();
  for (const key of FILTERS) {
    const value = state.filters[key];
    if (key === "review_state") {
      if (value !== "unreviewed") params.set(key, value || "any");
    } else if (value) params.set(key, value);
  }
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

const controls = {
  camera: "#f-camera", rule: "#f-rule", label: "#f-label", review_state: "#f-review", since: "#f-since", until: "#f-until",
};

function filtersToControls() {
  for (const [key, selector] of Object.entries(controls)) $(selector).value = state.filters[key] ?? "";
}

function controlsToFilters() {
  for (const [key, selector] of Object.entries(controls)) state.filters[key] = $(selector).value.trim();
  writeFilters();
  loadQueue();
}

function apiQuery(cursor) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  const f = state.filters;
  for (const key of ["camera", "rule", "label", "review_state"]) if (f[key]) params.set(key, f[key]);
  const since = zonedToEpoch(f.since);
  const until = zonedToEpoch(f.until);
  if (since !== null) params.set("since", String(since));
  if (until !== null) params.set("until", String(until));
  if (cursor) params.set("cursor", cursor);
  return params.toString();
}

function matches(event) {
  const f = state.filters;
  if (f.camera && event.camera !== f.camera) return false;
  if (f.rule && event.rule !== f.rule) return false;
  if (f.label && event.label !== f.label) return false;
  if (f.review_state && event.review_state !== f.review_state) return false;
  const since = zonedToEpoch(f.since);
  const until = zonedToEpoch(f.until);
  if (since !== null && event.start < since) return false;
  if (until !== null && event.start >= until) return false;
  return true;
}

// ---- The queue ---------------------------------------------------------------------------------------------

// Most urgent first: the rule's priority (higher first), then the newest start first within one priority,
// so a fresh alarm is never buried under old ones of the same rule.
function sortedEvents() {
  return [...state.events.values()].sort((a, b) => b.priority - a.priority || b.start - a.start);
}

async function loadQueue(more = false) {
  const result = await api(`/api/events?${apiQuery(more ? state.nextCursor : null)}`);
  if (!result.ok) {
    if (result.status === 401) return showSignIn();
    return showMessage(t("failedReq", { status: result.status, detail: detailOf(result) }), "error");
  }
  if (!more) state.events.clear();
  for (const event of result.data.items) state.events.set(event.id, event);
  state.nextCursor = result.data.next_cursor;
  renderQueue();
}

function fillRow(li, event) {
  li.dataset.state = event.review_state;
  li.dataset.open = event.end === null ? "1" : "0";
  li.dataset.hasClip = event.clip_url ? "1" : "0";
  li.className = `row ${prioClass(event.priority)}${event.id === state.current?.id ? " selected" : ""}`;
  const thumb = li.querySelector(".thumb");
  const img = thumb.querySelector("img");
  if (event.thumbnail_url && img.getAttribute("src") !== event.thumbnail_url) img.src = event.thumbnail_url;
  img.hidden = !event.thumbnail_url;
  thumb.querySelector(".live").hidden = event.end !== null;
  thumb.querySelector(".live").textContent = t("open");
  li.querySelector(".cam").textContent = event.camera;
  li.querySelector(".rule").textContent = event.rule;
  li.querySelector(".label").textContent = value(event.label ?? event.type);
  li.querySelector("time").textContent = fmtTime(event.start);
  li.querySelector("time").dateTime = new Date(event.start * 1000).toISOString();
  li.querySelector(".dur").textContent = fmtDuration(event);
  li.querySelector(".score").textContent = event.score.toFixed(2);
  li.querySelector(".state").textContent = stateText(event.review_state);
}

function makeRow(event) {
  const li = el("li");
  li.dataset.id = event.id;
  const thumb = el("div", "thumb");
  const img = el("img");
  img.alt = "";
  img.loading = "lazy";
  thumb.append(img, el("span", "live"));
  const main = el("div", "row-main");
  const top = el("div", "row-top");
  top.append(el("span", "cam"), el("span", "rule"), el("span", "label"));
  const bottom = el("div", "row-bottom");
  bottom.append(el("time"), el("span", "dur"), el("span", "score"), el("span", "state"));
  main.append(top, bottom);
  li.append(thumb, main);
  li.addEventListener("click", () => select(event.id));
  return li;
}

function renderQueue() {
  const list = $("#queue");
  const events = sortedEvents();
  const keep = new Set(events.map((e) => e.id));
  for (const [id, li] of state.rows) {
    if (!keep.has(id)) {
      li.remove();
      state.rows.delete(id);
    }
  }
  events.forEach((event, index) => {
    let li = state.rows.get(event.id);
    if (!li) {
      li = makeRow(event);
      state.rows.set(event.id, li);
    }
    fillRow(li, event);
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] ?? null); // moves, never reloads
  });
  $("#queue-count").textContent = String(events.length);
  $("#queue-empty").hidden = events.length > 0;
  $("#more").hidden = !state.nextCursor;
}

// An event from the stream (or a review answer): into the queue if it matches the filters, out if not.
function upsert(event) {
  if (matches(event)) state.events.set(event.id, event);
  else state.events.delete(event.id);
  renderQueue();
  if (state.current?.id === event.id) showEvent(event);
}

function move(step) {
  const events = sortedEvents();
  if (!events.length) return;
  const index = events.findIndex((e) => e.id === state.current?.id);
  const next = index < 0 ? 0 : Math.max(0, Math.min(events.length - 1, index + step));
  select(events[next].id);
}

function select(id) {
  const event = state.events.get(id);
  if (!event) return;
  if (state.current?.id !== id) showMessage("");
  showEvent(event);
  for (const [rowId, li] of state.rows) li.classList.toggle("selected", rowId === id);
  state.rows.get(id)?.scrollIntoView({ block: "nearest" });
}

// ---- The event view ----------------------------------------------------------------------------------------

function showEvent(event) {
  const changed = state.current?.id !== event.id;
  state.current = event;
  $("#event-none").hidden = true;
  $("#event").hidden = false;
  $("#event").dataset.id = event.id;
  $("#event").dataset.state = event.review_state;
  $("#event").className = prioClass(event.priority);

  const video = $("#clip");
  if (event.clip_url) {
    if (video.getAttribute("src") !== event.clip_url) {
      video.src = event.clip_url;
      video.play().catch(() => {}); // muted autoplay; the operator can still use the controls
    }
  } else if (video.hasAttribute("src")) {
    video.removeAttribute("src");
    video.load();
  }
  video.hidden = !event.clip_url;
  // While the event is open there is no clip yet: show the camera's newest frame (refreshed with the wall).
  const live = !event.clip_url && event.end === null;
  $("#live-frame").hidden = !live;
  if (live && changed) refreshCurrentFrame();
  $("#clip-pending").hidden = Boolean(event.clip_url) || live;
  $("#clip-pending").textContent = t(event.interrupted ? "clipInterrupted" : "clipPending");

  const snapshot = $("#snapshot");
  if (event.snapshot_url && snapshot.getAttribute("src") !== event.snapshot_url) snapshot.src = event.snapshot_url;
  snapshot.hidden = !event.snapshot_url;
  $("#snapshot-pending").hidden = Boolean(event.snapshot_url);
  $("#snapshot-pending").textContent = t("snapshotPending");

  $("#event-title").textContent = `${event.rule} · ${event.camera}${event.label ? ` · ${value(event.label)}` : ""}`;
  renderDetails(event);
  for (const button of document.querySelectorAll("#actions .act")) button.disabled = !canReview();
  $("#note").disabled = !canReview();
  if (changed) $("#note").value = "";
  // Only when another event is shown: an update of the open event must not wipe the answer to the last action.
  if (changed && !canReview()) showMessage(t("viewerReadOnly"), "info");
}

function renderDetails(event) {
  const rows = [
    ["state", stateText(event.review_state), `state-${event.review_state}`],
    ["start", fmtDateTime(event.start), "start"],
    ["end", event.end === null ? t("ongoing") : fmtDateTime(event.end), "end"],
    ["duration", fmtDuration(event), "duration"],
    ["score", event.score.toFixed(2)],
    ["priority", event.priority],
    ["type", value(event.type)],
    ["label", value(event.label)],
    ["track", event.track_id],
    ["zone", event.zone],
    ["line", event.line],
    ["direction", value(event.direction)],
    ["count", event.count],
    ["id", event.id],
  ];
  const dl = $("#details");
  dl.replaceChildren();
  for (const [key, value, cls] of rows) {
    if (value === null || value === undefined) continue;
    const wrap = el("div", cls ? `d-${cls}` : `d-${key}`);
    wrap.append(el("dt", null, t(key)), el("dd", null, value));
    dl.append(wrap);
  }
}

const canReview = () => state.me && state.me.role !== "viewer";
const whoText = (me) => t("signedInAs", { name: me.name, role: t(`role_${me.role}`) });

function showMessage(text, kind = "info") {
  const msg = $("#action-msg");
  msg.textContent = text;
  msg.dataset.kind = kind;
}

async function review(action) {
  const event = state.current;
  if (!event) return;
  const order = sortedEvents().map((e) => e.id);
  const position = order.indexOf(event.id);
  const note = $("#note").value.trim();
  showMessage(t("reviewing"));
  const result = await api(`/api/events/${encodeURIComponent(event.id)}/review`, {
    method: "POST",
    body: { action, note: note || null },
  });
  if (result.status === 403) return showMessage(t("forbidden", { detail: detailOf(result) }), "error");
  if (result.status === 401) return showSignIn();
  if (!result.ok) return showMessage(t("failedReq", { status: result.status, detail: detailOf(result) }), "error");
  const updated = { ...event, review_state: result.data.review_state };
  upsert(updated);
  // Work through the queue: go on to the event that followed this one (or the one before, at the end).
  const remaining = sortedEvents();
  if (!state.events.has(event.id) && remaining.length) {
    const nextId = order.slice(position + 1).find((id) => state.events.has(id)) ?? remaining.at(-1).id;
    select(nextId);
  }
  showMessage(t("reviewed", { state: stateText(result.data.review_state) }), "ok");
}

// ---- The selection wall: live video of the cameras that need watching, and only those ------------------------

const PINS = "cctv.pins";
const DISMISSED = "cctv.dismissed";
const SOUND = "cctv.sound";
const FRESH_MS = 5000; // a camera that has just come onto the wall stays highlighted this long
const load = (key, fallback) => { try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; } };
state.pins = new Set(load(PINS, []));
state.dismissed = new Map(Object.entries(load(DISMISSED, {}))); // camera -> when the operator took it off (epoch s)
state.sound = load(SOUND, false);
state.onWall = new Set(); // cameras shown on the last render
state.focus = null; // the tile the keys act on

function saveWallChoices() {
  localStorage.setItem(PINS, JSON.stringify([...state.pins]));
  localStorage.setItem(DISMISSED, JSON.stringify(Object.fromEntries(state.dismissed)));
  localStorage.setItem(SOUND, JSON.stringify(state.sound));
}

async function pollCameras() {
  const result = await api("/api/cameras");
  if (result.ok) {
    state.cameras = result.data;
    renderWall();
    refreshCurrentFrame();
  }
}

function refreshCurrentFrame() {
  const event = state.current;
  if (!event || event.clip_url || event.end !== null || state.view !== "events") return;
  refreshFrame($("#clip-pane"), `/api/cameras/${encodeURIComponent(event.camera)}/latest.jpg`);
}

// The camera's most urgent open event (or its newest event): what its tile is about, and what Enter opens.
function eventOf(cameraId) {
  const mine = [...state.events.values()].filter((e) => e.camera === cameraId);
  return mine.sort((a, b) => (a.end === null) - (b.end === null) || a.priority - b.priority || a.start - b.start).at(-1);
}

function wallCameras() {
  const shown = state.cameras.filter((c) => state.pins.has(c.id) || (c.selected && !state.dismissed.has(c.id)));
  const urgency = (c) => eventOf(c.id)?.priority ?? -1;
  return shown.sort((a, b) => urgency(b) - urgency(a) || (b.selected_since ?? 0) - (a.selected_since ?? 0));
}

function beep() {
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.15);
  } catch { /* no audio device */ }
}

function makeTile(camera) {
  const tile = el("div", "tile");
  tile.dataset.camera = camera.id;
  tile.tabIndex = 0;
  const bar = el("div", "tile-bar");
  bar.append(el("span", "tile-key"), el("span", "cam-name", camera.id), el("span", "cam-rule"), el("span", "cam-status"),
    el("span", "cam-extra"));
  const frame = el("div", "frame");
  const img = el("img");
  img.alt = camera.id;
  frame.append(img, el("span", "noframe"));
  tile.append(frame, bar, el("div", "cam-error"));
  tile.addEventListener("click", () => focusTile(camera.id));
  tile.addEventListener("dblclick", () => openCameraEvent(camera.id));
  return tile;
}

function renderWall() {
  const wall = $("#wall");
  const cameras = wallCameras();
  const now = Date.now();
  const live = state.view === "wall";
  const shown = new Set(cameras.map((c) => c.id));
  for (const [id, tile] of state.tiles) {
    if (!shown.has(id) || !live) {
      tile.remove();
      if (!shown.has(id)) state.tiles.delete(id);
    }
  }
  for (const camera of cameras) {
    if (!state.onWall.has(camera.id) && state.onWall.size + state.tiles.size > 0) {
      state.fresh = { ...(state.fresh ?? {}), [camera.id]: now }; // newly selected
      if (state.sound) beep();
    }
  }
  state.onWall = shown;
  const columns = Math.max(1, Math.ceil(Math.sqrt(cameras.length)));
  wall.style.setProperty("--cols", String(columns));
  wall.style.setProperty("--rows", String(Math.max(1, Math.ceil(cameras.length / columns))));
  if (!live) return updateWallBadge(cameras);
  cameras.forEach((camera, index) => {
    let tile = state.tiles.get(camera.id);
    if (!tile) {
      tile = makeTile(camera);
      state.tiles.set(camera.id, tile);
    }
    const width = Math.min(1280, Math.round(wall.clientWidth / columns));
    tile.dataset.url = `${camera.view_url}?width=${Math.max(320, width - width % 32)}`;
    tile.dataset.period = String(Math.max(TILE_MIN_MS, 1000 / (camera.fps_in || 5)));
    const event = eventOf(camera.id);
    const reason = state.pins.has(camera.id) && !camera.selected ? "pinned" : camera.selection_reason;
    tile.dataset.status = camera.status;
    tile.dataset.reason = reason || "";
    tile.classList.toggle("active", camera.open_events > 0);
    tile.classList.toggle("pinned", state.pins.has(camera.id));
    tile.classList.toggle("fresh", now - (state.fresh?.[camera.id] ?? 0) < FRESH_MS);
    tile.classList.toggle("focus", state.focus === camera.id);
    tile.querySelector(".tile-key").textContent = index < 9 ? String(index + 1) : "";
    tile.querySelector(".cam-rule").textContent = event && event.end === null ? `${event.rule} · ${value(event.label ?? event.type)}` : "";
    const status = tile.querySelector(".cam-status");
    status.textContent = t(`cam_${camera.status}`);
    status.className = `cam-status status-${camera.status}`;
    const extra = [t("analysed", { fps: camera.fps_analysed.toFixed(1) })];
    if (reason) extra.push(t(`sel_${reason}`));
    tile.querySelector(".cam-extra").textContent = extra.join(" · ");
    tile.querySelector(".cam-error").textContent = camera.status === "live" ? "" : camera.error ?? "";
    tile.querySelector(".noframe").textContent = t("noFrame");
    if (wall.children[index] !== tile) wall.insertBefore(tile, wall.children[index] ?? null);
  });
  $("#wall-empty").hidden = cameras.length > 0;
  const problems = state.cameras.filter((c) => !shown.has(c.id) && ["failed", "reconnecting", "stalled", "unassigned"].includes(c.status));
  $("#wall-problems").hidden = problems.length === 0;
  $("#wall-problems-list").textContent = problems.map((c) => `${c.id}: ${t(`cam_${c.status}`)}${c.error ? ` (${c.error})` : ""}`).join(" · ");
  updateWallBadge(cameras);
}

function updateWallBadge(cameras) {
  const text = t("wallCount", { n: cameras.length, m: state.cameras.length });
  $("#wall-count").textContent = text;
  const badge = $("#wall-alert");
  badge.textContent = String(cameras.length);
  badge.hidden = cameras.length === 0;
  $("#sound").textContent = t(state.sound ? "soundOn" : "soundOff");
}

function focusTile(cameraId) {
  state.focus = cameraId;
  renderWall();
}

function openCameraEvent(cameraId) {
  const event = eventOf(cameraId);
  setView("events");
  if (event) select(event.id);
  else showMessage(t("noEvent"), "info");
}

function wallKey(key) {
  const cameras = wallCameras();
  if (/^[1-9]$/.test(key)) {
    const camera = cameras[Number(key) - 1];
    if (camera) focusTile(camera.id);
    return true;
  }
  const focus = state.focus && state.cameras.find((c) => c.id === state.focus);
  if (key === "s") {
    state.sound = !state.sound;
  } else if (!focus) {
    return false;
  } else if (key === "p") {
    if (state.pins.has(focus.id)) state.pins.delete(focus.id);
    else state.pins.add(focus.id);
  } else if (key === "d") {
    state.pins.delete(focus.id);
    state.dismissed.set(focus.id, Date.now() / 1000);
    state.focus = null;
  } else if (key === "Enter") {
    openCameraEvent(focus.id);
    return true;
  } else {
    return false;
  }
  saveWallChoices();
  renderWall();
  return true;
}

// A dismissed camera comes back with its next event.
function undismiss(event) {
  const since = state.dismissed.get(event.camera);
  if (since !== undefined && event.start > since) {
    state.dismissed.delete(event.camera);
    saveWallChoices();
  }
}

// Fetch the newest frame as a blob and swap it in when it has arrived, so tiles never flash empty.
async function refreshFrame(holder, url) {
  if (holder.dataset.loading === "1") return;
  holder.dataset.loading = "1";
  try {
    const response = await fetch(`${url}${url.includes("?") ? "&" : "?"}t=${Date.now()}`, { credentials: "same-origin" });
    if (response.ok) {
      const img = holder.querySelector("img");
      const old = img.src;
      img.src = URL.createObjectURL(await response.blob());
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    }
  } catch {
    /* unreachable for a moment: the next poll tries again, and the camera poll shows the outage */
  } finally {
    holder.dataset.loading = "0";
  }
}

// Each tile on the wall polls its camera's drawn frame at the camera's sampled rate. Polling, not an MJPEG stream
// per tile: a browser keeps six connections to a server, and a wall of nine streams would hold them all.
function refreshTiles() {
  if (state.view !== "wall") return;
  const now = Date.now();
  for (const tile of state.tiles.values()) {
    if (!tile.isConnected || !tile.dataset.url || now - (tile.fetchedAt ?? 0) < Number(tile.dataset.period)) continue;
    tile.fetchedAt = now;
    refreshFrame(tile.querySelector(".frame"), tile.dataset.url);
  }
}

// ---- Live stream -------------------------------------------------------------------------------------------

function setStreamState(value) {
  state.streamState = value;
  const pill = $("#stream-state");
  pill.dataset.state = value;
  pill.textContent = t({ live: "streamLive", down: "streamDown", connecting: "streamConnecting" }[value]);
}

function connectStream() {
  let opened = false;
  const source = new EventSource("/api/events/stream");
  state.stream = source;
  source.onopen = () => {
    if (opened) loadQueue(); // reconnected: catch up on what the stream missed
    opened = true;
    setStreamState("live");
  };
  source.onerror = () => {
    setStreamState("down");
    if (source.readyState === EventSource.CLOSED) {
      // The server refused (signed out, token revoked) or went away: check the session, then try again.
      setTimeout(async () => {
        if ((await api("/api/session")).ok) connectStream();
        else showSignIn();
      }, 3000);
    }
  };
  for (const kind of ["start", "update", "end", "evidence", "review"]) {
    source.addEventListener(kind, (message) => {
      const event = JSON.parse(message.data);
      if (kind === "start") undismiss(event);
      upsert(event);
    });
  }
}

// ---- Views, language, keyboard, sign-in ----------------------------------------------------------------------

function setView(view) {
  state.view = view;
  $("#events-view").hidden = view !== "events";
  $("#wall-view").hidden = view !== "wall";
  for (const tab of document.querySelectorAll("#tabs [role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  }
  if (view === "wall") renderWall();
}

function rerender() {
  applyStatic();
  for (const [id, li] of state.rows) fillRow(li, state.events.get(id));
  if (state.current) showEvent(state.current);
  renderWall();
  setStreamState(state.streamState);
  if (state.me) $("#user").textContent = whoText(state.me);
}

function tick() {
  const now = Date.now() / 1000;
  if (state.site) $("#clock").textContent = `${fmtDateTime(now)} ${state.tz}`;
  for (const [id, li] of state.rows) {
    const event = state.events.get(id);
    if (event && event.end === null) li.querySelector(".dur").textContent = fmtDuration(event);
  }
  if (state.current && state.current.end === null) renderDetails(state.current);
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || !state.me) return;
  const target = e.target;
  if (target.matches?.("input, select, textarea")) {
    if (e.key === "Escape") target.blur();
    return;
  }
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const actions = { a: "acknowledge", f: "false_positive", e: "escalate" };
  if (state.view === "wall" && wallKey(key)) {
    e.preventDefault();
    return;
  }
  if (key === "j" || key === "ArrowDown") move(1);
  else if (key === "k" || key === "ArrowUp") move(-1);
  else if (actions[key] && state.view === "events" && state.current) {
    if (canReview()) review(actions[key]);
    else showMessage(t("viewerReadOnly"), "error");
  } else if (key === "n" && canReview()) $("#note").focus();
  else if (key === "w") setView(state.view === "wall" ? "events" : "wall");
  else return;
  e.preventDefault();
}

function showSignIn() {
  $("#app").hidden = true;
  $("#signin").hidden = false;
  $("#token").focus();
}

async function start(me) {
  state.me = me;
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#user").textContent = whoText(me);
  document.body.dataset.role = me.role;
  const site = await api("/api/site");
  if (site.ok) {
    state.site = site.data;
    state.tz = site.data.timezone;
    for (const camera of site.data.cameras) $("#f-camera").append(el("option", null, camera));
    const rules = Object.entries(site.data.rules).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    for (const [rule] of rules) $("#f-rule").append(el("option", null, rule));
  }
  state.filters = readFilters();
  filtersToControls();
  await loadQueue();
  connectStream();
  pollCameras();
  setInterval(pollCameras, CAMERA_POLL_MS);
  setInterval(tick, 1000);
  setInterval(refreshTiles, TILE_MIN_MS / 2);
  tick();
}

async function signIn(e) {
  e.preventDefault();
  const result = await api("/api/session", { method: "POST", body: { token: $("#token").value.trim() } });
  if (!result.ok) {
    $("#signin-error").textContent = detailOf(result);
    return;
  }
  $("#token").value = "";
  $("#signin-error").textContent = "";
  await start(result.data);
}

async function init() {
  applyStatic();
  setStreamState("connecting");
  for (const button of document.querySelectorAll(".lang-toggle")) {
    button.addEventListener("click", () => {
      setLang(getLang() === "ko" ? "en" : "ko");
      rerender();
    });
  }
  $("#signin-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", async () => {
    await api("/api/session", { method: "DELETE" });
    location.reload();
  });
  $("#filters").addEventListener("change", controlsToFilters);
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  $("#f-clear").addEventListener("click", () => {
    state.filters = { review_state: "unreviewed" };
    filtersToControls();
    controlsToFilters();
  });
  $("#more").addEventListener("click", () => loadQueue(true));
  $("#sound").addEventListener("click", () => wallKey("s"));
  for (const button of document.querySelectorAll("#actions .act")) {
    button.addEventListener("click", () => review(button.dataset.action));
  }
  $("#note").addEventListener("keydown", (e) => {
    if (e.key === "Enter") $("#note").blur();
  });
  for (const tab of document.querySelectorAll("#tabs [role=tab]")) {
    tab.addEventListener("click", () => setView(tab.dataset.view));
  }
  document.addEventListener("keydown", onKey);
  const session = await api("/api/session");
  if (session.ok) await start(session.data);
  else showSignIn();
}

init();
