"""Projects and their API keys.

A key is 32 random bytes, shown once. Only its SHA-256 is stored: the secret has full entropy,
so a slow password hash would add latency to every request and no protection.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from assistantd import clock, ids
from assistantd.storage.db import Database
from assistantd.storage.tables import api_keys, projects

DEFAULT_PROJECT = "default"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: str
    project: str
    hint: str
    created_at: int
    revoked_at: int | None


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_project(self, name: str) -> str:
        """The id of project ``name``, created if new.

        Several processes may start at once on one database (API processes and workers in the
        distributed mode) and each ensures the default project: the one that loses the race
        on the unique name reads the winner's row."""
        for _ in range(2):
            try:
                async with self.db.write() as conn:
                    found = (
                        await conn.execute(select(projects.c.id).where(projects.c.name == name))
                    ).scalar_one_or_none()
                    if found is not None:
                        return str(found)
                    project_id = ids.new_id(ids.PROJECT)
                    await conn.execute(
                        insert(projects).values(id=project_id, name=name, created_at=clock.now())
                    )
                    return project_id
            except IntegrityError:
                continue
        raise RuntimeError(f"project {name!r} could be neither read nor created")

    async def create(self, project: str) -> tuple[KeyInfo, str]:
        """Create a key for ``project`` (created if new); returns the info and the secret."""
        project_id = await self.ensure_project(project)
        secret = ids.new_secret()
        info = KeyInfo(
            id=ids.new_id(ids.API_KEY),
            project=project,
            hint=secret[:10] + "..." + secret[-4:],
            created_at=clock.now(),
            revoked_at=None,
        )
        async with self.db.write() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=info.id,
                    project_id=project_id,
                    secret_hash=hash_secret(secret),
                    hint=info.hint,
                    created_at=info.created_at,
                )
            )
        return info, secret

    async def list(self) -> list[KeyInfo]:
        stmt = (
            select(api_keys, projects.c.name)
            .join(projects, projects.c.id == api_keys.c.project_id)
            .order_by(api_keys.c.id)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [KeyInfo(r.id, r.name, r.hint, r.created_at, r.revoked_at) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=clock.now())
            )
        return result.rowcount > 0

    async def count_active(self) -> int:
        async with self.db.read() as conn:
            n = (
                await conn.execute(
                    select(func.count())
                    .select_from(api_keys)
                    .where(api_keys.c.revoked_at.is_(None))
                )
            ).scalar_one()
        return int(n)

    async def count_all(self) -> int:
        """Keys ever created, revoked ones included."""
        async with self.db.read() as conn:
            n = (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()
        return int(n)

    async def project_for(self, secret: str) -> str | None:
        """The project id a live key belongs to, or None."""
        stmt = select(api_keys.c.project_id).where(
            api_keys.c.secret_hash == hash_secret(secret), api_keys.c.revoked_at.is_(None)
        )
        async with self.db.read() as conn:
            found = (await conn.execute(stmt)).scalar_one_or_none()
        return None if found is None else str(found)
