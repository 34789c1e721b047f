"""API tokens: issued once in plain text, kept as SHA-256 hashes, with a role and an optional expiry."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Literal, cast

from sqlalchemy import select

from pipeline.errors import CctvError
from pipeline.store.audit import add_entry
from pipeline.store.db import Database
from pipeline.store.models import TokenRow

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")  # each role may do what the ones before it may
TOKEN_CACHE_S = 5.0
TOKEN_CACHE_SIZE = 10_000


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, tuple[str, Role, float | None] | None]] = {}

    def create_token(self, name: str, role: str, expires_in: float | None = None) -> str:
        """Issue a bearer token; the plain token is returned once and only its hash is stored."""
        if role not in ROLES:
            raise CctvError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(32)
        now = self.db.clock()
        expires_at = None if expires_in is None else now + expires_in
        with self.db.sessions.begin() as session:
            row = TokenRow(token_hash=_token_hash(token), name=name, role=role, created_at=now, expires_at=expires_at)
            session.add(row)
            add_entry(self.db, session, "tokens", "token.create", None, {"name": name, "role": role, "expires_at": expires_at})
        return token

    def verify_token(self, token: str) -> tuple[str, Role] | None:
        """(name, role) of a live token; None for an unknown, revoked or expired one.

        Lookups are remembered for TOKEN_CACHE_S, so a console's stream of range requests costs no
        query each; a revocation made by another process (`cctv token`) applies within that time.
        """
        digest = _token_hash(token)
        cached = self._cache.get(digest)
        if cached is None or time.monotonic() - cached[0] > TOKEN_CACHE_S:
            with self.db.sessions() as session:
                row = session.scalar(select(TokenRow).where(TokenRow.token_hash == digest))
            found = None if row is None or row.revoked else (row.name, cast(Role, row.role), row.expires_at)
            if len(self._cache) >= TOKEN_CACHE_SIZE:
                self._cache.clear()
            cached = self._cache[digest] = (time.monotonic(), found)
        found = cached[1]
        if found is None or (found[2] is not None and found[2] <= self.db.clock()):
            return None
        return found[0], found[1]

    def revoke_tokens(self, name: str) -> int:
        """Revoke every token issued under `name`; returns how many were live."""
        with self.db.sessions.begin() as session:
            rows = session.scalars(select(TokenRow).where(TokenRow.name == name, TokenRow.revoked.is_(False))).all()
            for row in rows:
                row.revoked = True
            self._cache.clear()
            if rows:
                add_entry(self.db, session, "tokens", "token.revoke", None, {"name": name, "count": len(rows)})
            return len(rows)
