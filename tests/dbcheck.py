"""Look straight into a test server's database, to check what the API cannot show."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.servers import Server


def count_rows(server: Server, table: str, where: str, **params: str) -> int:
    async def _count() -> int:
        engine = create_async_engine(server.env["ASSISTANTD_DATABASE_URL"])
        try:
            async with engine.connect() as conn:
                result = await conn.execute(
                    text(f"SELECT COUNT(*) FROM {table} WHERE {where}"), params
                )
                return int(result.scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(_count())
