"""S4 objects where they live: read and write them in S3-compatible buckets,
local directories and memory, without the gateway.

``store`` is an obstore store (``S3Store``, ``GCSStore``, ``AzureStore``,
``LocalStore``, ``MemoryStore``, or any object with the same methods) or an
fsspec filesystem. Needs the ``io`` extra: ``pip install 's4-codec[io]'``.

    from obstore.store import S3Store
    import s4_codec.io as s4io

    store = S3Store("bucket", region="eu-west-1")
    s4io.put(store, "logs/a.ndjson", data)              # as the gateway's PUT stores it
    with s4io.open(store, "logs/a.ndjson") as f:        # seekable, decodes frames it reads
        f.seek(1 << 30); chunk = f.read(1 << 20)
    part = s4io.get(store, "logs/a.ndjson", 100, 200)   # only the frames covering it
    with s4io.open(store, "big.ndjson", "wb") as f:     # streaming multipart upload
        for block in source: f.write(block)
"""

from __future__ import annotations

from typing import Any

from ._reader import (
    AsyncS4File,
    S4File,
    get,
    get_async,
    open_async,
    open_reader,
    stat,
)
from ._stores import Backend, ObjectStoreError, backend_for
from ._writer import S4Writer, put

__all__ = [
    "AsyncS4File",
    "Backend",
    "ObjectStoreError",
    "S4File",
    "S4Writer",
    "backend_for",
    "get",
    "get_async",
    "open",
    "open_async",
    "put",
    "stat",
]


def open(store: Any, path: str, mode: str = "rb", **kwargs: Any) -> S4File | S4Writer:
    """``"rb"``: a seekable binary file of the original bytes (see S4File);
    ``"wb"``: a streaming writer (see S4Writer; ``codec=``, ``level=``, ``part_size=``)."""
    if mode == "rb":
        return open_reader(store, path, **kwargs)
    if mode == "wb":
        return S4Writer(store, path, **kwargs)
    raise ValueError(f"mode must be 'rb' or 'wb', not {mode!r}")
