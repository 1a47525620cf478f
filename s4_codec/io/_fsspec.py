"""``s4://`` for fsspec: a filesystem that decodes S4 objects transparently.

Registered through the ``fsspec.specs`` entry point, so both forms work::

    fsspec.open("s4::s3://bucket/key.ndjson", s3={"endpoint_url": ...})   # chained
    fsspec.open("s4://bucket/key.ndjson", target_protocol="s3",
                target_options={"endpoint_url": ...})                        # plain

pandas 2.x reads ``::`` URLs as literal data, so give it the plain form with
``storage_options={"target_protocol": "s3", "target_options": {...}}``.
``info()["size"]`` is the original size; files open as seekable S4File readers
that fetch only the frames they read; ``"wb"`` streams a multipart upload.
Sidecars (``*.s4index``) and dictionaries (``.s4dict/``) are hidden from listings.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, ClassVar

import fsspec

try:
    # fsspec's marker for chainable layers (hands them the inner path as `fo`).
    from fsspec.implementations.chained import ChainedFileSystem
except ImportError:  # older fsspec
    from fsspec import AbstractFileSystem as ChainedFileSystem  # type: ignore[assignment]

from s4_codec import _internal

from ._plan import ObjectPlan
from ._reader import S4File, normalize, plan_info, read_span, resolve
from ._stores import FsspecBackend, is_auxiliary
from ._writer import S4Writer, put


class S4FileSystem(ChainedFileSystem):
    """Decoding layer over another fsspec filesystem (``target_protocol``,
    default ``"s3"``, or ``fs=`` an instance)."""

    protocol: ClassVar[str] = "s4"  # type: ignore[misc]
    root_marker = ""

    def __init__(
        self,
        target_protocol: str | None = None,
        target_options: dict[str, Any] | None = None,
        fs: Any = None,
        fo: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if fs is None:
            fs = fsspec.filesystem(target_protocol or "s3", **(target_options or {}))
        self.fs = fs
        self.backend = FsspecBackend(fs)
        self._plans: dict[str, ObjectPlan] = {}
        self._lock = threading.Lock()

    @classmethod
    def _strip_protocol(cls, path: str) -> str:  # type: ignore[override]
        path = str(path)
        if "::" in path:
            path = path.rsplit("::", 1)[-1]
        if "://" in path:
            path = path.split("://", 1)[1]
        return path.rstrip("/")

    def _plan(self, path: str, refresh: bool = False) -> ObjectPlan:
        path = self._strip_protocol(path)
        with self._lock:
            plan = None if refresh else self._plans.get(path)
        if plan is None:
            plan = resolve(self.backend, path)
            with self._lock:
                self._plans[path] = plan
        return plan

    def invalidate_cache(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._plans.clear()
            else:
                self._plans.pop(self._strip_protocol(path), None)
        self.fs.invalidate_cache(None if path is None else self._strip_protocol(path))

    def _file_info(self, plan: ObjectPlan) -> dict[str, Any]:
        info = plan_info(plan)
        info["type"] = "file"
        info["ETag"] = info["etag"]
        if plan.head.last_modified is not None:
            info["LastModified"] = plan.head.last_modified
        return info

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        try:
            return self._file_info(self._plan(path, refresh=kwargs.get("refresh", False)))
        except FileNotFoundError:
            inner = self.fs.info(path)
            if inner.get("type") == "directory":
                return {**inner, "name": path}
            raise

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        out: list[Any] = []
        for entry in self.fs.ls(path, detail=True, **kwargs):
            name = self._strip_protocol(entry["name"])
            if is_auxiliary(name):
                continue
            if entry.get("type") == "directory":
                out.append({**entry, "name": name})
            else:
                out.append(self.info(name))
        return out if detail else [e["name"] for e in out]

    def modified(self, path: str) -> datetime:
        modified = self._plan(path).head.last_modified
        if modified is None:
            raise NotImplementedError(f"{self.fs.protocol} gives no modification time")
        return modified

    def created(self, path: str) -> datetime:
        return self.modified(path)

    def ukey(self, path: str) -> str:
        plan = self._plan(path)
        return f"{plan.head.etag}:{plan.head.size}"

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        plan = self._plan(path)
        a, b = normalize(plan.size, start, end)
        return read_span(self.backend, plan, a, b)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        put(self.backend, path, value, **kwargs)
        self.invalidate_cache(path)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: Any = None,
        autocommit: bool = True,
        cache_options: Any = None,
        **kwargs: Any,
    ) -> Any:
        path = self._strip_protocol(path)
        if mode == "rb":
            return S4File(self.backend, self._plan(path))
        if mode == "wb":
            self.invalidate_cache(path)
            return S4Writer(self.backend, path, **kwargs)
        raise ValueError(f"s4:// files open as 'rb' or 'wb', not {mode!r}")

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        self.fs.rm_file(path)
        try:
            self.fs.rm_file(path + _internal.SIDECAR_SUFFIX)
        except FileNotFoundError:
            pass
        self.invalidate_cache(path)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.fs.mkdir(self._strip_protocol(path), create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self.fs.makedirs(self._strip_protocol(path), exist_ok=exist_ok)


__all__ = ["S4FileSystem"]
