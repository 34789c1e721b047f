"""API tokens: issued once in plain text, kept as SHA-256 hashes, with a role, an optional expiry and an
optional camera scope (cameras and camera groups of the site config; a scoped token sees nothing else)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, replace
from typing import Literal, cast

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from pipeline.errors import CctvError
from pipeline.store.audit import add_entry
from pipeline.store.db import Database
from pipeline.store.models import TokenRow

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")  # each role may do what the ones before it may
TokenState = Literal["active", "expired", "revoked"]
TOKEN_CACHE_S = 5.0
TOKEN_CACHE_SIZE = 10_000
OUTAGE_TOKEN_S = 900.0  # how long a looked-up token outlives its lookup while the database is down


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """Who a live token belongs to and what it may see (cameras and groups both None: every camera)."""

    name: str
    role: Role
    cameras: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as `cctv token list` shows it (never the token itself)."""

    id: int
    info: TokenInfo
    created_at: float
    revoked: bool

    def state(self, now: float) -> TokenState:
        """Whether `verify_token` takes it at `now`, and if not why (a revoked token stays revoked once expired)."""
        return "revoked" if self.revoked else "expired" if self.info.expired(now) else "active"


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(row.name, cast(Role, row.role), _tuple(row.cameras), _tuple(row.groups), row.expires_at)


def _tuple(names: list[str] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(names)


def _list(names: tuple[str, ...] | None) -> list[str] | None:
    return None if names is None else list(names)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, TokenInfo | None]] = {}

    def create_token(
        self,
        name: str,
        role: str,
        expires_in: float | None = None,
        cameras: list[str] | None = None,
        groups: list[str] | None = None,
    ) -> str:
        """Issue a bearer token; the plain token is returned once and only its hash is stored.

        cameras, groups: limit it to these cameras and camera groups (both None: every camera).
        """
        if role not in ROLES:
            raise CctvError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        expires_at = None if expires_in is None else self.db.clock() + expires_in
        info = TokenInfo(name, cast(Role, role), _tuple(cameras), _tuple(groups), expires_at)
        detail = {"name": name, "role": role, "expires_at": expires_at, "cameras": cameras, "groups": groups}
        return self._issue(info, "tokens", "token.create", detail)

    def create_session(self, signed_in: TokenInfo, hours: float, source: str | None = None) -> str:
        """A console session for a verified token: a token of its own (same name, role and scope) that
        expires within `hours` (or with the token it came from) and is revoked at sign-out, so the cookie
        never holds the long-lived API token. The sign-in is audited with where it came from."""
        expires_at = self.db.clock() + hours * 3600
        if signed_in.expires_at is not None:
            expires_at = min(expires_at, signed_in.expires_at)
        info = replace(signed_in, expires_at=expires_at)
        return self._issue(info, signed_in.name, "sign_in", {"expires_at": expires_at}, source)

    def _issue(
        self, info: TokenInfo, actor: str, action: str, detail: dict[str, object], source: str | None = None
    ) -> str:
        """Store a new token's hash for `info`, audited as `action`; the plain token is returned once."""
        token = secrets.token_urlsafe(32)
        with self.db.sessions.begin() as session:
            session.add(TokenRow(
                token_hash=_token_hash(token), name=info.name, role=info.role, created_at=self.db.clock(),
                expires_at=info.expires_at, cameras=_list(info.cameras), groups=_list(info.groups),
            ))
            add_entry(self.db, session, actor, action, None, detail, source=source)
        return token

    def end_session(self, token: str, source: str | None = None) -> bool:
        """Sign-out: revoke the session's token; False when it was not live."""
        digest = _token_hash(token)
        with self.db.sessions.begin() as session:
            row = session.scalar(select(TokenRow).where(TokenRow.token_hash == digest, TokenRow.revoked.is_(False)))
            if row is None:
                return False
            row.revoked = True
            self._cache.pop(digest, None)
            add_entry(self.db, session, row.name, "sign_out", None, None, source=source)
            return True

    def verify_token(self, token: str) -> TokenInfo | None:
        """Who holds a live token; None for an unknown, revoked or expired one.

        Lookups are remembered for TOKEN_CACHE_S, so a console's stream of range requests costs no
        query each; a revocation made by another process (`cctv token`) applies within that time. While
        the database cannot be reached, a token looked up in the last OUTAGE_TOKEN_S still counts, so
        operators keep the cameras, live video and health through a store outage.
        """
        digest = _token_hash(token)
        cached = self._cache.get(digest)
        if cached is None or time.monotonic() - cached[0] > TOKEN_CACHE_S:
            try:
                with self.db.sessions() as session:
                    row = session.scalar(select(TokenRow).where(TokenRow.token_hash == digest))
            except OperationalError:
                if cached is None or time.monotonic() - cached[0] > OUTAGE_TOKEN_S:
                    raise
            else:
                found = None if row is None or row.revoked else _info(row)
                if len(self._cache) >= TOKEN_CACHE_SIZE:
                    self._cache.clear()
                cached = self._cache[digest] = (time.monotonic(), found)
        found = cached[1]
        if found is None or found.expired(self.db.clock()):
            return None
        return found

    def list_tokens(self) -> list[TokenRecord]:
        """Every token issued, oldest first, with its scope and state."""
        with self.db.sessions() as session:
            rows = session.scalars(select(TokenRow).order_by(TokenRow.id)).all()
            return [TokenRecord(r.id, _info(r), r.created_at, r.revoked) for r in rows]

    def revoke_tokens(self, name: str, actor: str = "tokens", source: str | None = None) -> int:
        """Revoke every token issued under `name` (its console sessions too); returns how many were live.

        actor, source: who revoked them and from where, for the audit log (default: `cctv token revoke`).
        """
        with self.db.sessions.begin() as session:
            rows = session.scalars(select(TokenRow).where(TokenRow.name == name, TokenRow.revoked.is_(False))).all()
            for row in rows:
                row.revoked = True
            self._cache.clear()
            if rows:
                detail = {"name": name, "count": len(rows)}
                add_entry(self.db, session, actor, "token.revoke", None, detail, source=source)
            return len(rows)
