"""`cctv serve`: the live service and its HTTP API in one process, until SIGTERM or Ctrl-C.

Shutdown order: uvicorn stops taking requests and the event streams are ended at once, then the
app's lifespan stops the cameras (open events ended, clips finished), then the store is closed.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from pipeline.api.app import create_app
from pipeline.config import ServiceConfig, SiteConfig, load_config
from pipeline.live.site import LiveSite
from pipeline.store import EventStore


class _Server(uvicorn.Server):
    """Ends the server-sent event streams as soon as a stop signal arrives, so they do not hold it open.

    Unlike uvicorn's own handler it does not re-raise the signal after the graceful stop: the process
    exits 0, as service managers expect of a clean shutdown. A second Ctrl-C still forces the exit.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.config.app.state.hub.close()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def site_with_overrides(config_path: Path, **overrides: Any) -> SiteConfig:
    """The site config with command-line values (None: keep the config's)."""
    site = load_config(config_path)
    service = site.service.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    return site.model_copy(update={"service": service})


def open_store(service: ServiceConfig) -> EventStore:
    return EventStore.open(service.database or service.data, data_dir=service.data)


def serve(config_path: Path, **overrides: Any) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    site = site_with_overrides(config_path, **overrides)
    with open_store(site.service) as store:
        live = LiveSite(site, store)
        app = create_app(store, live)
        service = site.service
        config = uvicorn.Config(
            app, host=service.host, port=service.port, log_level="warning", timeout_graceful_shutdown=5
        )
        print(
            f"serving {len(site.cameras)} cameras on http://{service.host}:{service.port} "
            f"(data: {store.data_dir}; stop with Ctrl-C or SIGTERM)",
            file=sys.stderr,
            flush=True,
        )
        _Server(config).run()
        print(f"stopped: open events ended and clips finished (data: {store.data_dir})", file=sys.stderr)
