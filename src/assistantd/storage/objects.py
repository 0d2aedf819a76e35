"""One repository shape for every stored API object, and keyset pagination over it.

A list page is ``WHERE <scope> AND id <op> :cursor ORDER BY id LIMIT n+1`` on the table's
primary key, which starts with the scope columns, so it costs the same on a thread with ten
runs as on one with a million: no OFFSET, no COUNT, no scan. ``has_more`` comes from the one
extra row.

A list scoped by a parent object (a thread's runs, a run's steps, a store's files) checks the
project on the parent row, in the same statement (``EXISTS``), and not on the rows' own
``project_id``: every condition left on the listed table is then a condition of its key.
A filter on a column outside the key would make PostgreSQL multiply two selectivities, guess
a handful of rows for a thread that holds a million, and read them all to sort them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import Table, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from assistantd.errors import NotFoundError

JSONObject = dict[str, Any]
Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class PageQuery:
    limit: int = 20
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page:
    """Stored bodies (JSON text) in the requested order."""

    bodies: list[str]
    ids: list[str]
    has_more: bool

    def to_json(self) -> bytes:
        """The OpenAI list envelope, spliced from stored bodies without re-encoding them."""
        first = orjson.dumps(self.ids[0] if self.ids else None)
        last = orjson.dumps(self.ids[-1] if self.ids else None)
        return b"".join(
            (
                b'{"object":"list","data":[',
                ",".join(self.bodies).encode(),
                b'],"first_id":',
                first,
                b',"last_id":',
                last,
                b',"has_more":',
                b"true" if self.has_more else b"false",
                b"}",
            )
        )

    def objects(self) -> list[JSONObject]:
        return [orjson.loads(b) for b in self.bodies]


@dataclass(frozen=True)
class Parent:
    """Rows whose ``column`` names a row of ``table`` belong to that row's project, and to
    whatever else that row is scoped by (a batch's files are all in the batch's store)."""

    column: str
    table: Table


class DuplicateError(Exception):
    """A unique constraint refused the write (e.g. a second active run on one thread)."""


class ObjectRepo:
    """Stores one kind of API object; ``columns`` derives the indexed columns from a body."""

    def __init__(
        self,
        table: Table,
        kind: str,
        columns: Callable[[JSONObject], Mapping[str, Any]] = lambda _o: {},
        parents: Sequence[Parent] = (),
    ) -> None:
        self.table = table
        self.kind = kind
        self._columns = columns
        self.parents = tuple(parents)

    def _row(
        self, project_id: str, obj: JSONObject, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "id": obj["id"],
            "project_id": project_id,
            "created_at": obj["created_at"],
            "body": orjson.dumps(obj).decode(),
            **self._columns(obj),
            **(extra or {}),
        }

    async def insert(
        self,
        conn: AsyncConnection,
        project_id: str,
        obj: JSONObject,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            await conn.execute(insert(self.table).values(self._row(project_id, obj, extra)))
        except IntegrityError as exc:
            raise DuplicateError(str(exc.orig)) from exc

    async def insert_many(
        self, conn: AsyncConnection, project_id: str, objs: list[JSONObject]
    ) -> None:
        if objs:
            await conn.execute(insert(self.table), [self._row(project_id, o) for o in objs])

    async def save(
        self,
        conn: AsyncConnection,
        project_id: str,
        obj: JSONObject,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Overwrite an existing object (same id, same project); ``extra`` sets internal
        columns that are not part of the wire object."""
        row = self._row(project_id, obj, extra)
        del row["id"], row["project_id"]
        t = self.table
        try:
            await conn.execute(
                update(t).where(t.c.id == obj["id"], t.c.project_id == project_id).values(row)
            )
        except IntegrityError as exc:
            raise DuplicateError(str(exc.orig)) from exc

    def _select_one(self, project_id: str, object_id: str, scope: Mapping[str, str]) -> Any:
        t = self.table
        conds = [t.c.id == object_id, t.c.project_id == project_id]
        conds += [t.c[k] == v for k, v in scope.items()]
        return select(t.c.body).where(*conds)

    async def find_raw(
        self,
        conn: AsyncConnection,
        project_id: str,
        object_id: str,
        *,
        scope: Mapping[str, str] | None = None,
        for_update: bool = False,
    ) -> str | None:
        stmt = self._select_one(project_id, object_id, scope or {})
        if for_update:
            stmt = stmt.with_for_update()
        value: str | None = (await conn.execute(stmt)).scalar_one_or_none()
        return value

    async def get_raw(
        self,
        conn: AsyncConnection,
        project_id: str,
        object_id: str,
        *,
        scope: Mapping[str, str] | None = None,
        param: str | None = None,
    ) -> str:
        raw = await self.find_raw(conn, project_id, object_id, scope=scope)
        if raw is None:
            raise NotFoundError(self.kind, object_id, param=param)
        return raw

    async def get(
        self,
        conn: AsyncConnection,
        project_id: str,
        object_id: str,
        *,
        scope: Mapping[str, str] | None = None,
        for_update: bool = False,
        param: str | None = None,
    ) -> JSONObject:
        raw = await self.find_raw(conn, project_id, object_id, scope=scope, for_update=for_update)
        if raw is None:
            raise NotFoundError(self.kind, object_id, param=param)
        obj: JSONObject = orjson.loads(raw)
        return obj

    async def delete(
        self,
        conn: AsyncConnection,
        project_id: str,
        object_id: str,
        *,
        scope: Mapping[str, str] | None = None,
    ) -> None:
        t = self.table
        conds = [t.c.id == object_id, t.c.project_id == project_id]
        conds += [t.c[k] == v for k, v in (scope or {}).items()]
        result = await conn.execute(delete(t).where(*conds))
        if result.rowcount == 0:
            raise NotFoundError(self.kind, object_id)

    async def columns(self, conn: AsyncConnection, object_id: str, *names: str) -> dict[str, Any]:
        """Internal columns of one object (e.g. running token counts)."""
        t = self.table
        row = (
            await conn.execute(select(*[t.c[n] for n in names]).where(t.c.id == object_id))
        ).one()
        return dict(zip(names, row, strict=True))

    async def delete_where(self, conn: AsyncConnection, **scope: str) -> None:
        t = self.table
        await conn.execute(delete(t).where(*[t.c[k] == v for k, v in scope.items()]))

    async def page(
        self,
        conn: AsyncConnection,
        project_id: str,
        query: PageQuery,
        *,
        where: list[ColumnElement[bool]] | None = None,
        **scope: str | None,
    ) -> Page:
        t = self.table
        conds = [*self._scope(project_id, scope), *(where or [])]
        asc = query.order == "asc"
        # Walking backwards from `before` alone: fetch the nearest rows behind the cursor in
        # reverse, then flip them back into the requested order.
        backward = query.before is not None and query.after is None
        if query.after is not None:
            conds.append(t.c.id > query.after if asc else t.c.id < query.after)
        if query.before is not None:
            conds.append(t.c.id < query.before if asc else t.c.id > query.before)
        ascending_scan = asc != backward
        stmt = (
            select(t.c.id, t.c.body)
            .where(*conds)
            .order_by(t.c.id.asc() if ascending_scan else t.c.id.desc())
            .limit(query.limit + 1)
        )
        rows = list((await conn.execute(stmt)).all())
        has_more = len(rows) > query.limit
        rows = rows[: query.limit]
        if backward:
            rows.reverse()
        return Page(bodies=[r.body for r in rows], ids=[r.id for r in rows], has_more=has_more)

    def _scope(self, project_id: str, given: Mapping[str, str | None]) -> list[ColumnElement[bool]]:
        """The page's conditions on the listed rows, and the project check.

        ``given`` maps columns to values; a column given None is left out. With a parent in
        the scope (the first of ``self.parents`` given), the project and the scope columns
        the parent row also has are checked on that row, once per statement, and the listed
        rows are filtered only by the rest: the key's columns."""
        t = self.table
        scope = {k: v for k, v in given.items() if v is not None}
        parent = next((p for p in self.parents if p.column in scope), None)
        if parent is None:
            return [t.c.project_id == project_id, *(t.c[k] == v for k, v in scope.items())]
        pt = parent.table
        on_parent = {k: v for k, v in scope.items() if k != parent.column and k in pt.c}
        gate = exists().where(
            pt.c.id == scope[parent.column],
            pt.c.project_id == project_id,
            *(pt.c[k] == v for k, v in on_parent.items()),
        )
        return [gate, *(t.c[k] == v for k, v in scope.items() if k not in on_parent)]
