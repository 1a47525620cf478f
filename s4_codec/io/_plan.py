"""Opening an object: what it is (the gateway's GET decision), its size, and the
stored byte ranges that hold each part of it.

Opening is written once, as a generator that yields the requests it needs
(``("head", path)``, ``("get", path)``, ``("range", path, (a, b))``) and receives
their results, so the sync and async readers drive the same code. The format
rules (header parsing, the GET decision and the original size, sidecar binding,
staleness and coverage) are the Rust primitives called here; the sidecar is
parsed once, into the ``Sidecar`` every read's ``RangeDecoder`` borrows.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from s4_codec import _internal

if TYPE_CHECKING:
    from s4_codec._internal import IndexEntry, Sidecar

from ._stores import Backend, Head, dictionary_path

Request = tuple[Any, ...]
Opening = Generator[Request, Any, "ObjectPlan"]

# Objects that are not S4-managed are cached by the seekable reader in blocks of this size.
PLAIN_BLOCK = 4 << 20


class _LruCache:
    """A small thread-safe LRU of immutable values."""

    def __init__(self, entries: int):
        self._entries = entries
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._entries:
                self._items.popitem(last=False)


# Indexes built by walking frame headers, per (key, ETag, size): a multipart body
# without a sidecar costs one small request per frame the first time only.
_walked_indexes = _LruCache(64)
# Dictionaries by s4-dict-id (their content is checked against the id once).
_dictionaries = _LruCache(32)


@dataclass(frozen=True)
class Block:
    """A unit the seekable reader fetches and caches: one frame of a framed
    body, the whole body of a manifest-only object, or a slice of a plain one."""

    original_offset: int
    original_size: int

    @property
    def original_end(self) -> int:
        return self.original_offset + self.original_size


@dataclass
class ObjectPlan:
    """An opened object. ``layout`` is the gateway's GET decision: "framed"
    (read frame by frame through ``sidecar``: the stored one, or one built by
    walking the frame headers), "whole" (one payload decoded at once) or "plain"
    (not S4-managed: bytes as stored)."""

    path: str
    head: Head
    layout: str
    size: int
    metadata: dict[str, str]
    sidecar: Sidecar | None = None
    sidecar_source: str | None = None  # "object", "walked" or None
    dictionary: bytes | None = None
    blocks: list[Block] = field(default_factory=list)

    @property
    def etag(self) -> str | None:
        """The ETag the gateway serves (s4-logical-etag), else the stored one."""
        return self.metadata.get("s4-logical-etag") or self.head.etag

    def block_at(self, offset: int) -> int:
        """Index of the block holding original byte `offset` (< size)."""
        return bisect_right(self._starts, offset) - 1

    def blocks_for(self, start: int, end: int) -> range:
        """Indices of the blocks covering original bytes [start, end)."""
        if end <= start:
            return range(0)
        return range(self.block_at(start), self.block_at(end - 1) + 1)

    def range_decoder(self, start: int, end: int) -> _internal.RangeDecoder:
        """Rust's decoder of original bytes [start, end) of a framed body,
        over the sidecar checked against this very object when it opened."""
        assert self.sidecar is not None
        return _internal.RangeDecoder(self.sidecar, start, end, dictionary=self.dictionary)

    @cached_property
    def _starts(self) -> list[int]:
        return [b.original_offset for b in self.blocks]


def _walk(path: str, head: Head) -> Generator[Request, Any, bytes]:
    """A sidecar for a framed body that has none, from its frame headers (one
    small range read per frame, padding skipped), bound to the object. Cached
    as bytes: each opening checks it against its own metadata."""
    key = (path, head.etag, head.size)
    cached = _walked_indexes.get(key)
    if cached is not None:
        return cached
    entries: list[IndexEntry] = []
    offset = original = 0
    while offset < head.size:
        end = min(offset + _internal.FRAME_HEADER_BYTES, head.size)
        header = _internal.frame_header((yield ("range", path, (offset, end))))
        stored = header["stored_size"]
        if offset + stored > head.size:
            raise _internal.S4FrameError(
                f"frame error: frame at stored byte {offset} claims {stored} bytes, "
                f"the body has {head.size - offset} left"
            )
        if not header["padding"]:
            size = header["original_size"]
            entries.append(
                {
                    "original_offset": original,
                    "original_size": size,
                    "compressed_offset": offset,
                    "compressed_size": stored,
                }
            )
            original += size
        offset += stored
    index = _internal.encode_index(entries, head.size, head.size, head.etag)
    _walked_indexes.put(key, index)
    return index


def _dictionary(path: str, dict_id: str, dict_path: str) -> Generator[Request, Any, bytes]:
    cached = _dictionaries.get(dict_id)
    if cached is not None:
        return cached
    try:
        data = bytes((yield ("get", dict_path)))
    except FileNotFoundError:
        raise FileNotFoundError(
            2, f"{path} needs dictionary {dict_path} (s4-dict-id), which is missing", dict_path
        ) from None
    found = _internal.CpuZstdDict(data).s4_dict_id
    if found != dict_id:
        raise _internal.S4IoError(
            f"dictionary mismatch: {dict_path} has content id {found}, not {dict_id}"
        )
    _dictionaries.put(dict_id, data)
    return data


def open_plan(backend: Backend, path: str, dictionary: bytes | None = None) -> Opening:
    """The requests that open `path`, ending with its ObjectPlan."""
    head: Head = yield ("head", path)
    metadata = dict(head.metadata)
    if backend.has_metadata or metadata:
        layout, size = _internal.open_layout(metadata)
    else:
        # No user metadata on this store: S4 bodies are recognised by their first bytes.
        first = (yield ("range", path, (0, min(4, head.size)))) if head.size else b""
        layout, size = _internal.open_layout(None, first)
    dict_id = metadata.get("s4-dict-id")
    if dict_id and dictionary is None:
        dict_path = dictionary_path(backend, path, dict_id)
        dictionary = yield from _dictionary(path, dict_id, dict_path)
    plan = ObjectPlan(path, head, layout, head.size, metadata, dictionary=dictionary)
    if layout == "plain":
        plan.blocks = [
            Block(o, min(PLAIN_BLOCK, head.size - o)) for o in range(0, head.size, PLAIN_BLOCK)
        ]
        return plan
    if layout == "whole":
        assert size is not None  # the manifest, or the one frame's metadata, tells it
        plan.size = size
        plan.blocks = [Block(0, size)]
        return plan
    if head.size == 0:
        plan.size = 0
        _internal.decode_s4_object(b"", metadata or None)  # the metadata must agree
        return plan
    try:
        stored = bytes((yield ("get", path + _internal.SIDECAR_SUFFIX)))
        plan.sidecar_source = "object"
    except FileNotFoundError:
        stored = yield from _walk(path, head)
        plan.sidecar_source = "walked"
    # Refuses now a stale, truncated, gapped or lying sidecar, or metadata
    # that disagrees with the frames' sizes: before any byte is read.
    plan.sidecar = _internal.Sidecar(
        stored,
        metadata=metadata or None,
        source_size=head.size,
        source_etag=head.etag,
        name=path,
    )
    tail = plan.sidecar.tail
    if tail is not None:  # padding after the last frame, or an empty last frame that is one
        plan.sidecar.check_tail((yield ("range", path, tail)))
    plan.size = plan.sidecar.size
    plan.blocks = [Block(offset, size) for offset, size in plan.sidecar.frames]
    return plan


def drive(opening: Opening, backend: Backend) -> ObjectPlan:
    """Runs an opening against a backend's sync API."""
    try:
        request = next(opening)
        while True:
            op, path, *args = request
            result: Any
            try:
                if op == "head":
                    result = backend.head(path)
                elif op == "get":
                    result = backend.get(path)
                else:
                    result = backend.get_range(path, *args)
            except BaseException as exc:
                request = opening.throw(exc)
            else:
                request = opening.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def drive_async(opening: Opening, backend: Backend) -> ObjectPlan:
    """Runs an opening against a backend's async API."""
    try:
        request = next(opening)
        while True:
            op, path, *args = request
            result: Any
            try:
                if op == "head":
                    result = await backend.head_async(path)
                elif op == "get":
                    result = await backend.get_async(path)
                else:
                    result = await backend.get_range_async(path, *args)
            except BaseException as exc:
                request = opening.throw(exc)
            else:
                request = opening.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
