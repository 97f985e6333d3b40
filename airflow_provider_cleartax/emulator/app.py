"""Assemble the emulator's ASGI application: ClearTax API routes, control middleware and admin API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from airflow_provider_cleartax.emulator.api import Emulator
from airflow_provider_cleartax.emulator.config import EmulatorConfig
from airflow_provider_cleartax.emulator.control import Control, ControlMiddleware, admin_routes


def create_app(config: EmulatorConfig | None = None, *, emulator: Emulator | None = None) -> Starlette:
    """Build the Starlette app of the emulator.

    The app keeps the emulator in ``app.state.emulator`` and the control state in
    ``app.state.control``. An emulator built here is closed when the app shuts down; one passed in
    stays the caller's to close.

    :param config: settings; defaults to those of ``emulator``, else to :class:`EmulatorConfig`.
    :param emulator: an existing emulator to serve instead of a new one.
    """
    owns_emulator = emulator is None
    if emulator is None:
        emulator = Emulator(config if config is not None else EmulatorConfig())
    if config is None:
        config = emulator.config
    api_routes = emulator.routes()
    control = Control(config=config, routes=api_routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_emulator:
                emulator.close()

    app = Starlette(
        routes=[*api_routes, *admin_routes(control=control, emulator=emulator)],
        middleware=[Middleware(ControlMiddleware, control=control)],
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    app.state.control = control
    app.state.config = config
    return app
