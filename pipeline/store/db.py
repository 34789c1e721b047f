"""The store's database: engine and sessions for SQLite or PostgreSQL, migrations, cursors.

Every other store module works through one `Database`, which also carries the clock (tests move it)
and the data dir that holds the evidence files.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.orm import sessionmaker

from pipeline.errors import CctvError

MAX_LIMIT = 1000  # the largest page a list query returns
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def encode_cursor(key: list[Any]) -> str:
    """An opaque keyset cursor: the sort key of a page's last row."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def decode_cursor(cursor: str, *kinds: type) -> list[Any]:
    """The sort key in a cursor, one value of each kind (int, float or str) in order; a crafted one is refused."""
    bad = CctvError(f"bad cursor {cursor[:40]!r}: pass the next_cursor of a previous page")
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        raise bad from None
    if not isinstance(key, list) or len(key) != len(kinds):
        raise bad
    for value, kind in zip(key, kinds):
        numeric = kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (numeric and (kind is float or isinstance(value, int)) or kind is str and isinstance(value, str)):
            raise bad
        if isinstance(value, float) and not math.isfinite(value) or isinstance(value, str) and "\x00" in value:
            raise bad
    return key


def driver_message(exc: BaseException) -> str:
    """The first line of what the database driver said about a failure ("" when it said nothing)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else ""


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise CctvError(f"limit must be 1..{MAX_LIMIT}, got {limit}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the API read while the engine writes; SQLite leaves foreign keys off unless asked."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _engine(url: str) -> Engine:
    try:
        # A server's connections may die under the pool (a restart): each is checked before it is used.
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except (ArgumentError, ImportError) as exc:
        raise CctvError(f"cannot use database URL {url!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(connection: Connection) -> Config:
    """Alembic's config built in code, so migrations run from an installed package with no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a fresh database gets every table, an older one the rest)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


def _check_writable(path: Path) -> None:
    """A read-only SQLite file opens and reads, then fails on the first event: refuse it at once instead."""
    for target in (path, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            raise CctvError(f"event database {path} is read-only ({target} cannot be written): fix its permissions")


class Database:
    """An engine, its sessions, the data dir and the clock, shared by the store's parts."""

    def __init__(self, engine: Engine, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.clock = clock
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, target: str | Path, data_dir: str | Path | None, clock: Callable[[], float]) -> Database:
        """A data dir (SQLite `events.db` in it) or a database URL (then `data_dir` holds the evidence), migrated."""
        text = str(target)
        if "://" in text:
            if data_dir is None:
                raise CctvError("a database URL needs a data dir too: evidence files live on disk")
            url, root = text, Path(data_dir)
        else:
            root = Path(data_dir) if data_dir is not None else Path(text)
            Path(text).mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{Path(text).resolve() / 'events.db'}"
        root.mkdir(parents=True, exist_ok=True)
        if url.startswith("sqlite:///"):
            _check_writable(Path(url.removeprefix("sqlite:///")))
        engine = _engine(url)
        try:
            migrate(engine)
        except DatabaseError as exc:  # unreachable, locked, corrupt ("file is not a database"), read-only
            engine.dispose()
            raise CctvError(f"cannot open event database {url.split('@')[-1]}: {driver_message(exc)}") from None
        return cls(engine, root.resolve(), clock)

    def close(self) -> None:
        self.engine.dispose()
