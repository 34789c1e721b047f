"""What every request passes before any route (authentication included): a body size limit, ids and filters
without NUL bytes, security headers on every answer, validation errors that never echo a large input, and
HEAD, OPTIONS and 405 answered from the route table.

Plain ASGI middleware, so a 400 MB body is refused from its Content-Length (or as soon as a chunked
body passes the limit), before a byte of it is buffered or the token is even looked at.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Match, Mount, Router

from pipeline.api.auth import MISSING_TOKEN, SESSION_COOKIE

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 64 * 1024  # the largest request body: a review note or an export reason is a few KiB
EXCERPT = 80  # characters of a rejected input a 422 repeats
LOG_EVERY_S = 10.0  # at most one log line per kind of refusal this often
ROUTE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")  # what a route here may declare
CONSOLE_METHODS = frozenset({"GET", "HEAD"})  # what the console's static files, on every path no route takes, answer
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
]


class _Refusals:
    """Rate-limited log lines about bad clients, so a flood of them cannot flood the log."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def note(self, kind: str, client: str) -> None:
        now = time.monotonic()
        self._count[kind] = self._count.get(kind, 0) + 1
        if now - self._last.get(kind, -LOG_EVERY_S) >= LOG_EVERY_S:
            log.warning("refused %s from %s (%d since the last such line)", kind, client, self._count[kind])
            self._last[kind], self._count[kind] = now, 0


refusals = _Refusals()


def _anonymous(scope: Scope) -> bool:
    """A request for what needs a token that carries none (neither the header nor the console's cookie)."""
    path, method = scope["path"], scope["method"]
    if not (path.startswith("/api/") or path == "/metrics") or method in ("HEAD", "OPTIONS"):
        return False  # the console's files, the API's schema; HEAD and OPTIONS are answered by `Methods`
    if path == "/api/health" or (path == "/api/session" and method in ("POST", "DELETE")):
        return False  # for load balancers, signing in and out
    for name, value in scope["headers"]:
        if name == b"authorization" or (name == b"cookie" and SESSION_COOKIE.encode() + b"=" in value):
            return False
    return True


async def _answer(send: Send, code: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    length = (b"content-length", str(len(body)).encode())
    headers = [(b"content-type", b"application/json"), length, *(extra or []), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: the request checks, and security headers on every response."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_body = self.max_body
        client = scope["client"][0] if scope.get("client") else "?"
        raw = scope.get("raw_path") or scope["path"].encode()
        if b"\x00" in unquote_to_bytes(raw) or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            refusals.note("NUL in a URL", client)
            await _answer(send, status.HTTP_400_BAD_REQUEST, "NUL bytes are not allowed in ids or filters")
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            refusals.note("an oversized body", client)
            await _answer(send, status.HTTP_413_CONTENT_TOO_LARGE, f"request body over {max_body} bytes")
            return
        if _anonymous(scope):  # the cheapest refusal: what anyone on the network can send costs the cameras least
            await _answer(send, status.HTTP_401_UNAUTHORIZED, MISSING_TOKEN, [(b"www-authenticate", b"Bearer")])
            return
        if length is None and scope["method"] not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            buffered = await self._buffered(receive)  # chunked: read here, so the limit holds before the route
            if buffered is None:
                refusals.note("an oversized chunked body", client)
                await _answer(send, status.HTTP_413_CONTENT_TOO_LARGE, f"request body over {max_body} bytes")
                return
            receive = buffered

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _buffered(self, receive: Receive) -> Receive | None:
        """The whole body, read up to the limit and handed on as one message; None past the limit."""
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay(message, receive)
            body += message.get("body", b"")
            if len(body) > self.max_body:
                return None
            if not message.get("more_body", False):
                return _replay({"type": "http.request", "body": body, "more_body": False}, receive)


def _replay(first: Message, rest: Receive) -> Receive:
    """`first`, then whatever the connection says next (a disconnect, say)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await rest()
        sent = True
        return first

    return receive


class _HeadDone(Exception):
    """Raised into a GET handler's `send` once the HEAD answer is complete, so it stops making a body."""


class Methods:
    """ASGI middleware: HEAD on every GET route, and OPTIONS and 405 with a true Allow, from the route table.

    FastAPI routes answer only the methods they declare and the console's static mount at "/" takes every request
    they do not, so HEAD /api/events was the mount's 404 and a POST to a GET route got the mount's Allow. Here, on
    a route's path, HEAD runs the GET (its token checked as for GET) without the body; OPTIONS is 204 with Allow
    from the route table alone (no token and no look-up: /openapi.json tells as much); any other method the path
    has no route for is 405 with Allow. GET, the busy method, passes untouched: its route or the console answers.
    """

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app, self.router = app, router

    def _declared(self, scope: Scope) -> frozenset[str]:
        """The methods the routes of the request's path take, asked of each route as the router asks it."""
        routes = [r for r in self.router.routes if not isinstance(r, Mount)]
        declared = {m for m in ROUTE_METHODS if any(r.matches({**scope, "method": m})[0] is Match.FULL for r in routes)}
        return frozenset(declared) or CONSOLE_METHODS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "GET":
            await self.app(scope, receive, send)
            return
        declared = self._declared(scope)
        allowed = declared | {"OPTIONS"} | ({"HEAD"} if "GET" in declared else set())
        headers = {"Allow": ", ".join(sorted(allowed))}
        method = scope["method"]
        if method == "OPTIONS":
            await Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)(scope, receive, send)
        elif method not in allowed:
            detail = {"detail": f"{method} is not allowed here; allowed: {headers['Allow']}"}
            await JSONResponse(detail, status.HTTP_405_METHOD_NOT_ALLOWED, headers)(scope, receive, send)
        elif method == "HEAD" and "HEAD" not in declared:
            await self._head(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The GET's status and headers (Content-Length included), its body left out and not made past its first
        part, so HEAD on a clip reads no file and HEAD on the event stream returns at once."""

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(message)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                raise _HeadDone

        try:
            await self.app({**scope, "method": "GET"}, receive, headers_only)  # a copy: the server still sees HEAD
        except _HeadDone:
            pass


def _excerpt(value: Any) -> Any:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.encode("utf-8", "backslashreplace").decode()  # a lone surrogate cannot go into the answer
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming what is wrong where, with at most a short excerpt of the input (never the whole of it)."""
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} | ({"input": _excerpt(e["input"])} if "input" in e else {})
        for e in exc.errors()[:10]
    ]
    return JSONResponse({"detail": details}, status.HTTP_422_UNPROCESSABLE_CONTENT)
