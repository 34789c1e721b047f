"""`cctv serve` as a subprocess, for the live benchmark and the service tests: start, health, usage, stop;
its event stream read as a console reads it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import psutil

from pipeline.errors import CctvError

HEALTH_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parents[3]


def follow_events(url: str, token: str, received: Callable[[str, dict], None], stop: threading.Event) -> None:
    """Read the service's `/api/events/stream` until `stop`, reconnecting half a second after each loss as a
    console's EventSource does: each message to `received(kind, data)`."""
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        try:
            with httpx.stream("GET", f"{url}/api/events/stream", headers=headers, timeout=None) as reply:
                kind = None
                for line in reply.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        received(kind, json.loads(line[6:]))
        except httpx.HTTPError:
            pass
        stop.wait(0.5)


def free_port() -> int:
    """A TCP port free on loopback now (for the service, and for servers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """`cctv serve` as a subprocess with its output in a log file (a pipe could fill and stall it)."""

    def __init__(
        self, config: Path, port: int, log: Path, data: Path | None = None, args: Sequence[str] = ()
    ) -> None:
        """data: the data dir (default: the config's); the service listens on loopback at `port`; args: more
        `cctv serve` options (a cluster node's --node, say)."""
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self._log = log.open("w", encoding="utf-8")
        cmd = [sys.executable, "-m", "pipeline.cli", "serve", "--config", str(config), *args]
        cmd += ["--port", str(port), "--host", "127.0.0.1"] + (["--data", str(data)] if data is not None else [])
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, text=True)
        self.ps = psutil.Process(self.proc.pid)
        self._children: dict[int, psutil.Process] = {}
        self.ps.cpu_percent(None)
        self.returncode: int | None = None
        self.max_rss_mb: float | None = None  # the kernel's peak, known once it exited

    def output(self) -> str:
        """Everything the service printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 8) -> str:
        text = self.output().strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"

    def check(self) -> None:
        """Raise with the output tail if the service has died."""
        if self.poll() is not None:
            raise CctvError(f"cctv serve exited with code {self.returncode}: {self.tail()}")

    def poll(self) -> int | None:
        """Reap the process with wait4 so its peak RSS (ru_maxrss) is known, not just our samples of it."""
        if self.returncode is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.returncode
                self.max_rss_mb = usage.ru_maxrss / 1024
        return self.returncode

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT_S) -> None:
        """Until `/api/health` answers; raises with the output tail if the service dies or stays silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:  # not listening yet
                pass
            time.sleep(0.3)
        raise CctvError(f"cctv serve did not answer {self.url}/api/health within {timeout:.0f} s: {self.tail()}")

    def usage(self) -> tuple[float, float]:
        """(CPU % of one core since the last call, RSS MB), the process and its children together."""
        try:
            cpu, rss = self.ps.cpu_percent(None), self.ps.memory_info().rss
            kids = self.ps.children(recursive=True)
        except psutil.Error:
            return 0.0, 0.0
        for kid in kids:
            known = self._children.setdefault(kid.pid, kid)
            try:
                cpu += known.cpu_percent(None)
                rss += known.memory_info().rss
            except psutil.Error:
                continue
        return cpu, rss / 2**20

    def cpu_seconds(self) -> float:
        try:
            t = self.ps.cpu_times()
            return t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            return float("nan")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int | None, float]:
        """Send `sig` and wait: (exit code, seconds to exit); killed after STOP_TIMEOUT_S."""
        started = time.monotonic()
        if self.poll() is None:
            self.proc.send_signal(sig)
            while self.poll() is None and time.monotonic() - started < STOP_TIMEOUT_S:
                time.sleep(0.05)
            if self.poll() is None:
                self.proc.kill()
                while self.poll() is None:
                    time.sleep(0.05)
        self._log.close()
        return self.returncode, round(time.monotonic() - started, 2)


def create_token(config: Path, data: Path, role: str = "viewer") -> str:
    from pipeline.serve import open_store, site_with_overrides

    service = site_with_overrides(config, data=str(data)).service
    with open_store(service) as store:
        return store.create_token(f"bench-{role}", role)


def parse_metrics(text: str) -> dict[str, float]:
    """The unlabelled samples of a Prometheus text page that the benchmark needs, by name."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {
        "cctv_detector_inference_seconds_sum",
        "cctv_detector_inference_seconds_count",
        "cctv_detector_queue_depth",
        "cctv_detector_shared_inferences_total",
    }
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in wanted and not s.labels:
                found[s.name] = s.value
    return found
