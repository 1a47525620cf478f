"""Stores from URLs: ``s3://bucket/key`` (also ``s3a://``), ``file:///dir/key``
and local paths, as the CLI and the Spark data source name objects.

Endpoint, region and credentials come from the arguments, else from the usual
AWS environment variables (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``, ...); obstore
reads the rest of the AWS environment itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

S3_SCHEMES = ("s3://", "s3a://")

# S3Store keywords and the environment variables that stand in for them.
_S3_SETTINGS = {
    "endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "access_key_id": ("AWS_ACCESS_KEY_ID",),
    "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "session_token": ("AWS_SESSION_TOKEN",),
}


@dataclass(frozen=True)
class Location:
    """Where a URL points: a store's root (``s3://bucket`` or a local
    directory) and a key under it. Plain data, so it pickles to executors;
    ``store()`` builds the store where it is used."""

    scheme: str  # "s3" or "file"
    root: str  # the bucket, or an absolute directory
    key: str
    settings: tuple[tuple[str, str], ...] = ()

    def url(self, key: str | None = None) -> str:
        key = self.key if key is None else key
        if self.scheme == "s3":
            return f"s3://{self.root}/{key}"
        return Path(self.root, key).as_uri() if key else Path(self.root).as_uri()

    def store(self) -> Any:
        from obstore.store import LocalStore, S3Store

        if self.scheme == "file":
            return LocalStore(self.root, mkdir=True)
        kw: dict[str, Any] = dict(self.settings)
        if str(kw.get("endpoint", "")).startswith("http://"):
            kw["client_options"] = {"allow_http": True}
        return S3Store(self.root, **kw)


def locate(url: str, *, directory: bool | None = None, **settings: str | None) -> Location:
    """The `Location` of `url`. A local path is the root itself when
    `directory` (by default: when it is a directory), else its parent holds
    the key.
    `settings` are S3Store's (`endpoint`, `region`, `access_key_id`,
    `secret_access_key`, `session_token`); those not given come from the
    environment."""
    if url.startswith(S3_SCHEMES):
        bucket, _, key = url.split("://", 1)[1].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url}")
        chosen = []
        for name, variables in _S3_SETTINGS.items():
            value = settings.get(name) or next(
                (os.environ[v] for v in variables if os.environ.get(v)), None
            )
            if value:
                chosen.append((name, value))
        return Location("s3", bucket, key, tuple(chosen))
    if url.startswith("file://"):
        url = unquote(url[len("file://") :])  # as Path.as_uri() quotes it
    elif "://" in url:
        raise ValueError(f"unsupported URL {url} (s3://, s3a://, file:// or a local path)")
    path = Path(url).absolute()
    if path.is_dir() if directory is None else directory:
        return Location("file", str(path), "")
    return Location("file", str(path.parent), path.name)
