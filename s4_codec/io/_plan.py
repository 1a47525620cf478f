"""How one stored object maps to original bytes: its blocks and how to decode them.

Opening an object is written once, as a generator that yields the requests it
needs (``("head", path)``, ``("get", path)``, ``("ranges", path, [(a, b), ...])``)
and receives their results, so the sync and async readers drive the same code.
Every format rule (frame parsing, CRCs, sidecar binding and staleness, the
gateway's GET decision) is applied by the Rust functions called here.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from s4_codec import _internal

if TYPE_CHECKING:
    from s4_codec._internal import IndexEntry

from ._stores import Head

Request = tuple[Any, ...]
Opening = Generator[Request, Any, "ObjectPlan"]

# Plain (not S4-managed) objects are read in blocks of this size.
PLAIN_BLOCK = 4 << 20
DICT_PREFIX = ".s4dict/"
# Frame header walks are cached per (key, ETag, size): a multipart body without a
# sidecar costs one small request per frame the first time only.
_WALK_CACHE: OrderedDict[tuple[str, str | None, int], bytes] = OrderedDict()
_DICT_CACHE: OrderedDict[str, bytes] = OrderedDict()
_CACHE_LOCK = threading.Lock()
WALK_CACHE_ENTRIES = 64
DICT_CACHE_ENTRIES = 32


@dataclass(frozen=True)
class Block:
    original_offset: int
    original_size: int
    stored_offset: int
    stored_size: int

    @property
    def original_end(self) -> int:
        return self.original_offset + self.original_size

    @property
    def stored_end(self) -> int:
        return self.stored_offset + self.stored_size


@dataclass
class ObjectPlan:
    """An opened object. ``kind`` is "framed" (S4F2 frames, read frame by frame
    through a sidecar or a walked index), "whole" (one payload decoded at once:
    manifest-only, gzip, passthrough, single-frame bodies) or "plain" (not
    S4-managed: bytes as stored)."""

    path: str
    head: Head
    kind: str
    size: int
    blocks: list[Block]
    metadata: dict[str, str]
    sidecar: bytes | None = None
    sidecar_source: str | None = None  # "object", "walked" or None
    dictionary: bytes | None = None

    @property
    def etag(self) -> str | None:
        """The ETag the gateway serves (s4-logical-etag), else the stored one."""
        return self.metadata.get("s4-logical-etag") or self.head.etag

    def block_span(self, start: int, end: int) -> tuple[int, int]:
        """Indices [i, j) of the blocks covering original bytes [start, end)."""
        if end <= start or not self.blocks:
            return 0, 0
        offsets = [b.original_offset for b in self.blocks]
        i = max(bisect_right(offsets, start) - 1, 0)
        j = bisect_right(offsets, end - 1)
        return i, j

    def decode(self, i: int, j: int, data: Any, threads: int | None = None) -> bytes:
        """Original bytes of blocks [i, j) from their stored bytes `data`."""
        first, last = self.blocks[i], self.blocks[j - 1]
        if self.kind == "plain":
            return bytes(data)
        if self.kind == "whole":
            return _internal.decode_s4_object(
                bytes(data), self.metadata, dictionary=self.dictionary, threads=threads
            )
        return _internal.decode_s4_object(
            data,
            self.metadata,
            dictionary=self.dictionary,
            threads=threads,
            sidecar=self.sidecar,
            start=first.original_offset,
            end=last.original_end,
            body_offset=first.stored_offset,
            source_size=self.head.size,
            source_etag=self.head.etag,
        )


def metadata_kind(metadata: Mapping[str, str]) -> str:
    """The gateway's GET decision (FORMAT.md §8.5) as far as planning needs it:
    which requests to make. decode_s4_object applies the rule itself on decode."""
    if "true" in (metadata.get("s4-multipart"), metadata.get("s4-framed")):
        return "framed"
    manifest = ("s4-codec", "s4-original-size", "s4-compressed-size", "s4-crc32c")
    if all(k in metadata for k in manifest) and all(metadata[k].isdigit() for k in manifest[1:]):
        return "whole"
    return "plain"


def _frame_extent(header: bytes) -> tuple[bool, int, int]:
    """(is_padding, whole frame length, original size) from a frame's first bytes.

    Only the two length fields are read here, to know where the next frame
    starts; the frame itself is validated by Rust when it is decoded (a wrong
    extent makes that decode fail). Uses ``_internal.frame_header`` when the
    extension has it.
    """
    primitive = getattr(_internal, "frame_header", None)
    if primitive is not None:  # pragma: no cover - depends on the build
        info = primitive(header)
        return bool(info["padding"]), int(info["frame_size"]), int(info.get("original_size", 0))
    if header[:4] == _internal.PADDING_MAGIC and len(header) >= 12:
        return True, 12 + int.from_bytes(header[4:12], "little"), 0
    if header[:4] == _internal.FRAME_MAGIC and len(header) >= _internal.FRAME_HEADER_BYTES:
        original = int.from_bytes(header[8:16], "little")
        payload = int.from_bytes(header[16:24], "little")
        return False, _internal.FRAME_HEADER_BYTES + payload, original
    # Let Rust name the problem (bad magic, too short).
    _internal.read_frame(bytes(header))
    raise _internal.S4FrameError(f"frame error: unreadable frame header {bytes(header[:4])!r}")


def _walk(path: str, head: Head) -> Generator[Request, Any, bytes]:
    """Index of a framed body without a sidecar, built from its frame headers
    (one small range read per frame, padding skipped) and bound to the object."""
    key = (path, head.etag, head.size)
    with _CACHE_LOCK:
        cached = _WALK_CACHE.get(key)
    if cached is not None:
        return cached
    entries: list[IndexEntry] = []
    offset = original = 0
    while offset < head.size:
        end = min(offset + _internal.FRAME_HEADER_BYTES, head.size)
        (header,) = yield ("ranges", path, [(offset, end)])
        padding, length, size = _frame_extent(bytes(header))
        if offset + length > head.size:
            raise _internal.S4FrameError(
                f"frame error: frame at stored byte {offset} claims {length} bytes, "
                f"the body has {head.size - offset} left"
            )
        if not padding:
            entries.append(
                {
                    "original_offset": original,
                    "original_size": size,
                    "compressed_offset": offset,
                    "compressed_size": length,
                }
            )
            original += size
        offset += length
    index = _internal.encode_index(entries, head.size, head.size or None, head.etag)
    with _CACHE_LOCK:
        _WALK_CACHE[key] = index
        while len(_WALK_CACHE) > WALK_CACHE_ENTRIES:
            _WALK_CACHE.popitem(last=False)
    return index


def _dictionary(path: str, dict_id: str, dict_path: str) -> Generator[Request, Any, bytes]:
    with _CACHE_LOCK:
        cached = _DICT_CACHE.get(dict_id)
    if cached is not None:
        return cached
    try:
        data = bytes((yield ("get", dict_path)))
    except FileNotFoundError:
        raise FileNotFoundError(
            2, f"{path} needs dictionary {dict_path} (s4-dict-id), which is missing", dict_path
        ) from None
    got = _internal.CpuZstdDict(data).s4_dict_id
    if got != dict_id:
        raise _internal.S4IoError(
            f"dictionary mismatch: {dict_path} has content id {got}, not {dict_id}"
        )
    with _CACHE_LOCK:
        _DICT_CACHE[dict_id] = data
        while len(_DICT_CACHE) > DICT_CACHE_ENTRIES:
            _DICT_CACHE.popitem(last=False)
    return data


def open_plan(
    path: str,
    *,
    has_metadata: bool,
    dict_path: Any,
    dictionary: bytes | None = None,
    sidecar: bool = True,
) -> Opening:
    """The requests that open `path`, ending with its ObjectPlan."""
    head: Head = yield ("head", path)
    metadata = dict(head.metadata)
    if has_metadata or metadata:
        kind = metadata_kind(metadata)
    elif head.size == 0:
        kind = "plain"
    else:
        # No user metadata on this store: S4 bodies are recognised by their magic.
        (first,) = yield ("ranges", path, [(0, min(4, head.size))])
        magic = bytes(first)
        kind = "framed" if magic in (_internal.FRAME_MAGIC, _internal.PADDING_MAGIC) else "plain"
    dict_id = metadata.get("s4-dict-id")
    if dict_id and dictionary is None:
        dictionary = yield from _dictionary(path, dict_id, dict_path(path, dict_id))
    plan = ObjectPlan(path, head, kind, head.size, [], metadata, dictionary=dictionary)
    declared = metadata.get("s4-original-size", "")
    if kind == "framed" and metadata.get("s4-multipart") != "true" and declared.isdigit():
        original = int(declared)
        # A single PUT of at most one chunk (or a dictionary object) is one frame:
        # decode it whole, with every rule of the GET decision and no sidecar request.
        if original <= _internal.pick_chunk_size(original) or dict_id:
            kind = plan.kind = "whole"
    if kind == "plain":
        plan.blocks = [
            Block(o, min(PLAIN_BLOCK, head.size - o), o, min(PLAIN_BLOCK, head.size - o))
            for o in range(0, head.size, PLAIN_BLOCK)
        ]
        return plan
    if kind == "whole":
        plan.size = int(declared)
        plan.blocks = [Block(0, plan.size, 0, head.size)]
        return plan
    index: bytes | None = None
    if sidecar and head.size:
        try:
            index = bytes((yield ("get", path + _internal.SIDECAR_SUFFIX)))
            plan.sidecar_source = "object"
        except FileNotFoundError:
            index = None
    if index is not None:
        # Refuse a stale, truncated or lying sidecar before it is used.
        _internal.decode_s4_object(
            b"",
            None,
            sidecar=index,
            start=0,
            end=0,
            body_offset=0,
            source_size=head.size,
            source_etag=head.etag,
        )
    elif head.size:
        index = yield from _walk(path, head)
        plan.sidecar_source = "walked"
    if index is None:
        plan.size = 0
        # An empty framed body: the metadata must agree (Rust checks it).
        _internal.decode_s4_object(b"", metadata or None)
        return plan
    decoded = _internal.decode_index(index)
    plan.sidecar = index
    plan.blocks = [
        Block(
            e["original_offset"], e["original_size"], e["compressed_offset"], e["compressed_size"]
        )
        for e in decoded["entries"]
    ]
    plan.size = decoded["total_original_size"]
    if declared.isdigit() and int(declared) != plan.size:
        raise _internal.S4SizeMismatchError(
            f"size mismatch: {path} metadata s4-original-size is {declared}, "
            f"its frames hold {plan.size}"
        )
    return plan


def drive(opening: Opening, backend: Any) -> ObjectPlan:
    """Runs an opening against a sync backend."""
    try:
        request = next(opening)
        while True:
            op, path, *args = request
            try:
                if op == "head":
                    result = backend.head(path)
                elif op == "get":
                    result = backend.get(path)
                else:
                    result = backend.get_ranges(path, args[0])
            except BaseException as exc:
                request = opening.throw(exc)
            else:
                request = opening.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def drive_async(opening: Opening, backend: Any) -> ObjectPlan:
    """Runs an opening against a backend's async API."""
    try:
        request = next(opening)
        while True:
            op, path, *args = request
            try:
                if op == "head":
                    result = await backend.head_async(path)
                elif op == "get":
                    result = await backend.get_async(path)
                else:
                    result = await backend.get_ranges_async(path, args[0])
            except BaseException as exc:
                request = opening.throw(exc)
            else:
                request = opening.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
