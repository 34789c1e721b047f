// Console strings in English and Korean. `t(key, vars)` looks a key up in the current language.

const STRINGS = {
  en: {
    title: "CCTV selective monitoring",
    token: "API token",
    signIn: "Sign in",
    signOut: "Sign out",
    queue: "Event queue",
    wall: "Camera wall",
    allCameras: "All cameras",
    allRules: "All rules",
    labelPh: "Label (e.g. person)",
    anyState: "Any state",
    since: "From",
    until: "To",
    clear: "Clear",
    more: "Load more",
    queueEmpty: "Nothing needs attention.",
    pickEvent: "Select an event from the queue (J / K).",
    notePh: "Note (optional) — N",
    acknowledge: "Acknowledge",
    false_positive: "False positive",
    escalate: "Escalate",
    keysHint: "Keys: J / ↓ next, K / ↑ previous, A acknowledge, F false positive, E escalate, N note",
    camera: "Camera",
    rule: "Rule",
    type: "Type",
    label: "Label",
    track: "Track",
    start: "Start",
    end: "End",
    duration: "Duration",
    score: "Score",
    priority: "Priority",
    zone: "Zone",
    line: "Line",
    direction: "Direction",
    count: "Count",
    state: "State",
    id: "Event id",
    open: "OPEN",
    ongoing: "ongoing",
    st_unreviewed: "Unreviewed",
    st_acknowledged: "Acknowledged",
    st_false_positive: "False positive",
    st_escalated: "Escalated",
    cam_starting: "starting",
    cam_live: "live",
    cam_reconnecting: "reconnecting",
    cam_failed: "failed",
    cam_ended: "ended",
    cam_stopped: "stopped",
    clipPending: "Clip not ready yet — the event is still open or its evidence is being written.",
    snapshotPending: "Snapshot not ready yet.",
    noFrame: "No frame yet",
    openEvents: "{n} open event(s)",
    reviewed: "Marked as {state}.",
    reviewing: "Saving…",
    viewerReadOnly: "Signed in as a viewer: read-only, reviews need an operator.",
    forbidden: "Not allowed (403): {detail}",
    failedReq: "Request failed ({status}): {detail}",
    streamLive: "Live",
    streamDown: "Reconnecting…",
    unreachable: "server unreachable",
    streamConnecting: "Connecting…",
    signedInAs: "{name} ({role})",
    fps: "{fps} fps",
    wallCount: "{n} of {m} cameras selected",
    wallEmpty: "No camera needs watching now. Cameras come onto the wall when something happens.",
    wallKeys: "Keys: 1-9 choose a tile, P pin, D dismiss, Enter open its event, S sound",
    analysed: "{fps} fps analysed",
    pinned: "pinned",
    sel_event: "event",
    sel_hold: "just ended",
    sel_presence: "presence",
    sel_pinned: "pinned",
    soundOn: "Sound on",
    soundOff: "Sound off",
    problems: "Not on the wall, needs attention:",
    role_viewer: "viewer",
    role_operator: "operator",
    role_admin: "admin",
    noEvent: "No event for this camera yet.",
  },
  ko: {
    title: "CCTV 선별 관제",
    token: "API 토큰",
    signIn: "로그인",
    signOut: "로그아웃",
    queue: "이벤트 대기열",
    wall: "카메라 월",
    allCameras: "전체 카메라",
    allRules: "전체 규칙",
    labelPh: "객체 (예: person)",
    anyState: "전체 상태",
    since: "시작",
    until: "종료",
    clear: "초기화",
    more: "더 보기",
    queueEmpty: "확인할 이벤트가 없습니다.",
    pickEvent: "대기열에서 이벤트를 선택하세요 (J / K).",
    notePh: "메모 (선택) — N",
    acknowledge: "확인",
    false_positive: "오탐",
    escalate: "상황 전파",
    keysHint: "단축키: J / ↓ 다음, K / ↑ 이전, A 확인, F 오탐, E 상황 전파, N 메모",
    camera: "카메라",
    rule: "규칙",
    type: "유형",
    label: "객체",
    track: "트랙",
    start: "시작",
    end: "종료",
    duration: "지속 시간",
    score: "점수",
    priority: "우선순위",
    zone: "구역",
    line: "선",
    direction: "방향",
    count: "인원",
    state: "상태",
    id: "이벤트 ID",
    open: "진행 중",
    ongoing: "진행 중",
    st_unreviewed: "미확인",
    st_acknowledged: "확인됨",
    st_false_positive: "오탐",
    st_escalated: "전파됨",
    cam_starting: "시작 중",
    cam_live: "정상",
    cam_reconnecting: "재연결 중",
    cam_failed: "장애",
    cam_ended: "종료됨",
    cam_stopped: "정지됨",
    clipPending: "영상이 아직 준비되지 않았습니다 — 이벤트가 진행 중이거나 증거를 저장하는 중입니다.",
    snapshotPending: "스냅샷이 아직 준비되지 않았습니다.",
    noFrame: "영상 없음",
    openEvents: "진행 중 이벤트 {n}건",
    reviewed: "{state}(으)로 처리했습니다.",
    reviewing: "저장 중…",
    viewerReadOnly: "조회 전용 계정입니다: 이벤트 처리는 운영자 권한이 필요합니다.",
    forbidden: "권한 없음 (403): {detail}",
    failedReq: "요청 실패 ({status}): {detail}",
    streamLive: "실시간",
    streamDown: "재연결 중…",
    unreachable: "서버에 연결할 수 없음",
    streamConnecting: "연결 중…",
    signedInAs: "{name} ({role})",
    fps: "{fps} fps",
    wallCount: "{m}대 중 {n}대 선별",
    wallEmpty: "지금 볼 카메라가 없습니다. 상황이 생기면 카메라가 월에 올라옵니다.",
    wallKeys: "단축키: 1-9 타일 선택, P 고정, D 내리기, Enter 이벤트 열기, S 소리",
    analysed: "분석 {fps} fps",
    pinned: "고정",
    sel_event: "이벤트",
    sel_hold: "방금 종료",
    sel_presence: "출현",
    sel_pinned: "고정",
    soundOn: "소리 켜짐",
    soundOff: "소리 꺼짐",
    problems: "월 밖, 확인 필요:",
    role_viewer: "조회자",
    role_operator: "운영자",
    role_admin: "관리자",
    noEvent: "이 카메라의 이벤트가 아직 없습니다.",
  },
};

// Values the engine produces (class names, rule types, directions), shown in the operator's language.
const VALUES = {
  ko: {
    person: "사람", car: "차량", truck: "트럭", bus: "버스", motorcycle: "오토바이", bicycle: "자전거",
    backpack: "배낭", handbag: "핸드백", suitcase: "여행 가방", object: "물체", fire: "화재",
    intrusion: "침입", line_crossing: "선 통과", loitering: "배회", crowding: "군집",
    abandoned_object: "유기", fall: "쓰러짐", fight: "싸움",
    a_to_b: "A → B", b_to_a: "B → A", any: "양방향",
  },
};

// A value from the engine (a label, a rule type, a direction) in the current language; unknown ones as they are.
export function value(text) {
  if (text === null || text === undefined) return text;
  return VALUES[lang]?.[text] ?? text;
}

const KEY = "cctv.lang";
let lang = localStorage.getItem(KEY) === "ko" ? "ko" : "en";

export function getLang() {
  return lang;
}

export function setLang(next) {
  lang = next === "ko" ? "ko" : "en";
  localStorage.setItem(KEY, lang);
}

export function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

// Fill every [data-i18n] element's text and [data-i18n-placeholder] placeholder.
export function applyStatic(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}
