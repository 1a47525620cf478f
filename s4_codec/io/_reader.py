"""Reading: whole and ranged ``get``, the seekable file, and their async twins."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from s4_codec import _internal

from ._plan import DICT_PREFIX, ObjectPlan, drive, drive_async, open_plan
from ._stores import Backend, backend_for

# One request fetches up to this many stored bytes (whole frames, at least one).
BATCH_BYTES = 8 << 20
# Frames separated by more padding than this are fetched by separate requests.
MAX_GAP = 1 << 20
# Requests (fetch + decode) in flight at once, per process: frame k decodes in
# one worker while frame k+1 downloads in another. Decoding releases the GIL
# and runs on s4-codec's own Rust thread pool.
IO_WORKERS = 4

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    """The one bounded pool all readers and writers share."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=IO_WORKERS, thread_name_prefix="s4-io")
        return _pool


def _dict_path(backend: Backend) -> Callable[[str, str], str]:
    def path_of(path: str, dict_id: str) -> str:
        # Dictionaries live at the bucket root (FORMAT.md §6); for fsspec the
        # bucket is the first path component.
        if getattr(backend, "is_s3", False):
            bucket = path.lstrip("/").split("/", 1)[0]
            return f"{bucket}/{DICT_PREFIX}{dict_id}"
        return DICT_PREFIX + dict_id

    return path_of


def resolve(backend: Backend, path: str, dictionary: Any = None) -> ObjectPlan:
    return drive(
        open_plan(
            path,
            has_metadata=backend.has_metadata,
            dict_path=_dict_path(backend),
            dictionary=None if dictionary is None else bytes(dictionary),
        ),
        backend,
    )


async def resolve_async(backend: Backend, path: str, dictionary: Any = None) -> ObjectPlan:
    return await drive_async(
        open_plan(
            path,
            has_metadata=backend.has_metadata,
            dict_path=_dict_path(backend),
            dictionary=None if dictionary is None else bytes(dictionary),
        ),
        backend,
    )


def normalize(size: int, start: int | None, end: int | None) -> tuple[int, int]:
    """[start, end) as slicing reads it (negatives count from the end)."""
    a, b, _ = slice(start, end).indices(size)
    return a, max(a, b)


def batches(plan: ObjectPlan, i: int, j: int) -> list[tuple[int, int]]:
    """Runs [i, j) of neighbouring blocks, each fetched by one request."""
    out: list[tuple[int, int]] = []
    k = i
    while k < j:
        m = k + 1
        while (
            m < j
            and plan.blocks[m].stored_end - plan.blocks[k].stored_offset <= BATCH_BYTES
            and plan.blocks[m].stored_offset - plan.blocks[m - 1].stored_end <= MAX_GAP
        ):
            m += 1
        out.append((k, m))
        k = m
    return out


def _fetch_decode(backend: Backend, plan: ObjectPlan, i: int, j: int) -> bytes:
    first, last = plan.blocks[i], plan.blocks[j - 1]
    (data,) = backend.get_ranges(plan.path, [(first.stored_offset, last.stored_end)])
    return plan.decode(i, j, data)


def _clip(plan: ObjectPlan, i: int, piece: bytes, a: int, b: int) -> bytes | memoryview:
    base = plan.blocks[i].original_offset
    lo, hi = max(a - base, 0), min(b - base, len(piece))
    return piece if (lo, hi) == (0, len(piece)) else memoryview(piece)[lo:hi]


def _check_whole(plan: ObjectPlan, data: bytes) -> None:
    # Frames are checked one by one on decode; a whole read of a framed body is
    # also checked against the object's CRC where the metadata names one
    # (FORMAT.md §14: a reader of the bucket should be stricter than the gateway).
    crc = plan.metadata.get("s4-crc32c", "")
    if plan.kind == "framed" and crc.isdigit():
        got = _internal.crc32c(data)
        if got != int(crc):
            raise _internal.S4CrcMismatchError(
                f"crc32c mismatch: {plan.path}: expected 0x{int(crc):08x}, got 0x{got:08x}"
            )


def read_span(backend: Backend, plan: ObjectPlan, a: int, b: int) -> bytes:
    """Original bytes [a, b), fetched in batches that overlap with decoding."""
    i, j = plan.block_span(a, b)
    runs = batches(plan, i, j)
    if not runs:
        return b""
    if len(runs) == 1:
        pieces = [_clip(plan, i, _fetch_decode(backend, plan, *runs[0]), a, b)]
    else:
        pool = executor()
        futures = [pool.submit(_fetch_decode, backend, plan, k, m) for k, m in runs]
        try:
            pairs = zip(runs, futures, strict=True)
            pieces = [_clip(plan, k, f.result(), a, b) for (k, _), f in pairs]
        finally:
            for f in futures:
                f.cancel()
    out = b"".join(pieces)
    if (a, b) == (0, plan.size):
        _check_whole(plan, out)
    return out


async def read_span_async(backend: Backend, plan: ObjectPlan, a: int, b: int) -> bytes:
    i, j = plan.block_span(a, b)
    gate = asyncio.Semaphore(IO_WORKERS)

    async def one(k: int, m: int) -> bytes | memoryview:
        async with gate:
            first, last = plan.blocks[k], plan.blocks[m - 1]
            (data,) = await backend.get_ranges_async(
                plan.path, [(first.stored_offset, last.stored_end)]
            )
            piece = await asyncio.to_thread(plan.decode, k, m, data)
            return _clip(plan, k, piece, a, b)

    pieces: list[bytes | memoryview] = list(
        await asyncio.gather(*(one(k, m) for k, m in batches(plan, i, j)))
    )
    out = b"".join(pieces)
    if (a, b) == (0, plan.size):
        _check_whole(plan, out)
    return out


def get(
    store: Any,
    path: str,
    start: int | None = None,
    end: int | None = None,
    *,
    dictionary: Any = None,
) -> bytes:
    """The original bytes of the S4 object at `path`, or of `[start, end)` of it
    (slice semantics). Only the frames covering the range are fetched."""
    backend = backend_for(store)
    plan = resolve(backend, path, dictionary)
    a, b = normalize(plan.size, start, end)
    return read_span(backend, plan, a, b)


async def get_async(
    store: Any,
    path: str,
    start: int | None = None,
    end: int | None = None,
    *,
    dictionary: Any = None,
) -> bytes:
    """`get` on the store's async API (decoding runs in worker threads)."""
    backend = backend_for(store)
    plan = await resolve_async(backend, path, dictionary)
    a, b = normalize(plan.size, start, end)
    return await read_span_async(backend, plan, a, b)


def stat(store: Any, path: str) -> dict[str, Any]:
    """What the reader learns on open: original size, stored size, ETag, layout."""
    plan = resolve(backend_for(store), path)
    return plan_info(plan)


def plan_info(plan: ObjectPlan) -> dict[str, Any]:
    return {
        "name": plan.path,
        "size": plan.size,
        "stored_size": plan.head.size,
        "etag": plan.etag,
        "stored_etag": plan.head.etag,
        "last_modified": plan.head.last_modified,
        "kind": plan.kind,
        "frames": len(plan.blocks) if plan.kind == "framed" else None,
        "sidecar": plan.sidecar_source,
        "metadata": dict(plan.metadata),
    }


class _Position:
    """Python file seek rules shared by the sync and async readers."""

    size: int
    _pos: int
    closed: bool

    def _seek(self, offset: int, whence: int) -> int:
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = target
        return target


class S4File(_Position, io.BufferedIOBase):
    """A seekable, read-only binary file over one object; reads decode only the
    frames they touch. ``size`` is the original size; ``info`` what opening found.

    Decoded frames stay in a bounded cache (``cache_bytes``); sequential reads
    fetch the next ``readahead`` frames in the background.
    """

    def __init__(
        self,
        backend: Backend,
        plan: ObjectPlan,
        *,
        cache_bytes: int = 32 << 20,
        readahead: int = 2,
    ):
        super().__init__()
        self._backend, self._plan = backend, plan
        self.size = plan.size
        self.name = plan.path
        self.info = plan_info(plan)
        self._pos = 0
        self._cache: OrderedDict[int, Future[bytes]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._readahead = readahead
        self._last_end = -1

    @property
    def mode(self) -> str:
        return "rb"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._checkClosed()
        return self._seek(offset, whence)

    def _block(self, k: int) -> Future[bytes]:
        fut = self._cache.get(k)
        if fut is None:
            fut = executor().submit(_fetch_decode, self._backend, self._plan, k, k + 1)
            self._cache[k] = fut
        self._cache.move_to_end(k)
        return fut

    def _evict(self, keep: range) -> None:
        blocks = self._plan.blocks
        total = sum(blocks[k].original_size for k in self._cache)
        for k in list(self._cache):
            if total <= self._cache_bytes:
                break
            if k in keep:
                continue
            total -= blocks[k].original_size
            self._cache.pop(k).cancel()

    def _read(self, a: int, b: int) -> bytes:
        plan = self._plan
        i, j = plan.block_span(a, b)
        if i == j:
            return b""
        if j - i > 2 and not any(k in self._cache for k in range(i, j)):
            # A large read: batched requests, overlapped with decoding.
            return read_span(self._backend, plan, a, b)
        futures = [self._block(k) for k in range(i, j)]
        ahead = range(j, min(j + self._readahead, len(plan.blocks)))
        if a == self._last_end:
            for k in ahead:
                self._block(k)
        self._last_end = b
        pairs = zip(range(i, j), futures, strict=True)
        pieces = [_clip(plan, k, f.result(), a, b) for k, f in pairs]
        self._evict(range(i, ahead.stop))
        return b"".join(pieces)

    def read(self, size: int | None = -1) -> bytes:
        self._checkClosed()
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        if end <= self._pos:
            return b""
        out = self._read(self._pos, end)
        self._pos += len(out)
        return out

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readinto1(self, buffer: Any) -> int:
        return self.readinto(buffer)

    def peek(self, size: int = 0) -> bytes:
        """Up to the end of the current frame (at most 64 KiB), not consumed."""
        self._checkClosed()
        if self._pos >= self.size:
            return b""
        i, _ = self._plan.block_span(self._pos, self._pos + 1)
        end = min(self._plan.blocks[i].original_end, self._pos + max(size, 64 << 10))
        return self._read(self._pos, end)

    def readline(self, size: int | None = -1) -> bytes:
        """One line, searched in the decoded frames without copying them."""
        self._checkClosed()
        limit = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        pieces: list[bytes | memoryview] = []
        while self._pos < limit:
            i, _ = self._plan.block_span(self._pos, self._pos + 1)
            block = self._plan.blocks[i]
            decoded = self._block(i).result()
            lo = self._pos - block.original_offset
            hi = min(limit, block.original_end) - block.original_offset
            newline = decoded.find(b"\n", lo, hi)
            stop = hi if newline < 0 else newline + 1
            pieces.append(memoryview(decoded)[lo:stop])
            self._pos += stop - lo
            self._evict(range(i, i + 1))
            if newline >= 0:
                break
        return b"".join(pieces)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        for fut in self._cache.values():
            fut.cancel()
        self._cache.clear()
        super().close()

    def __repr__(self) -> str:
        return f"<S4File {self.name!r} size={self.size} kind={self._plan.kind}>"


class AsyncS4File(_Position):
    """The async twin of S4File: ``await f.read(n)``, ``f.seek``, ``f.tell``."""

    def __init__(self, backend: Backend, plan: ObjectPlan):
        self._backend, self._plan = backend, plan
        self.size, self.name, self.info = plan.size, plan.path, plan_info(plan)
        self._pos = 0
        self.closed = False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        return self._seek(offset, whence)

    async def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        end = self.size if size < 0 else min(self.size, self._pos + size)
        if end <= self._pos:
            return b""
        out = await read_span_async(self._backend, self._plan, self._pos, end)
        self._pos += len(out)
        return out

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> AsyncS4File:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_reader(
    store: Any,
    path: str,
    *,
    dictionary: Any = None,
    cache_bytes: int = 32 << 20,
    readahead: int = 2,
) -> S4File:
    backend = backend_for(store)
    plan = resolve(backend, path, dictionary)
    return S4File(backend, plan, cache_bytes=cache_bytes, readahead=readahead)


async def open_async(store: Any, path: str, *, dictionary: Any = None) -> AsyncS4File:
    """Opens `path` for reading on the store's async API."""
    backend = backend_for(store)
    plan = await resolve_async(backend, path, dictionary)
    return AsyncS4File(backend, plan)
