"""A bounded property-based fuzz of the HTTP API from its own OpenAPI schema (schemathesis), with a token of
each role, on a real store with events and evidence: no 5xx, and no answer that contradicts the schema.

The live routes run over a real live site of the PETS09 camera (its model loaded, its camera not started);
the two endless streams are left out (a fuzzer cannot end them)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import ROOT as ROOT_DIR
from hypothesis import HealthCheck, settings
from schemathesis import checks as core_checks
from schemathesis.specs.openapi import checks
from test_api import make_event

from pipeline.api import create_app
from pipeline.config import load_config
from pipeline.events import EventChange
from pipeline.live.site import LiveSite
from pipeline.store import EventStore

ROOT = Path(tempfile.mkdtemp(prefix="cctv-fuzz-"))
STORE = EventStore.open(ROOT / "data")
for n in range(5):
    STORE.apply(EventChange("end", make_event(f"pets-{n:06d}", start=10.0 + n)))
(ROOT / "data" / "evidence").mkdir(exist_ok=True)
(ROOT / "data" / "evidence" / "c.mp4").write_bytes(b"\0" * 4096)
STORE.set_evidence("pets-000001", clip="evidence/c.mp4")
TOKENS = {role: STORE.create_token(f"fuzz-{role}", role) for role in ("viewer", "operator", "admin")}
APP = create_app(STORE, LiveSite(load_config(ROOT_DIR / "configs" / "pets09.yaml"), STORE))


async def without_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app with its lifespan acknowledged but not run: the fuzzer's client starts one per request, and the
    live site's cameras are not what is tested here."""
    if scope["type"] != "lifespan":
        await APP(scope, receive, send)
        return
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


schema = schemathesis.openapi.from_asgi("/openapi.json", without_lifespan)
CHECKS = [
    core_checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
@schema.exclude(path_regex=r"(/stream|/live\.mjpeg)$").parametrize()
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_fuzz(case: schemathesis.Case, role: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS[role]}"}, checks=CHECKS)
