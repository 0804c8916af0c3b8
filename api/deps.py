"""What route handlers receive: the settings, the pool and the Temporal client of the app."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from api.errors import ApiError
from contracts.errors import ErrorCode
from db.credits import SpendCombiner
from settings import Settings
from workflows.client import connect

logger = logging.getLogger(__name__)


class TemporalConnection:
    """One Temporal client per process, connected lazily so the API can start before Temporal."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await connect(self._settings)
        return self._client


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = request.app.state.pool
    return pool


async def get_temporal(request: Request) -> Client:
    """The Temporal client, or a 503 that tells a provider to re-send later."""
    temporal: TemporalConnection = request.app.state.temporal
    try:
        return await temporal.get()
    except Exception as exc:
        logger.warning("Temporal unreachable: %s", exc)
        raise ApiError(ErrorCode.TEMPORAL_UNAVAILABLE) from exc


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]


def get_spends(request: Request) -> SpendCombiner:
    """The process's credit spender (spends of one profile waiting together share a commit)."""
    spends: SpendCombiner = request.app.state.spends
    return spends


SpendsDep = Annotated[SpendCombiner, Depends(get_spends)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
