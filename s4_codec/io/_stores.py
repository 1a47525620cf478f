"""Adapters over the object-store clients: obstore (any obspec-style store) and fsspec.

The reader and writer speak only to :class:`Backend`, so the S4 logic is written
once. Adapters convert results and errors, nothing else: a missing object is
``FileNotFoundError``, any other transport failure is :class:`ObjectStoreError`
naming the key and the byte range.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from s4_codec import _internal

# User metadata the S4 format defines starts with this (FORMAT.md §8.5).
S4_META_PREFIX = "s4-"
# Dictionaries live at the bucket root under this prefix (FORMAT.md §6).
DICT_PREFIX = ".s4dict/"
# Threads of the one pool that runs blocking store requests for every reader
# and writer of the process (decoding runs on s4-codec's Rust pool instead).
IO_THREADS = 4
# Streamed responses are handed over in pieces of at least this many bytes.
STREAM_CHUNK = 1 << 20

_io_pool: ThreadPoolExecutor | None = None
_io_pool_lock = threading.Lock()


# obstore runs every request on one tokio runtime per process, started by the
# first request and never restarted: a child forked after that has the
# runtime's state but none of its threads, so its requests would wait forever.
_obstore_started = False
_obstore_forked = False


def _after_fork_in_child() -> None:
    """The parent's I/O pool threads are not in the child (work queued on its
    copy would wait forever) and its lock may have been held; obstore's
    runtime, if started, is lost."""
    global _io_pool, _io_pool_lock, _obstore_forked
    _io_pool, _io_pool_lock = None, threading.Lock()
    _obstore_forked = _obstore_forked or _obstore_started


os.register_at_fork(after_in_child=_after_fork_in_child)


def io_executor() -> ThreadPoolExecutor:
    """The process-wide pool for blocking store requests, created on first use."""
    global _io_pool
    with _io_pool_lock:
        if _io_pool is None:
            _io_pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="s4-io")
        return _io_pool


def is_auxiliary(name: str) -> bool:
    """Sidecars and dictionaries: stored next to objects, not objects themselves."""
    return name.endswith(_internal.SIDECAR_SUFFIX) or f"/{DICT_PREFIX}" in f"/{name}"


class ObjectStoreError(OSError):
    """A request to the object store failed (network, permissions, server error).

    ``path`` is the key and ``byte_range`` the ``(start, end)`` stored bytes asked
    for (``None`` for whole-object requests). Nothing read so far is returned.
    """

    def __init__(self, message: str, path: str, byte_range: tuple[int, int] | None = None):
        super().__init__(message)
        self.path = path
        self.byte_range = byte_range


@dataclass
class Head:
    """What one HEAD tells: stored size, ETag (quotes stripped), user metadata."""

    size: int
    etag: str | None
    metadata: dict[str, str]
    last_modified: datetime | None = None


def _strip(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def _s4_keys(attributes: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (attributes or {}).items():
        low = str(key).lower()
        if low.startswith("x-amz-meta-"):
            low = low[len("x-amz-meta-") :]
        if low.startswith(S4_META_PREFIX):
            out[low] = str(value)
    return out


def _describe(path: str, byte_range: tuple[int, int] | None) -> str:
    return f"{path} bytes {byte_range[0]}-{byte_range[1]}" if byte_range else path


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        from obstore.exceptions import BaseError

        errors.append(BaseError)
    except ImportError:
        pass
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    except ImportError:
        pass
    return tuple(errors)


TRANSPORT_ERRORS = _transport_errors()


def wrap_error(exc: BaseException, path: str, byte_range: tuple[int, int] | None = None) -> OSError:
    """The exception to raise for a failed request: FileNotFoundError for a
    missing object, ObjectStoreError (an OSError) naming key and range otherwise."""
    name = type(exc).__name__
    if isinstance(exc, FileNotFoundError) or name in ("NotFoundError", "NoSuchKey"):
        return FileNotFoundError(2, f"no such object: {path}", path)
    response = getattr(exc, "response", None) if name == "ClientError" else None
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    if code in ("NoSuchKey", "404", "NotFound"):
        return FileNotFoundError(2, f"no such object: {path}", path)
    return ObjectStoreError(f"{_describe(path, byte_range)}: {name}: {exc}", path, byte_range)


class Backend:
    """The operations the S4 layer needs from a store."""

    #: False where the store cannot keep user metadata (local files): S4 bodies
    #: are then recognised by their first bytes.
    has_metadata = True
    #: True where the first path component is the bucket (s3fs).
    paths_have_bucket = False
    name = "store"

    @property
    def source(self) -> Any:
        """What ``backend_for`` was given: a file pickles this and reopens."""
        return self

    def _call(self, path: str, byte_range: tuple[int, int] | None, fn: Any, *args: Any, **kw: Any):
        try:
            return fn(*args, **kw)
        except TRANSPORT_ERRORS as exc:
            raise wrap_error(exc, path, byte_range) from exc

    def _delete_present(self, remove: Any, path: str) -> None:
        """Deletes `path` with `remove`; an object already gone is no error."""
        try:
            self._call(path, None, remove, path)
        except FileNotFoundError:
            pass

    def head(self, path: str) -> Head:
        raise NotImplementedError

    def get(self, path: str) -> bytes | memoryview:
        raise NotImplementedError

    def get_range(self, path: str, byte_range: tuple[int, int]) -> bytes | memoryview:
        """Stored bytes [a, b) of `path`, exactly that many (an empty range asks nothing)."""
        raise NotImplementedError

    def stream_range(self, path: str, byte_range: tuple[int, int]) -> Iterator[Any]:
        """Stored bytes [a, b) of `path` in one request, as buffers in order as
        they arrive (by default, the whole range at once)."""
        yield self.get_range(path, byte_range)

    def put(self, path: str, data: bytes, metadata: Mapping[str, str]) -> str | None:
        """Stores `data`; returns the new ETag (quotes stripped) when the store gives one."""
        raise NotImplementedError

    def open_upload(self, path: str, metadata: Mapping[str, str], part_bytes: int) -> Any:
        """A writable binary file that uploads in parts of about `part_bytes`."""
        raise NotImplementedError

    def replace_metadata(self, path: str, metadata: Mapping[str, str]) -> str | None:
        """Server-side copy of the object onto itself with new metadata; the new
        ETag, or None when the store cannot do it (nothing changed then)."""
        return None

    def delete(self, path: str) -> None:
        raise NotImplementedError

    def delete_many(self, paths: list[str]) -> None:
        """Deletes every path present, several requests at a time."""
        for _ in io_executor().map(self.delete, paths):
            pass

    def listing(self, prefix: str) -> list[tuple[str, int]]:
        """(key, stored size) of every object under `prefix`."""
        raise NotImplementedError

    # Async twins: by default the sync call, run on the I/O pool.
    async def head_async(self, path: str) -> Head:
        return await asyncio.get_running_loop().run_in_executor(io_executor(), self.head, path)

    async def get_async(self, path: str) -> bytes | memoryview:
        return await asyncio.get_running_loop().run_in_executor(io_executor(), self.get, path)

    async def get_range_async(self, path: str, byte_range: tuple[int, int]) -> bytes | memoryview:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(io_executor(), self.get_range, path, byte_range)


class ObstoreBackend(Backend):
    """Any store with obspec's method names (obstore's S3Store, GCSStore,
    AzureStore, LocalStore, MemoryStore, or a wrapper around one)."""

    def __init__(self, store: Any, s3_client: Any = None):
        self.store = store
        kind = type(store).__name__
        self.name = kind
        self.has_metadata = kind != "LocalStore"
        self._s3_client = s3_client
        # A boto3 client made here serves only the process that made it:
        # its connection pool's sockets would be shared with a forked child.
        self._made_client_pid: int | None = None

    @property
    def source(self) -> Any:
        return self.store

    def _runtime(self, path: str) -> None:
        """Refuses, instead of hanging, a request obstore cannot serve here."""
        global _obstore_started
        if _obstore_forked and self.name != "MemoryStore":
            raise ObjectStoreError(
                f"{path}: this process was forked after obstore had served requests in its "
                "parent, and obstore's runtime does not survive fork (its requests would wait "
                "forever); start workers with the 'spawn' or 'forkserver' method, or fork "
                "before the first request (MemoryStore and fsspec filesystems work either way)",
                path,
            )
        _obstore_started = True

    def _call(self, path: str, byte_range: tuple[int, int] | None, fn: Any, *args: Any, **kw: Any):
        self._runtime(path)
        return super()._call(path, byte_range, fn, *args, **kw)

    @staticmethod
    def _head(result: Any) -> Head:
        meta = result.meta
        return Head(
            size=meta["size"],
            etag=_strip(meta.get("e_tag")),
            metadata=_s4_keys(result.attributes),
            last_modified=meta.get("last_modified"),
        )

    def head(self, path: str) -> Head:
        # store.head() carries no user metadata; a GET with head=True does (one HEAD request).
        return self._head(self._call(path, None, self.store.get, path, options={"head": True}))

    def get(self, path: str) -> bytes | memoryview:
        result = self._call(path, None, self.store.get, path)
        return memoryview(self._call(path, None, result.bytes))

    def get_range(self, path: str, byte_range: tuple[int, int]) -> bytes | memoryview:
        a, b = byte_range
        if b <= a:  # obstore refuses start == end
            return b""
        return memoryview(self._call(path, byte_range, self.store.get_range, path, start=a, end=b))

    def stream_range(self, path: str, byte_range: tuple[int, int]) -> Iterator[Any]:
        a, b = byte_range
        if b <= a:
            return
        result = self._call(path, byte_range, self.store.get, path, options={"range": (a, b)})
        chunks = iter(result.stream(min_chunk_size=STREAM_CHUNK))
        while True:
            chunk = self._call(path, byte_range, next, chunks, None)
            if chunk is None:
                return
            yield chunk

    async def head_async(self, path: str) -> Head:
        self._runtime(path)
        try:
            return self._head(await self.store.get_async(path, options={"head": True}))
        except TRANSPORT_ERRORS as exc:
            raise wrap_error(exc, path) from exc

    async def get_async(self, path: str) -> bytes | memoryview:
        self._runtime(path)
        try:
            result = await self.store.get_async(path)
            return memoryview(await result.bytes_async())
        except TRANSPORT_ERRORS as exc:
            raise wrap_error(exc, path) from exc

    async def get_range_async(self, path: str, byte_range: tuple[int, int]) -> bytes | memoryview:
        a, b = byte_range
        if b <= a:
            return b""
        self._runtime(path)
        try:
            return memoryview(await self.store.get_range_async(path, start=a, end=b))
        except TRANSPORT_ERRORS as exc:
            raise wrap_error(exc, path, byte_range) from exc

    def put(self, path: str, data: bytes, metadata: Mapping[str, str]) -> str | None:
        kw = {"attributes": dict(metadata)} if self.has_metadata and metadata else {}
        result = self._call(path, None, self.store.put, path, data, **kw)
        return _strip(result.get("e_tag"))

    def open_upload(self, path: str, metadata: Mapping[str, str], part_bytes: int) -> Any:
        import obstore

        self._runtime(path)
        kw = {"attributes": dict(metadata)} if self.has_metadata and metadata else {}
        try:
            # BufWriter: one PUT below buffer_size, else a multipart upload with at
            # most 4 parts in flight (bounded memory).
            return _ObstoreUpload(
                obstore.open_writer(
                    self.store, path, buffer_size=part_bytes, max_concurrency=4, **kw
                ),
                self,
                path,
            )
        except TRANSPORT_ERRORS as exc:
            raise wrap_error(exc, path) from exc

    def replace_metadata(self, path: str, metadata: Mapping[str, str]) -> str | None:
        if self.name == "MemoryStore":
            # In-process: a re-put is the copy.
            body = self.get(path)
            return self.put(path, bytes(body), metadata)
        if self.name != "S3Store":
            return None
        client, bucket, key = self._boto3_target(path)
        if client is None:
            return None
        return s3_replace_metadata(client, bucket, key, metadata, self.head(path).size)

    def _boto3_target(self, path: str) -> tuple[Any, str, str]:
        try:
            config = dict(self.store.config)
            options = dict(self.store.client_options or {})
        except BaseException as exc:  # noqa: B036 - obstore panics on some configs
            if type(exc).__name__ != "PanicException":
                raise
            config, options = {}, {}
        bucket = config.get("bucket") or config.get("aws_bucket") or ""
        prefix = str(self.store.prefix or "").strip("/")
        key = f"{prefix}/{path}" if prefix else path
        client = self._s3_client
        if client is None or self._made_client_pid not in (None, os.getpid()):
            try:
                import boto3
            except ImportError:
                return None, bucket, key
            kw: dict[str, Any] = {}
            for ours, theirs in (
                ("endpoint", "endpoint_url"),
                ("region", "region_name"),
                ("access_key_id", "aws_access_key_id"),
                ("secret_access_key", "aws_secret_access_key"),
                ("session_token", "aws_session_token"),
            ):
                value = config.get(ours) or config.get("aws_" + ours)
                if value:
                    kw[theirs] = value
            if str(options.get("allow_http", "")).lower() == "true" and "endpoint_url" in kw:
                kw["use_ssl"] = False
            client = self._s3_client = boto3.client("s3", **kw)
            self._made_client_pid = os.getpid()
        return client, bucket, key

    def delete(self, path: str) -> None:
        self._delete_present(self.store.delete, path)

    def delete_many(self, paths: list[str]) -> None:
        # One request per 1000 keys where the store deletes in bulk (S3
        # DeleteObjects, which passes over missing keys); else one by one.
        for start in range(0, len(paths), 1000):
            batch = paths[start : start + 1000]
            try:
                self._call(batch[0], None, self.store.delete, batch)
            except FileNotFoundError:
                super().delete_many(batch)

    def listing(self, prefix: str) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        self._runtime(prefix)
        try:
            for batch in self.store.list(prefix or None):
                out += [(m["path"], m["size"]) for m in batch]
        except TRANSPORT_ERRORS as exc:
            raise wrap_error(exc, prefix) from exc
        return out


class _ObstoreUpload(io.RawIOBase):
    def __init__(self, writer: Any, backend: ObstoreBackend, path: str):
        self._w, self._backend, self._path = writer, backend, path

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            self._w.write(data)
        except TRANSPORT_ERRORS as exc:
            raise wrap_error(exc, self._path) from exc
        return len(memoryview(data))

    def close(self) -> None:
        if not self.closed:
            try:
                self._w.close()
            except TRANSPORT_ERRORS as exc:
                raise wrap_error(exc, self._path) from exc
            finally:
                super().close()

    def abort(self) -> None:
        # Dropping an unclosed obstore writer aborts its multipart upload.
        super().close()
        self._w = None


def s3_replace_metadata(
    client: Any, bucket: str, key: str, metadata: Mapping[str, str], size: int
) -> str | None:
    """CopyObject onto itself with MetadataDirective=REPLACE (S3 copies up to
    5 GiB in one request); larger objects go through a multipart copy."""
    try:
        if size <= 5 << 30:
            out = client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                Metadata=dict(metadata),
                MetadataDirective="REPLACE",
            )
            return _strip(out["CopyObjectResult"]["ETag"])
        client.copy(
            {"Bucket": bucket, "Key": key},
            bucket,
            key,
            ExtraArgs={"Metadata": dict(metadata), "MetadataDirective": "REPLACE"},
        )
        return _strip(client.head_object(Bucket=bucket, Key=key)["ETag"])
    except TRANSPORT_ERRORS as exc:
        raise wrap_error(exc, key) from exc


class FsspecBackend(Backend):
    """Any fsspec filesystem; user metadata where the filesystem keeps it (s3fs)."""

    def __init__(self, fs: Any):
        self.fs = fs
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        self.name = f"fsspec:{protocols[0]}"
        self.is_s3 = any(p in ("s3", "s3a") for p in protocols)
        self.has_metadata = self.paths_have_bucket = self.is_s3

    @property
    def source(self) -> Any:
        return self.fs

    def head(self, path: str) -> Head:
        info = self._call(path, None, self.fs.info, path)
        if info.get("type") == "directory":
            raise FileNotFoundError(2, f"no such object: {path}", path)
        metadata = {}
        if self.is_s3:
            metadata = _s4_keys(self._call(path, None, self.fs.metadata, path))
        modified = info.get("LastModified") or info.get("mtime") or info.get("created")
        if isinstance(modified, int | float):
            modified = datetime.fromtimestamp(modified, UTC)
        return Head(
            size=int(info["size"]),
            etag=_strip(info.get("ETag") or info.get("etag")),
            metadata=metadata,
            last_modified=modified if isinstance(modified, datetime) else None,
        )

    def get(self, path: str) -> bytes | memoryview:
        return self._call(path, None, self.fs.cat_file, path)

    def get_range(self, path: str, byte_range: tuple[int, int]) -> bytes | memoryview:
        a, b = byte_range
        if b <= a:
            return b""
        data = self._call(path, byte_range, self.fs.cat_file, path, start=a, end=b)
        if len(data) != b - a:
            raise ObjectStoreError(
                f"{_describe(path, byte_range)}: short read ({len(data)} bytes)", path, byte_range
            )
        return data

    def put(self, path: str, data: bytes, metadata: Mapping[str, str]) -> str | None:
        kw = {"Metadata": dict(metadata)} if self.is_s3 and metadata else {}
        self._call(path, None, self.fs.pipe_file, path, bytes(data), **kw)
        self.fs.invalidate_cache(path)
        return self.head(path).etag if self.is_s3 else None

    def open_upload(self, path: str, metadata: Mapping[str, str], part_bytes: int) -> Any:
        kw: dict[str, Any] = {"block_size": max(part_bytes, 5 << 20)}
        if self.is_s3 and metadata:
            kw["s3_additional_kwargs"] = {"Metadata": dict(metadata)}
        return self._call(path, None, self.fs.open, path, "wb", **kw)

    def replace_metadata(self, path: str, metadata: Mapping[str, str]) -> str | None:
        if not self.is_s3:
            return None
        bucket, key, _ = self.fs.split_path(path)
        client = _SyncS3(self.fs)
        etag = s3_replace_metadata(client, bucket, key, metadata, self.head(path).size)
        self.fs.invalidate_cache(path)
        return etag

    def delete(self, path: str) -> None:
        self._delete_present(self.fs.rm_file, path)
        self.fs.invalidate_cache(path)

    def listing(self, prefix: str) -> list[tuple[str, int]]:
        try:
            found = self.fs.find(prefix, detail=True)
        except TRANSPORT_ERRORS as exc:
            raise wrap_error(exc, prefix) from exc
        return [(name, int(info.get("size") or 0)) for name, info in sorted(found.items())]


class _SyncS3:
    """The two botocore calls s3_replace_metadata needs, run on s3fs's own
    (async) client and event loop, so that it uses the same endpoint and credentials."""

    def __init__(self, fs: Any):
        self.fs = fs

    def copy_object(self, **kw: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, self.fs._call_s3, "copy_object", **kw)

    def head_object(self, **kw: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, self.fs._call_s3, "head_object", **kw)

    def copy(self, source: Mapping[str, str], bucket: str, key: str, ExtraArgs: Any) -> None:
        raise ObjectStoreError(
            "copies over 5 GiB through s3fs are not supported; use an obstore S3Store",
            key,
        )


def backend_for(store: Any, *, s3_client: Any = None) -> Backend:
    """The adapter for `store`: a Backend as is, an fsspec filesystem, or any
    obspec-style store (obstore's stores and wrappers with the same methods)."""
    if isinstance(store, Backend):
        return store
    try:
        from fsspec import AbstractFileSystem

        if isinstance(store, AbstractFileSystem):
            return FsspecBackend(store)
    except ImportError:
        pass
    if hasattr(store, "get_range") and hasattr(store, "get"):
        return ObstoreBackend(store, s3_client=s3_client)
    raise TypeError(
        "store must be an obstore store (S3Store, LocalStore, MemoryStore, ...), an object "
        f"with the same methods, or an fsspec filesystem, not {type(store).__name__}"
    )


def dictionary_path(backend: Backend, path: str, dict_id: str) -> str:
    """Where the dictionary `dict_id` of the object at `path` is stored."""
    if backend.paths_have_bucket:
        bucket = path.lstrip("/").split("/", 1)[0]
        return f"{bucket}/{DICT_PREFIX}{dict_id}"
    return DICT_PREFIX + dict_id
