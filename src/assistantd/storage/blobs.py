"""Where file bytes live. The local filesystem under ``ASSISTANTD_DATA_DIR/blobs`` by default.

Keys are chosen by the server (project and file id), never taken from a client's filename, so
an upload cannot name a path. Writes go to a temporary name and are renamed into place, so a
failed upload never leaves a partial blob behind a file id.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024


class BlobTooLarge(Exception):
    pass


class BlobStore(Protocol):
    async def put_file(self, key: str, source: BinaryIO, max_bytes: int) -> int:
        """Copy ``source`` (read from its current position) to ``key``; returns the size."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes, in chunks."""
        ...

    async def read_all(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    async def put_file(self, key: str, source: BinaryIO, max_bytes: int) -> int:
        return await asyncio.to_thread(self._put_file, key, source, max_bytes)

    def _put_file(self, key: str, source: BinaryIO, max_bytes: int) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(f"file is larger than {max_bytes} bytes")
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self._path(key), "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def read_all(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)
