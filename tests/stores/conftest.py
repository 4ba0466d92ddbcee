"""The stores under test: SQLite in a temporary file, and PostgreSQL in a private cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest


class Stores:
    """Opens the store under test; `restart` closes one and opens it again, as a server restart."""

    def __init__(self, kind: str, tmp_path: Path, url: str | None) -> None:
        self.kind, self._path, self._url, self._open = kind, tmp_path / "state.db", url, []

    async def open(self) -> Any:
        from llmproc.store import SqliteStore
        from llmproc.store_postgres import PostgresStore

        store = await PostgresStore.connect(self._url) if self._url else SqliteStore(self._path)
        self._open.append(store)
        return store

    async def restart(self, store: Any) -> Any:
        self._open.remove(store)
        await store.close()
        return await self.open()

    async def close_all(self) -> None:
        for store in self._open:
            await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    opened = Stores(request.param, tmp_path, url)
    yield opened
    await opened.close_all()
