"""Writing objects as the gateway stores them: single PUT and streaming multipart."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from s4_codec import _internal

from ._stores import Backend, backend_for, dictionary_path

# Original bytes per part of a streaming upload (one S4F2 frame each). Parts of
# 5 MiB or more are padded to at least 5 MiB stored (FORMAT.md §8.4).
PART_SIZE = 8 << 20
MIN_PART = 5 << 20


def _result(
    path: str, size: int, stored: int, metadata: dict[str, str], stored_etag: str | None, **kw: Any
) -> dict[str, Any]:
    return {
        "path": path,
        "size": size,
        "stored_size": stored,
        "etag": metadata.get("s4-logical-etag") if metadata else None,
        "stored_etag": stored_etag,
        "metadata": metadata,
        **kw,
    }


def _codec_for(backend: Backend, codec: str) -> str:
    """The FORMAT name of `codec` (aliases resolved), if `backend` can hold it readably."""
    return _internal.object_codec(codec, store=backend.name, keeps_metadata=backend.has_metadata)


def _store_dictionary(backend: Backend, path: str, dictionary: bytes) -> None:
    target = dictionary_path(backend, path, _internal.CpuZstdDict(dictionary).s4_dict_id)
    try:
        backend.head(target)
        return
    except FileNotFoundError:
        pass
    sha = hashlib.sha256(dictionary).hexdigest()
    backend.put(target, dictionary, {"s4-dict-sha256": sha})


def put(
    store: Any,
    path: str,
    data: Any,
    codec: str = "cpu-zstd",
    level: int = 3,
    *,
    dictionary: Any = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Stores `data` at `path` as the gateway's single PUT would: the body and
    metadata of ``encode_s4_object`` (``s4-logical-etag`` included) and, for more
    than one frame, the ``.s4index`` sidecar bound to the body's new ETag. A
    ``cpu-zstd-dict`` object also gets its dictionary at ``.s4dict/<id>``.

    Returns ``{"etag" (the ETag the gateway serves), "stored_etag", "size",
    "stored_size", "metadata", "sidecar"}``.
    """
    backend = backend_for(store)
    codec = _codec_for(backend, codec)
    obj = _internal.encode_s4_object(data, codec, level, dictionary=dictionary, threads=threads)
    body, metadata = obj["body"], obj["metadata"]
    if dictionary is not None and "s4-dict-id" in metadata:
        _store_dictionary(backend, path, bytes(dictionary))
    etag = backend.put(path, body, metadata)
    sidecar = obj["sidecar"]
    if sidecar is not None:
        bound = _internal.bind_index(sidecar, len(body), etag)
        backend.put(path + _internal.SIDECAR_SUFFIX, bound, {})
    else:
        # A sidecar left by an earlier object at this key would be refused as
        # stale, making the new object unreadable on stores without metadata.
        backend.delete(path + _internal.SIDECAR_SUFFIX)
    size = int(metadata["s4-original-size"])
    return _result(path, size, len(body), metadata, etag, sidecar=sidecar is not None)


class S4Writer(io.RawIOBase):
    """A streaming writer (``open(store, path, "wb")``): data is cut into parts
    of ``part_size`` original bytes, each framed as the gateway's UploadPart
    stores it (one S4F2 frame, S4P1 padding up to 5 MiB), and uploaded as it
    comes, so memory stays bounded whatever the total. ``close()`` completes
    the upload, stamps ``s4-logical-etag`` (S3's composite form, over the
    original bytes) with a server-side copy where the store can, and writes the
    sidecar bound to the final ETag; ``result`` then tells what was stored.
    Parts, metadata, ETag and sidecar come from Rust's ``MultipartLedger``.

    A stream shorter than one part is written as a single PUT (``put``).
    Leaving a ``with`` block on an exception abandons the upload: nothing is
    stored.
    """

    def __init__(
        self,
        store: Any,
        path: str,
        codec: str = "cpu-zstd",
        level: int = 3,
        *,
        part_size: int = PART_SIZE,
    ):
        super().__init__()
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes (S3's minimum part)")
        self._backend = backend_for(store)
        self.name, self._codec, self._level = path, _codec_for(self._backend, codec), level
        self._part_size = part_size
        self._buf = bytearray()
        self._upload: Any = None
        self._parts = _internal.MultipartLedger(self._codec, level)
        self.result: dict[str, Any] | None = None

    @property
    def mode(self) -> str:
        return "wb"

    def __reduce__(self) -> Any:
        raise TypeError(
            f"S4Writer for {self.name!r} holds an upload in progress and cannot be pickled; "
            "write in one process, or pickle the store and open a writer where it is used"
        )

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._parts.original_size + len(self._buf)

    def write(self, data: Any) -> int:
        self._checkClosed()
        view = memoryview(data).cast("B")
        self._buf += view
        while len(self._buf) >= self._part_size:
            self._emit(memoryview(self._buf)[: self._part_size])
            del self._buf[: self._part_size]
        return len(view)

    def _emit(self, chunk: memoryview) -> None:
        part = self._parts.encode_part(chunk)
        if self._upload is None:
            metadata = self._parts.upload_metadata()
            self._upload = self._backend.open_upload(self.name, metadata, MIN_PART * 2)
        self._upload.write(part)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._upload is None:
                self.result = put(
                    self._backend, self.name, bytes(self._buf), self._codec, self._level
                )
                return
            if self._buf:
                self._emit(memoryview(self._buf))
                self._buf.clear()
            self._upload.close()
            self._finish()
        finally:
            super().close()

    def _finish(self) -> None:
        backend, path, parts = self._backend, self.name, self._parts
        metadata = parts.complete_metadata()
        stamped = backend.replace_metadata(path, metadata) if backend.has_metadata else None
        etag = stamped if stamped is not None else backend.head(path).etag
        if stamped is None:
            # Without a server-side copy the object keeps its upload-time metadata
            # (no s4-logical-etag: gateway clients see no ETag, FORMAT.md §8.5).
            metadata = parts.upload_metadata()
        backend.put(path + _internal.SIDECAR_SUFFIX, parts.sidecar(etag), {})
        self.result = _result(
            path,
            parts.original_size,
            parts.stored_size,
            metadata if backend.has_metadata else {},
            etag,
            sidecar=True,
            parts=parts.parts,
            logical_etag_stamped=stamped is not None,
        )

    def abort(self) -> None:
        """Abandons the upload; nothing is stored."""
        upload = self._upload
        # obstore's writer aborts when dropped unclosed; fsspec files discard.
        for name in ("abort", "discard"):
            if upload is not None and hasattr(upload, name):
                getattr(upload, name)()
                break
        self._upload = None
        self._buf.clear()
        super().close()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
