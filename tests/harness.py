"""A real `cctv serve` process for tests: a site config on sample footage, tokens, HTTP helpers, the SSE feed."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from conftest import FOOTAGE, ROOT, cctv

from pipeline.bench.live.process import ServiceProcess, follow_events, free_port

PRE_ROLL, POST_ROLL = 2.0, 1.0
EVENT_WAIT_S = 150.0


def pets_camera(**changes: object) -> dict[str, object]:
    """The PETS09 example camera, looped as a live camera at 5 fps, with `changes` on top."""
    pets = yaml.safe_load((ROOT / "configs" / "pets09.yaml").read_text())["cameras"]["pets"]
    pets.update(source=str(FOOTAGE / "pets09-s2l1.avi"), loop=True, detect={"fps": 5})
    pets.update(changes)
    return pets


def site_config(
    path: Path,
    data: Path,
    port: int,
    cameras: dict[str, object] | None = None,
    extra: dict[str, object] | None = None,
    **service: object,
) -> Path:
    """PETS09 looped as a live camera, plus a camera whose RTSP source refuses connections (or `cameras`);
    `extra`: more top-level keys (camera groups, say)."""
    config = {
        "model": {"path": str(ROOT / "models" / "yolo11n_int8_openvino_model")},
        "service": {
            "data": str(data),
            "port": port,
            "evidence": {"pre_roll": PRE_ROLL, "post_roll": POST_ROLL},
            **service,
        },
        "cameras": cameras or {"pets": pets_camera(), "broken": {"source": "rtsp://127.0.0.1:9/none", "detect": {"fps": 5}}},
        **(extra or {}),
    }
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Service:
    config: Path
    data: Path
    port: int
    tokens: dict[str, str] = field(default_factory=dict)
    proc: ServiceProcess | None = None
    starts: itertools.count[int] = field(default_factory=itertools.count)
    stream: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    args: list[str] = field(default_factory=list)  # more `cctv serve` options (a cluster node's --node)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.config.parent / f"service-{next(self.starts)}.log"
        self.proc = ServiceProcess(self.config, self.port, log, args=self.args)
        self.proc.wait_healthy(60)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int | None, str]:
        """Signal the service and wait for it: (exit code, everything it printed)."""
        assert self.proc is not None
        code, _ = self.proc.stop(sig)
        return code, self.proc.output()

    def close(self) -> None:
        """End of the tests: stop the service gracefully and the event listener for good."""
        self.closed.set()
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    def get(self, path: str, role: str | None = "viewer", **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.get(f"{self.url}{path}", headers=headers | kwargs.pop("headers", {}), timeout=30, **kwargs)

    def post(self, path: str, body: object, role: str = "operator") -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def listen(self) -> None:
        """Collect the server-sent events in the background, as a console would (reconnecting across the
        tests' restarts)."""
        args = (self.url, self.tokens["viewer"], lambda kind, data: self.stream.append((kind, data)), self.closed)
        threading.Thread(target=follow_events, args=args, daemon=True).start()

    def wait_for(self, what: str, check: object, timeout: float = EVENT_WAIT_S) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()  # type: ignore[operator]
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    def finished_event(self) -> dict[str, object] | None:
        items = self.get("/api/events", params={"camera": "pets", "limit": 100}).json()["items"]
        return next((e for e in items if e["clip_url"] and e["end"] is not None), None)


def start_service(
    root: Path,
    cameras: dict[str, object] | None = None,
    extra: dict[str, object] | None = None,
    data: Path | None = None,
    **service: object,
) -> Service:
    """A service on a free port with viewer/operator/admin tokens (names `{role}-1`), started and listening;
    its config and log in `root`, its data in `data` (default root/data)."""
    port, data = free_port(), data or root / "data"
    svc = Service(site_config(root / "site.yaml", data, port, cameras, extra, **service), data, port)
    for role in ("viewer", "operator", "admin"):
        result = cctv("token", "create", "--role", role, "--name", f"{role}-1", "--config", svc.config)
        assert result.returncode == 0, result.stderr
        svc.tokens[role] = result.stdout.strip()
    svc.start()
    svc.listen()
    return svc
