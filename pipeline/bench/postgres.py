"""A throwaway PostgreSQL server from the Debian binaries, for the tests and for benchmarks that need one."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

from pipeline.bench.live.process import free_port
from pipeline.errors import CctvError


def _pg_bin() -> Path:
    """Directory of initdb/pg_ctl: $PG_BIN, else the newest Debian install, else PATH."""
    candidates = [
        os.environ.get("PG_BIN", ""),
        *sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[::-1],
    ]
    on_path = shutil.which("initdb")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    for directory in filter(None, candidates):
        if (Path(directory) / "initdb").is_file() and (Path(directory) / "pg_ctl").is_file():
            return Path(directory)
    raise CctvError("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql, or set PG_BIN")


class PgCluster:
    """A throwaway PostgreSQL cluster (trust auth, loopback only) that can be stopped and started again.

    Its directory is made with mkdtemp, not tmp_path: pytest's private temp root is closed to `postgres`.
    """

    def __init__(self, max_connections: int = 100) -> None:
        """max_connections: the server's (each cluster node holds a pool of connections and a listener)."""
        self.max_connections = max_connections
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="cctv-pg-"))
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            os.chmod(self.root, 0o700)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self.data, self.port = self.root / "data", free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"  # the base URL, without a database
        self._run("initdb", "-D", self.data, "--auth=trust", "-U", "postgres")
        self.start()

    def _run(self, tool: str, *args: object) -> None:
        cmd = [*self.as_postgres, str(self.bin / tool), *map(str, args)]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode:
            raise CctvError(f"{tool} failed: {(done.stderr.strip() or done.stdout.strip()).splitlines()[-1]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections={self.max_connections}"
        self._run("pg_ctl", "-D", self.data, "-l", self.root / "log", "-w", "-o", options, "start")

    def stop(self) -> None:
        """A real outage: the server shuts down and drops every connection."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> str:
        admin = create_engine(f"{self.url}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        return f"{self.url}/{name}"

    def pids(self) -> list[int]:
        """The server's processes (postmaster and backends), for their CPU time."""
        import psutil

        try:
            master = psutil.Process(int((self.data / "postmaster.pid").read_text().split()[0]))
            return [master.pid, *(child.pid for child in master.children(recursive=True))]
        except (OSError, ValueError, psutil.Error):
            return []

    def remove(self) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(self.root)
