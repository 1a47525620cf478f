"""The ``s4`` Spark data source: S4 objects in buckets and directories, read
as lines or whole objects and split by frames, written as the gateway stores
them. Registered by :func:`s4_codec.spark.register_data_source`.

Planning runs on the driver: it lists the paths (a key, a prefix or a glob;
sidecars, dictionaries and names starting with ``_`` or ``.`` are not data),
opens every object once (HEAD and sidecar) and cuts framed objects at frame
boundaries into pieces of about ``partitionBytes`` original bytes; small
objects share a partition. A task opens its objects again, refuses one whose
ETag changed since planning, and fetches only the frames of its pieces.

Lines follow Hadoop's text splits: a piece ``[a, b)`` owns the lines that
start in ``(a, b]`` (the first piece also the one at 0), so it skips the
line in progress at ``a`` and reads past ``b`` to finish its last line: only
the first stored bytes of the next frame, decoded as far as the line needs.
``\\n`` ends a line; a ``\\r`` before it is dropped.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import uuid
from array import array
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from struct import unpack_from
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import BinaryType, StringType, StructType

from s4_codec import _internal
from s4_codec.io._plan import ObjectPlan
from s4_codec.io._reader import read_span, resolve
from s4_codec.io._stores import Backend, backend_for, io_executor, is_auxiliary
from s4_codec.io._urls import Location, locate
from s4_codec.io._writer import PART_SIZE, S4Writer, put

MiB = 1 << 20
# Original bytes one task decodes and splits at a time (the next unit is
# fetched meanwhile), so a task's memory does not grow with partitionBytes.
READ_UNIT = 16 * MiB
# What opening an object costs, in bytes of reading: small objects share a
# partition up to partitionBytes, counting this much for each (Spark's
# spark.sql.files.openCostInBytes).
OPEN_COST = 4 * MiB
# Rows per Arrow batch handed to Spark.
BATCH_ROWS = 1 << 16
# Stored bytes first fetched of the frame after a piece, to finish its last
# line: a sixteenth of the frame, at least PEEK_FLOOR and at most FIRST_PEEK
# (a fixed 64 KiB was a third of a well-compressed 4 MiB frame), then 4x more.
FIRST_PEEK = 64 << 10
PEEK_FLOOR = 4 << 10
# Spark values (and Arrow binary arrays) hold at most this.
MAX_VALUE = (1 << 31) - 1
SUCCESS_MARKER = "_SUCCESS"
# Left by a failed job, for its tasks that were still writing (hidden: not data).
ABORTED = "_s4-aborted-{job}"
# Objects written (mode objects) between two looks for that marker.
ABORT_CHECK_EVERY = 16
GLOB_CHARS = re.compile(r"[*?\[]")

STORE_OPTIONS = {
    "endpoint_url": "endpoint",
    "region": "region",
    "access_key_id": "access_key_id",
    "secret_access_key": "secret_access_key",
    "session_token": "session_token",
}
READ_OPTIONS = {"mode", "binary", "partitionbytes"}
WRITE_OPTIONS = {"mode", "codec", "level", "part_size"}
MODES = ("lines", "objects")
CODECS = ("cpu-zstd", "zstd", "cpu-gzip", "gzip", "passthrough")
_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(i?b)?", re.IGNORECASE)


def _bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"option {name!r} must be true or false, not {text!r}")
    return value == "true"


def _size(name: str, text: str, minimum: int) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"option {name!r} must be a size in bytes (e.g. 134217728 or 128m), not {text!r}"
        )
    number, unit = int(match[1]), match[2].lower()
    value = number << (10 * " kmgt".index(unit or " "))
    if value < minimum:
        raise ValueError(f"option {name!r} must be at least {minimum} bytes, not {text!r}")
    return value


@dataclass(frozen=True)
class Options:
    """The data source's options, checked on the driver. Plain data, so it
    travels to the executors with the reader or writer."""

    paths: tuple[str, ...]
    mode: str = "lines"
    binary: bool = False
    partition_bytes: int = 128 * MiB
    codec: str = "cpu-zstd"
    level: int | None = None
    part_size: int = PART_SIZE
    store: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, options: Mapping[str, str], writing: bool) -> Options:
        known = (
            (WRITE_OPTIONS if writing else READ_OPTIONS) | set(STORE_OPTIONS) | {"path", "paths"}
        )
        unknown = sorted(set(options) - known)
        if unknown:
            what = "writing" if writing else "reading"
            raise ValueError(
                f"unknown option(s) {unknown} for {what} format 's4'; known: {sorted(known)}"
            )
        paths = _paths(options)
        kw: dict[str, Any] = {}
        if "mode" in options:
            kw["mode"] = options["mode"].strip().lower()
            if kw["mode"] not in MODES:
                raise ValueError(f"option 'mode' must be one of {MODES}, not {options['mode']!r}")
        if "binary" in options:
            kw["binary"] = _bool("binary", options["binary"])
        if "partitionbytes" in options:
            kw["partition_bytes"] = _size("partitionBytes", options["partitionbytes"], 1)
        if "codec" in options:
            codec = options["codec"].strip().lower()
            if codec not in CODECS:
                raise ValueError(
                    f"option 'codec' must be one of {CODECS}, not {options['codec']!r}"
                )
            kw["codec"] = codec
        if "level" in options:
            try:
                kw["level"] = int(options["level"])
            except ValueError:
                raise ValueError(
                    f"option 'level' must be an integer, not {options['level']!r}"
                ) from None
        if "part_size" in options:
            kw["part_size"] = _size("part_size", options["part_size"], 5 * MiB)
        store = tuple(
            (STORE_OPTIONS[name], options[name])
            for name in sorted(STORE_OPTIONS)
            if name in options
        )
        parsed = cls(paths, store=store, **kw)
        if writing:
            _internal.check_compress_args(parsed.codec, parsed.level)
        return parsed

    def locate(self, url: str, *, directory: bool | None = None) -> Location:
        return locate(url, directory=directory, **dict(self.store))


def _paths(options: Mapping[str, str]) -> tuple[str, ...]:
    if "paths" in options:
        try:
            paths = json.loads(options["paths"])
        except ValueError:
            paths = None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError(
                f"option 'paths' must be a JSON list of strings, not {options['paths']!r}"
            )
        return tuple(paths)
    if options.get("path"):
        return (options["path"],)
    raise ValueError("format 's4' needs a path: load('s3://bucket/prefix/') or save(...)")


# --- Reading -----------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """Original bytes [start, end) of one object, as planned on the driver."""

    where: Location
    key: str
    etag: str | None
    size: int
    start: int
    end: int
    modified: Any = None

    @property
    def url(self) -> str:
        return self.where.url(self.key)


def _hidden(key: str) -> bool:
    return is_auxiliary(key) or key.rsplit("/", 1)[-1].startswith(("_", "."))


def _listed(options: Options, url: str) -> tuple[Location, Backend, list[str]]:
    """The data objects `url` names: a key, a prefix or a glob."""
    glob = GLOB_CHARS.search(url)
    if glob is None:
        where = options.locate(url)
    else:
        # The store's root is the directory before the first wildcard.
        head = url[: glob.start()].rpartition("/")[0]
        root = options.locate(head + "/", directory=True)
        where = replace(root, key=root.key + url[len(head) + 1 :])
    if where.scheme == "file" and not os.path.isdir(where.root):
        # Before LocalStore(mkdir=True) would make the directory a read names.
        raise FileNotFoundError(f"{url}: no S4 objects there (no directory {where.root})")
    backend = backend_for(where.store())
    key = where.key
    if glob is not None:
        literal = GLOB_CHARS.split(key, 1)[0]
        listed = [
            (n, size)
            for n, size in backend.listing(literal[: literal.rfind("/") + 1])
            if _matches(n, key)
        ]
    elif key and not key.endswith("/") and _exists(backend, key):
        listed = [(key, 1)]
    else:
        listed = backend.listing(key.rstrip("/") + "/" if key else "")
    # An S3 folder marker (an empty "dir/" object, as consoles and Hadoop make)
    # is listed without its slash, under a name that does not exist.
    names = sorted(n for n, size in listed if not _hidden(n) and (size > 0 or _exists(backend, n)))
    if not names:
        raise FileNotFoundError(f"{url}: no S4 objects there (a key, a prefix or a glob)")
    return where, backend, names


def _matches(key: str, pattern: str) -> bool:
    """Glob matching as Hadoop's: wildcards stay within one path segment."""
    keys, patterns = key.split("/"), pattern.split("/")
    return len(keys) == len(patterns) and all(
        fnmatch.fnmatchcase(k, p) for k, p in zip(keys, patterns, strict=True)
    )


def _exists(backend: Backend, key: str) -> bool:
    try:
        backend.head(key)
    except FileNotFoundError:
        return False
    return True


def _pieces(options: Options, where: Location, plan: ObjectPlan) -> list[Piece]:
    """An object cut into pieces of about partitionBytes original bytes:
    at frame boundaries when its sidecar lists them, anywhere in a plain
    object, else whole."""

    def piece(a: int, b: int) -> Piece:
        return Piece(where, plan.path, plan.etag, plan.size, a, b, plan.head.last_modified)

    if options.mode == "objects":
        if plan.size > MAX_VALUE:
            raise ValueError(
                f"{where.url(plan.path)}: {plan.size} bytes is over the 2 GiB a Spark value "
                "holds; read it with mode 'lines'"
            )
        return [piece(0, plan.size)]
    if plan.size == 0:
        return []
    if plan.layout == "plain":
        cuts = list(range(0, plan.size, options.partition_bytes))
    elif plan.layout == "framed" and plan.sidecar_source == "object":
        cuts, start = [0], 0
        for block in plan.blocks:
            if block.original_offset - start >= options.partition_bytes:
                cuts.append(block.original_offset)
                start = block.original_offset
    else:
        cuts = [0]
    return [piece(a, b) for a, b in zip(cuts, [*cuts[1:], plan.size], strict=True)]


def _packed(pieces: list[Piece], partition_bytes: int) -> list[list[Piece]]:
    """Pieces grouped into partitions of about partitionBytes (small objects share one)."""
    out: list[list[Piece]] = []
    load = partition_bytes
    for piece in pieces:
        cost = piece.end - piece.start + OPEN_COST
        if load + cost > partition_bytes and (not out or out[-1]):
            out.append([])
            load = 0
        out[-1].append(piece)
        load += cost
    return out


def lines_schema(binary: bool) -> StructType:
    value = BinaryType() if binary else StringType()
    return StructType().add("value", value).add("path", StringType())


OBJECTS_SCHEMA = (
    StructType()
    .add("path", "string")
    .add("modificationTime", "timestamp")
    .add("length", "long")
    .add("content", "binary")
)


class S4Reader(DataSourceReader):
    def __init__(self, options: Options):
        self.options = options
        self._backends: dict[Location, Backend] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options, "_backends": {}}

    def partitions(self) -> list[InputPartition]:
        pieces: list[Piece] = []
        for url in self.options.paths:
            try:
                where, backend, names = _listed(self.options, url)
            except OSError as exc:  # a store's error names a key, not the bucket or URL
                exc.add_note(f"while listing {url}")
                raise
            self._backends[where] = backend
            for plan in io_executor().map(partial(resolve, backend), names):
                pieces += _pieces(self.options, where, plan)
        return [InputPartition(group) for group in _packed(pieces, self.options.partition_bytes)]

    def _backend(self, where: Location) -> Backend:
        # One store per location per task (the reader is unpickled per task).
        backend = self._backends.get(where)
        if backend is None:
            backend = self._backends[where] = backend_for(where.store())
        return backend

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        # Spark reads one InputPartition(None) where partitions() planned none.
        for piece in partition.value or ():
            backend = self._backend(piece.where)
            plan = resolve(backend, piece.key)
            if plan.etag != piece.etag or plan.size != piece.size:
                raise _internal.S4IoError(
                    f"{piece.url}: changed since the job was planned (ETag {piece.etag} and "
                    f"{piece.size} bytes then, {plan.etag} and {plan.size} bytes now)"
                )
            if self.options.mode == "objects":
                yield _object_batch(piece, read_span(backend, plan, 0, plan.size))
            else:
                yield from LineReader(backend, plan, piece, self.options.binary).batches()


def _object_batch(piece: Piece, content: bytes) -> pa.RecordBatch:
    modified = pa.array([piece.modified], pa.timestamp("us", tz="UTC"))
    return pa.RecordBatch.from_arrays(
        [
            pa.array([piece.url]),
            modified,
            pa.array([len(content)], pa.int64()),
            pa.array([content], pa.binary()),
        ],
        names=["path", "modificationTime", "length", "content"],
    )


class LineReader:
    """The lines one piece owns, in Arrow batches of at most BATCH_ROWS rows."""

    def __init__(self, backend: Backend, plan: ObjectPlan, piece: Piece, binary: bool):
        self.backend, self.plan, self.piece, self.binary = backend, plan, piece, binary
        self._paths = pa.array([], pa.string())

    def _units(self) -> list[tuple[int, int]]:
        """Reads of at most READ_UNIT covering the piece, cut at frame starts."""
        a, b = self.piece.start, self.piece.end
        if self.plan.layout == "whole":
            return [(a, b)]  # one payload, decoded at once
        if self.plan.layout == "plain":
            return [(s, min(s + READ_UNIT, b)) for s in range(a, b, READ_UNIT)]
        cuts = [a]
        for k in self.plan.blocks_for(a, b):
            offset = self.plan.blocks[k].original_offset
            if offset - cuts[-1] >= READ_UNIT:
                cuts.append(offset)
        return list(zip(cuts, [*cuts[1:], b], strict=True))

    def _read(self, a: int, b: int) -> bytes:
        return read_span(self.backend, self.plan, a, b)

    def _split(
        self, data: Any, carry: bytes, origin: int, last: bool = False
    ) -> Generator[pa.RecordBatch, None, bytes]:
        """Yields batches of the lines in `carry` + `data`, then returns the rest."""
        values, rest = _internal.split_lines(
            data, carry, last=last, binary=self.binary, origin=origin, name=self.piece.url
        )
        for start in range(0, len(values), BATCH_ROWS):
            chunk = values.slice(start, BATCH_ROWS)
            if len(self._paths) < len(chunk):
                self._paths = _repeated(self.piece.url.encode(), len(chunk))
            paths = self._paths.slice(0, len(chunk))
            yield pa.RecordBatch.from_arrays([chunk, paths], names=["value", "path"])
        return rest

    def batches(self) -> Iterator[pa.RecordBatch]:
        a, b, size = self.piece.start, self.piece.end, self.piece.size
        skipping, carry = a > 0, b""
        units = self._units()
        with ThreadPoolExecutor(1, thread_name_prefix="s4-lines") as ahead:
            pending = ahead.submit(self._read, *units[0])
            for i, (start, _) in enumerate(units):
                data = pending.result()
                if i + 1 < len(units):
                    pending = ahead.submit(self._read, *units[i + 1])
                view, origin = memoryview(data), start
                if skipping:
                    # The line in progress at `a` belongs to the piece before.
                    newline = data.find(b"\n")
                    if newline < 0:
                        continue
                    view, origin, skipping = view[newline + 1 :], start + newline + 1, False
                carry = yield from self._split(view, carry, origin)
                del data, view
        if skipping:
            return  # no line starts in (a, b]
        tail = self._through_newline(b) if b < size else b""
        yield from self._split(tail, carry, b, last=True)

    def _through_newline(self, at: int) -> bytes:
        """Original bytes from `at` (a frame start) to the first ``\\n``
        (included), or to the end of the object."""
        out = bytearray()
        while at < self.piece.size:
            start, end = self._block(at)
            decoded = self._peek(start, end)
            newline = decoded.find(b"\n")
            if newline >= 0:
                out += decoded[: newline + 1]
                break
            out += decoded
            at += len(decoded)
        return bytes(out)

    def _block(self, at: int) -> tuple[int, int]:
        """Original bytes [at, end) of the block (frame) starting at `at`."""
        if self.plan.layout != "framed":
            return at, min(at + READ_UNIT, self.piece.size)
        return at, self.plan.blocks[self.plan.block_at(at)].original_end

    def _peek(self, start: int, end: int) -> bytes:
        """The first bytes of original [start, end), at least up to a ``\\n``
        or all of them, fetching a growing prefix of the stored bytes: a
        plain range, or the start of a zstd frame decoded without the rest of
        it. A cpu-gzip frame only decodes whole."""
        plan = self.plan
        if plan.layout == "framed" and plan.metadata.get("s4-codec") == "cpu-gzip":
            return self._read(start, end)
        if plan.layout == "framed":
            first, last = plan.range_decoder(start, start + 1).pending[0]
            frame = (plan.block_at(start), (first, last), (start, end))
        else:
            first, last = start, end
        want = max(PEEK_FLOOR, min(FIRST_PEEK, (last - first) // 16))
        stored = bytearray()
        while True:
            stop = min(last, first + want)
            # Only the bytes not fetched yet.
            stored += self.backend.get_range(plan.path, (first + len(stored), stop))
            if plan.layout != "framed":
                decoded = bytes(stored)
            else:
                decoded = _internal.decode_frame_prefix(
                    stored, dictionary=plan.dictionary, name=plan.path, frame=frame
                )
            if stop == last or b"\n" in decoded:
                return decoded
            want *= 4


def _repeated(value: bytes, n: int) -> pa.Array:
    """A string array of `value` n times."""
    offsets = (
        array("i", range(0, (n + 1) * len(value), len(value)))
        if value
        else array("i", [0] * (n + 1))
    )
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(value * n)]
    )


# --- Writing -----------------------------------------------------------------


@dataclass
class S4Commit(WriterCommitMessage):
    """The keys one task wrote."""

    keys: list[str]


def _lines_column(schema: StructType) -> str:
    fields = schema.fields
    chosen = fields[0] if len(fields) == 1 else next((f for f in fields if f.name == "value"), None)
    if chosen is None or not isinstance(chosen.dataType, StringType | BinaryType):
        raise ValueError(
            "mode 'lines' writes one string or binary column (or the one named 'value'), "
            f"not {schema.simpleString()}"
        )
    return chosen.name


def _objects_columns(schema: StructType) -> None:
    types = {f.name: f.dataType for f in schema.fields}
    if not isinstance(types.get("path"), StringType) or not isinstance(
        types.get("content"), BinaryType | StringType
    ):
        raise ValueError(
            "mode 'objects' writes a string column 'path' (each object's key under the "
            f"save path) and a binary column 'content', not {schema.simpleString()}"
        )


class S4DataWriter(DataSourceArrowWriter):
    """One object per task (lines) or per row (objects), each as the gateway
    stores it; commit writes ``_SUCCESS``, abort deletes what the job wrote."""

    def __init__(self, options: Options, schema: StructType, overwrite: bool, job: str):
        self.options, self.overwrite, self.job = options, overwrite, job
        if len(options.paths) != 1:
            raise ValueError("format 's4' saves to one path")
        self.where = options.locate(options.paths[0], directory=True)
        key = self.where.key
        self.prefix = key if not key or key.endswith("/") else key + "/"
        if options.mode == "lines":
            self.column = _lines_column(schema)
        else:
            _objects_columns(schema)
        # Refuses GPU and unknown names, and codecs a directory cannot hold, before any task.
        local = self.where.scheme == "file"
        _internal.object_codec(
            options.codec, store="LocalStore" if local else "S3Store", keeps_metadata=not local
        )

    def _backend(self) -> Backend:
        return backend_for(self.where.store())

    def write(self, iterator: Iterator[pa.RecordBatch]) -> S4Commit:
        from pyspark import TaskContext

        context = TaskContext.get()
        task = context.partitionId() if context is not None else 0
        backend, written = self._backend(), []
        level = 3 if self.options.level is None else self.options.level
        try:
            if self.options.mode == "lines":
                key = f"{self.prefix}part-{task:05d}-{self.job}.txt"
                if self._write_lines(backend, key, iterator, level):
                    written.append(key)
            else:
                for batch in iterator:
                    paths, contents = batch.column("path"), batch.column("content")
                    for path, content in zip(paths.to_pylist(), contents.to_pylist(), strict=True):
                        if content is None:
                            raise ValueError(
                                f"mode 'objects' cannot write a null content: {path!r}"
                            )
                        key = self.prefix + _relative_key(path)
                        data = content.encode() if isinstance(content, str) else content
                        put(backend, key, data, self.options.codec, level)
                        written.append(key)
                        if len(written) % ABORT_CHECK_EVERY == 0 and self._aborted(backend):
                            break
        except BaseException:
            _delete_objects(backend, written)
            raise
        if self._aborted(backend):
            # The job failed while this task wrote (Spark does not stop the
            # others, and a stopped one can see its input end as if whole).
            _delete_objects(backend, written)
            return S4Commit([])
        return S4Commit(written)

    def _aborted(self, backend: Backend) -> bool:
        return _exists(backend, self.prefix + ABORTED.format(job=self.job))

    def _write_lines(
        self, backend: Backend, key: str, batches: Iterator[pa.RecordBatch], level: int
    ) -> bool:
        """Streams the column's values, each ended by ``\\n``; False when there were none."""
        import pyarrow.compute as pc

        writer = S4Writer(backend, key, self.options.codec, level, part_size=self.options.part_size)
        rows = 0
        with writer:
            for batch in batches:
                column = batch.column(self.column)
                if column.null_count:
                    row = rows + pc.index(column.is_null(), True).as_py()
                    raise ValueError(f"mode 'lines' cannot write a null: row {row} of task {key}")
                binary = pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
                empty = pa.scalar(b"" if binary else "", column.type)
                newline = pa.scalar(b"\n" if binary else "\n", column.type)
                joined = pc.binary_join_element_wise(column, empty, newline)
                if len(joined):
                    writer.write(_values_span(joined))
                rows += len(column)
            if rows == 0:
                writer.abort()
                return False
        return True

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        backend = self._backend()
        if self.overwrite:
            kept = {k for m in messages if isinstance(m, S4Commit) for k in m.keys}
            stale = [n for n, _ in backend.listing(self.prefix) if not _hidden(n) and n not in kept]
            _delete_objects(backend, stale)
        backend.put(self.prefix + SUCCESS_MARKER, b"", {})

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        backend = self._backend()
        # First the marker: a task still writing checks it after its last PUT
        # (and between batches) and deletes what it wrote; then what is listed.
        backend.put(self.prefix + ABORTED.format(job=self.job), b"", {})
        keys = {k for m in messages if isinstance(m, S4Commit) for k in m.keys}
        # Tasks that failed, or were lost, named their objects after the job.
        keys |= {n for n, _ in backend.listing(self.prefix) if self.job in n and not _hidden(n)}
        _delete_objects(backend, sorted(keys))


def _values_span(array: pa.Array) -> memoryview:
    """The bytes of a string or binary array's values, end to end."""
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offsets, values = array.buffers()[1:3]
    fmt, width = ("<q", 8) if large else ("<i", 4)
    (first,) = unpack_from(fmt, offsets, width * array.offset)
    (last,) = unpack_from(fmt, offsets, width * (array.offset + len(array)))
    return memoryview(values)[first:last]


def _relative_key(path: Any) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or "://" in path:
        raise ValueError(
            "mode 'objects' needs each row's 'path' to be a key relative to the save path, "
            f"not {path!r}"
        )
    return path


def _delete_objects(backend: Backend, keys: list[str]) -> None:
    """Deletes each object with its sidecar, in bulk where the store can (a
    task of a failed job has seconds before Spark stops it)."""
    backend.delete_many([name for key in keys for name in (key, key + _internal.SIDECAR_SUFFIX)])


# --- The data source -----------------------------------------------------------


def _fields(schema: StructType) -> list[tuple[str, Any]]:
    return [(f.name, f.dataType) for f in schema.fields]


class S4DataSource(DataSource):
    """``spark.read.format("s4")`` and ``df.write.format("s4")``."""

    @classmethod
    def name(cls) -> str:
        return "s4"

    def _read_options(self) -> Options:
        return Options.parse(self.options, writing=False)

    def schema(self) -> StructType:
        options = self._read_options()
        return OBJECTS_SCHEMA if options.mode == "objects" else lines_schema(options.binary)

    def reader(self, schema: StructType) -> DataSourceReader:
        expected = self.schema()
        if _fields(schema) != _fields(expected):
            raise ValueError(
                f"format 's4' reads {expected.simpleString()}; leave the schema out, not "
                f"{schema.simpleString()}"
            )
        return S4Reader(self._read_options())

    def writer(self, schema: StructType, overwrite: bool) -> S4DataWriter:
        return S4DataWriter(
            Options.parse(self.options, writing=True), schema, overwrite, uuid.uuid4().hex
        )
