"""Reading: whole and ranged ``get``, the seekable file, and their async twins.

A framed read is one Rust ``RangeDecoder``: it allocates the result once and
lists the stored ranges it still needs; those are fetched in requests of whole
neighbouring frames, a few at a time on the I/O pool, each response streamed,
and every frame is decoded into the result as soon as it has arrived (GIL
released), so frame k decodes while frame k+1 downloads and nothing is joined
afterwards.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from s4_codec import _internal

from ._plan import ObjectPlan, drive, drive_async, open_plan
from ._stores import IO_THREADS, Backend, backend_for, io_executor

# One request asks for whole neighbouring frames up to this many stored bytes
# (a single larger frame is still one request).
REQUEST_BYTES = 16 << 20
# Below this, more requests cost more in latency than they gain in parallelism.
MIN_REQUEST = 1 << 20
# Frames further apart than this (multipart padding) are fetched separately.
MAX_GAP = 1 << 20
# Requests in flight for one read.
IN_FLIGHT = IO_THREADS


def resolve(backend: Backend, path: str, dictionary: Any = None) -> ObjectPlan:
    return drive(open_plan(backend, path, _bytes_or_none(dictionary)), backend)


async def resolve_async(backend: Backend, path: str, dictionary: Any = None) -> ObjectPlan:
    return await drive_async(open_plan(backend, path, _bytes_or_none(dictionary)), backend)


def _bytes_or_none(data: Any) -> bytes | None:
    return None if data is None else bytes(data)


def normalize(size: int, start: int | None, end: int | None) -> tuple[int, int]:
    """[start, end) as slicing reads it (negatives count from the end)."""
    a, b, _ = slice(start, end).indices(size)
    return a, max(a, b)


def requests_for(pending: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The stored ranges still needed, merged into requests of whole frames:
    at most REQUEST_BYTES each, and small enough that a read has IN_FLIGHT of
    them (one connection to S3 serves ~90 MB/s: parallel ranges are how a
    client goes faster)."""
    total = sum(end - first for first, end in pending)
    limit = min(REQUEST_BYTES, max(MIN_REQUEST, -(-total // IN_FLIGHT)))
    out: list[tuple[int, int]] = []
    for first, end in pending:
        if out and first - out[-1][1] <= MAX_GAP and end - out[-1][0] <= limit:
            out[-1] = (out[-1][0], end)
        else:
            out.append((first, end))
    return out


def _frames_in(pending: list[tuple[int, int]], first: int, end: int) -> list[tuple[int, int]]:
    return [(a, b) for a, b in pending if first <= a and b <= end]


def read_span(backend: Backend, plan: ObjectPlan, a: int, b: int) -> bytes:
    """Original bytes [a, b) of the object (0 <= a <= b <= size)."""
    if a >= b:
        return b""
    if plan.layout == "plain":
        return bytes(backend.get_range(plan.path, (a, b)))
    if plan.layout == "whole":
        return _slice(_decode_whole(plan, backend.get(plan.path)), a, b)
    decoder = plan.range_decoder(a, b)
    pending = decoder.pending

    def fetch_decode(first: int, end: int) -> None:
        # Frames decode as soon as they have arrived, while the rest streams in.
        frames = _frames_in(pending, first, end)
        buffer, at = bytearray(), first
        for chunk in backend.stream_range(plan.path, (first, end)):
            buffer += chunk
            done = [f for f in frames if f[1] <= at + len(buffer)]
            if not done:
                continue
            upto = done[-1][1] - at
            with memoryview(buffer) as view, view[:upto] as piece:
                decoder.decode(piece, at)
            del buffer[:upto]
            frames, at = frames[len(done) :], at + upto

    requests = requests_for(pending)
    if len(requests) == 1:
        fetch_decode(*requests[0])
    else:
        for future in _bounded(fetch_decode, requests):
            future.result()
    return decoder.finish()


def _bounded(fn: Any, requests: list[tuple[int, int]]) -> Iterator[Future[None]]:
    """Runs `fn(first, end)` for each request on the I/O pool, at most
    IN_FLIGHT at once, yielding each future as it completes. Leaving early
    (an error) cancels what has not started."""
    pool = io_executor()
    todo = iter(requests)
    running: set[Future[None]] = set()
    try:
        for request in todo:
            running.add(pool.submit(fn, *request))
            if len(running) == IN_FLIGHT:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                for request in todo:
                    running.add(pool.submit(fn, *request))
                    break
                yield future
    finally:
        for future in running:
            future.cancel()


async def read_span_async(backend: Backend, plan: ObjectPlan, a: int, b: int) -> bytes:
    if a >= b:
        return b""
    if plan.layout == "plain":
        return bytes(await backend.get_range_async(plan.path, (a, b)))
    loop = asyncio.get_running_loop()
    if plan.layout == "whole":
        body = await backend.get_async(plan.path)
        decoded = await loop.run_in_executor(io_executor(), _decode_whole, plan, body)
        return _slice(decoded, a, b)
    decoder = plan.range_decoder(a, b)
    pending = decoder.pending
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def fetch_decode(first: int, end: int) -> None:
        async with gate:
            piece = await backend.get_range_async(plan.path, (first, end))
            await loop.run_in_executor(io_executor(), decoder.decode, piece, first)

    tasks = [asyncio.ensure_future(fetch_decode(*r)) for r in requests_for(pending)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return decoder.finish()


def _decode_whole(plan: ObjectPlan, body: Any) -> bytes:
    return _internal.decode_s4_object(body, plan.metadata, dictionary=plan.dictionary)


def _slice(data: bytes, a: int, b: int) -> bytes:
    return data if (a, b) == (0, len(data)) else data[a:b]


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
    return read_span(backend, plan, *normalize(plan.size, start, end))


async def get_async(
    store: Any,
    path: str,
    start: int | None = None,
    end: int | None = None,
    *,
    dictionary: Any = None,
) -> bytes:
    """`get` on the store's async API."""
    backend = backend_for(store)
    plan = await resolve_async(backend, path, dictionary)
    return await read_span_async(backend, plan, *normalize(plan.size, start, end))


def stat(store: Any, path: str) -> dict[str, Any]:
    """What the reader learns on open: original size, stored size, ETag, layout."""
    return plan_info(resolve(backend_for(store), path))


def plan_info(plan: ObjectPlan) -> dict[str, Any]:
    return {
        "name": plan.path,
        "size": plan.size,
        "stored_size": plan.head.size,
        "etag": plan.etag,
        "stored_etag": plan.head.etag,
        "last_modified": plan.head.last_modified,
        "kind": plan.layout,
        "frames": len(plan.blocks) if plan.layout == "framed" else None,
        "sidecar": plan.sidecar_source,
        "metadata": dict(plan.metadata),
    }


class _Position:
    """Python file seek rules shared by the sync and async readers."""

    size: int
    _pos: int

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


def _reopen_args(
    kind: type, backend: Backend, plan: ObjectPlan, position: int, options: dict[str, Any]
) -> tuple[Any, ...]:
    if plan.dictionary is not None:
        options = {**options, "dictionary": plan.dictionary}
    return (_reopen, (kind, backend.source, plan.path, plan.head.etag, position, options))


def _reopen(
    kind: type[S4File] | type[AsyncS4File],
    source: Any,
    path: str,
    stored_etag: str | None,
    position: int,
    options: dict[str, Any],
) -> S4File | AsyncS4File:
    """Unpickles a reader in another process: opens `path` again and refuses
    an object that changed meanwhile (it would read other bytes)."""
    backend = backend_for(source)
    plan = resolve(backend, path, options.pop("dictionary", None))
    if plan.head.etag != stored_etag:
        raise _internal.S4IoError(
            f"{path} changed since the file was pickled: stored ETag {stored_etag!r} then, "
            f"{plan.head.etag!r} now"
        )
    reader = kind(backend, plan, **options)
    reader.seek(position)
    return reader


class S4File(_Position, io.BufferedIOBase):
    """A seekable, read-only binary file over one object; reads decode only the
    frames they touch. ``size`` is the original size; ``info`` what opening found.

    Decoded frames stay in a small cache (``cache_bytes``, besides the frames
    the current read and the read-ahead need); reading sequentially fetches the
    next ``readahead`` frames in the background. Reads that span several
    uncached frames go through ``get``'s pipeline instead.
    """

    def __init__(
        self,
        backend: Backend,
        plan: ObjectPlan,
        *,
        cache_bytes: int = 16 << 20,
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

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as (store, key, position): another process (spawn,
        forkserver, a Spark or Dask worker) reopens the same object version."""
        self._checkClosed()
        options = {"cache_bytes": self._cache_bytes, "readahead": self._readahead}
        return _reopen_args(S4File, self._backend, self._plan, self._pos, options)

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
        future = self._cache.get(k)
        if future is None:
            block = self._plan.blocks[k]
            future = io_executor().submit(
                read_span, self._backend, self._plan, block.original_offset, block.original_end
            )
            self._cache[k] = future
        self._cache.move_to_end(k)
        return future

    def _evict(self, keep: range) -> None:
        blocks = self._plan.blocks
        held = sum(blocks[k].original_size for k in self._cache if k not in keep)
        for k in list(self._cache):
            if held <= self._cache_bytes:
                break
            if k not in keep:
                held -= blocks[k].original_size
                self._cache.pop(k).cancel()

    def _pieces(self, a: int, b: int) -> Iterator[memoryview | bytes]:
        """[a, b) as slices of decoded blocks, in order."""
        plan = self._plan
        wanted = plan.blocks_for(a, b)
        if len(wanted) > 2 and not any(k in self._cache for k in wanted):
            # A large read: pipelined requests, decoded straight into one result.
            yield read_span(self._backend, plan, a, b)
            return
        futures = [self._block(k) for k in wanted]
        ahead = range(wanted.stop, min(wanted.stop + self._readahead, len(plan.blocks)))
        if a == self._last_end:
            for k in ahead:
                self._block(k)
        self._last_end = b
        keep = range(wanted.start, ahead.stop)
        for k, future in zip(wanted, futures, strict=True):
            block, decoded = plan.blocks[k], future.result()
            lo = max(a - block.original_offset, 0)
            hi = min(b - block.original_offset, block.original_size)
            yield decoded if (lo, hi) == (0, len(decoded)) else memoryview(decoded)[lo:hi]
        self._evict(keep)

    def _span(self, size: int | None) -> tuple[int, int]:
        self._checkClosed()
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        return self._pos, max(self._pos, end)

    def read(self, size: int | None = -1) -> bytes:
        a, b = self._span(size)
        if a == b:
            return b""
        pieces = list(self._pieces(a, b))
        out = pieces[0] if len(pieces) == 1 and isinstance(pieces[0], bytes) else b"".join(pieces)
        self._check_filled(a, b, len(out))
        self._pos = b
        return out

    def _check_filled(self, a: int, b: int, filled: int) -> None:
        """A read returns every byte asked for up to the end, never fewer (the
        opening refused sidecars that leave bytes in no frame; this keeps it so)."""
        if filled != b - a:
            raise _internal.S4IndexError(
                f"{self.name}: original bytes [{a}, {b}) gave {filled} bytes, expected {b - a}"
            )

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        a, b = self._span(len(view))
        filled = 0
        for piece in self._pieces(a, b):
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
        self._check_filled(a, b, filled)
        self._pos = b
        return filled

    def readinto1(self, buffer: Any) -> int:
        return self.readinto(buffer)

    def peek(self, size: int = 0) -> bytes:
        """Up to the end of the current block (at most 64 KiB), not consumed."""
        self._checkClosed()
        if self._pos >= self.size:
            return b""
        block = self._plan.blocks[self._plan.block_at(self._pos)]
        end = min(block.original_end, self._pos + max(size, 64 << 10))
        return b"".join(self._pieces(self._pos, end))

    def readline(self, size: int | None = -1) -> bytes:
        """One line, searched in the decoded blocks without copying them."""
        _, limit = self._span(size)
        pieces: list[bytes | memoryview] = []
        while self._pos < limit:
            k = self._plan.block_at(self._pos)
            block = self._plan.blocks[k]
            decoded = self._block(k).result()
            lo = self._pos - block.original_offset
            hi = min(limit, block.original_end) - block.original_offset
            newline = decoded.find(b"\n", lo, hi)
            stop = hi if newline < 0 else newline + 1
            pieces.append(memoryview(decoded)[lo:stop])
            self._pos += stop - lo
            self._evict(range(k, k + 1))
            if newline >= 0:
                break
        return b"".join(pieces)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        for future in self._cache.values():
            future.cancel()
        self._cache.clear()
        super().close()

    def __repr__(self) -> str:
        return f"<S4File {self.name!r} size={self.size} layout={self._plan.layout}>"


class AsyncS4File(_Position):
    """The async twin of S4File: ``await f.read(n)``, ``f.seek``, ``f.tell``."""

    def __init__(self, backend: Backend, plan: ObjectPlan):
        self._backend, self._plan = backend, plan
        self.size, self.name, self.info = plan.size, plan.path, plan_info(plan)
        self._pos = 0
        self.closed = False

    def __reduce__(self) -> tuple[Any, ...]:
        self._check_open()
        return _reopen_args(AsyncS4File, self._backend, self._plan, self._pos, {})

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        return self._seek(offset, whence)

    async def read(self, size: int = -1) -> bytes:
        self._check_open()
        end = self.size if size < 0 else min(self.size, self._pos + size)
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
    cache_bytes: int = 16 << 20,
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
