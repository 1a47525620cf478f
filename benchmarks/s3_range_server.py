"""A small S3-compatible HTTP server for benchmarks and tests, serving objects from memory.

Why not moto: moto reads the whole stored object for every range request, so a
benchmark of many range GETs against it measures moto. Real S3 has a time to first
byte (~20 ms) and a limited rate per connection; clients win by issuing range GETs
in parallel. This server models exactly that: a range GET slices the stored bytes
with a memoryview and writes only the requested bytes, each response waits
`first_byte` seconds, and each response body is paced to `rate` bytes/second.

    with RangeServer(rate=90e6, first_byte=0.02) as server:
        server.put("bucket", "key", data, {"s4-codec": "zstd"})
        store = S3Store("bucket", endpoint=server.endpoint, region="us-east-1",
                        access_key_id="x", secret_access_key="y",
                        client_options={"allow_http": True})

Path-style requests only (``/bucket/key``); any signature is accepted. Supported:
GET (whole, ``Range: bytes=a-b | a- | -n``, If-Match), HEAD, PUT (with
``x-amz-meta-*``; plain, HTTP-chunked or aws-chunked bodies), CopyObject, DELETE,
DeleteObjects (obstore's delete), ListObjectsV2 (prefix, delimiter, pagination),
CreateBucket/HeadBucket and multipart uploads (obstore's put above 5 MB). Not
supported: versions, multi-range GETs (the whole object is served), checksums (not
verified), ACLs, virtual-hosted buckets. `first_byte` delays every response.
"""

from __future__ import annotations

import collections
import hashlib
import io
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote_plus, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

CHUNK = 64 << 10
_XML = '<?xml version="1.0" encoding="UTF-8"?>\n'


class Object(NamedTuple):
    body: bytes
    etag: str  # quoted, as in the ETag header
    mtime: float
    metadata: dict[str, str]
    content_type: str = "application/octet-stream"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _local(element: ElementTree.Element) -> str:
    return element.tag.rpartition("}")[2]  # the tag without its namespace


def _dechunk(f: Any) -> bytes:
    """Body in chunked framing (HTTP chunked or aws-chunked: ``size[;ext]\\r\\n...``)."""
    out = bytearray()
    while True:
        size = int(f.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while f.readline().strip():  # trailers, up to the empty line
                pass
            return bytes(out)
        out += f.read(size)
        f.readline()


class _Unsatisfiable(Exception):
    pass


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[a, b) for a ``Range`` header; None to serve the whole object (no header, or
    one we ignore as RFC 9110 allows); raises _Unsatisfiable for a 416."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if not first:  # bytes=-n: the last n bytes
            n = int(last)
            if n <= 0 or size == 0:
                raise _Unsatisfiable
            return max(size - n, 0), size
        a = int(first)
        b = int(last) + 1 if last else None
    except ValueError:
        return None
    if b is not None and b <= a:  # bytes=4-2: invalid, ignored
        return None
    if a >= size:
        raise _Unsatisfiable
    return a, size if b is None else min(b, size)


class RangeServer:
    """S3 from memory on 127.0.0.1; see the module docstring."""

    def __init__(self, rate: float | None = None, first_byte: float = 0.0):
        self.rate, self.first_byte = rate, first_byte
        self.buckets: dict[str, dict[str, Object]] = {}
        # upload id -> (content type, metadata, {part number: bytes})
        self._uploads: dict[str, tuple[str, dict[str, str], dict[int, bytes]]] = {}
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset_counters()

    # --- lifecycle ---
    def start(self) -> RangeServer:
        handler = type("Handler", (_Handler,), {"s3": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops listening and closes the kept-alive connections (no request is served after)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # --- objects and counters ---
    def create_bucket(self, name: str) -> None:
        with self._lock:
            self.buckets.setdefault(name, {})

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        metadata: dict[str, str] | None = None,
        content_type: str = "application/octet-stream",
        etag: str | None = None,
    ) -> Object:
        """Stores an object (creating the bucket if needed); ETag = quoted md5 hex."""
        body = bytes(body)
        etag = etag or f'"{hashlib.md5(body).hexdigest()}"'
        obj = Object(body, etag, time.time(), dict(metadata or {}), content_type)
        with self._lock:
            self.buckets.setdefault(bucket, {})[key] = obj
        return obj

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_served = 0
            self.requests: collections.Counter[tuple[str, str]] = collections.Counter()

    def _count(self, method: str, kind: str) -> None:
        with self._lock:
            self.requests[method, kind] += 1

    def _served(self, n: int) -> None:
        with self._lock:
            self.bytes_served += n


class _Handler(BaseHTTPRequestHandler):
    s3: RangeServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers then body: no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        with self.s3._lock:
            self.s3._connections.add(self.connection)
        try:
            super().handle()
        except OSError:  # the client hung up (e.g. dropped a stream), or stop()
            pass
        finally:
            with self.s3._lock:
                self.s3._connections.discard(self.connection)

    # --- plumbing ---
    def _parse(self) -> tuple[str, str, dict[str, str]]:
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        return bucket, key, query

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = _dechunk(self.rfile)
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "aws-chunked" in self.headers.get("Content-Encoding", "") or self.headers.get(
            "x-amz-content-sha256", ""
        ).startswith("STREAMING-"):
            data = _dechunk(io.BytesIO(data))
        return data

    def _send(
        self, status: int, body: bytes | memoryview = b"", headers: dict[str, str] | None = None
    ) -> None:
        if self.s3.first_byte:
            time.sleep(self.s3.first_byte)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self._write(memoryview(body))

    def _write(self, view: memoryview) -> None:
        rate, start = self.s3.rate, time.perf_counter()
        for sent in range(0, len(view), CHUNK):
            chunk = view[sent : sent + CHUNK]
            if self.command == "GET":  # counted first: the client may look once it has it
                self.s3._served(len(chunk))
            self.wfile.write(chunk)
            if rate:
                ahead = (sent + len(chunk)) / rate - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)

    def _xml(self, status: int, body: str) -> None:
        self._send(status, (_XML + body).encode(), {"Content-Type": "application/xml"})

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        resource: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = (
            f"{_XML}<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>0</RequestId></Error>"
        )
        self._send(status, body.encode(), {"Content-Type": "application/xml", **(headers or {})})

    def _lookup(self, bucket: str, key: str) -> Object | None:
        objects = self.s3.buckets.get(bucket)
        if objects is None:
            self._error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)
            return None
        obj = objects.get(key)
        if obj is None:
            self._error(404, "NoSuchKey", "The specified key does not exist.", key)
        return obj

    @staticmethod
    def _object_headers(obj: Object) -> dict[str, str]:
        headers = {
            "ETag": obj.etag,
            "Last-Modified": formatdate(obj.mtime, usegmt=True),
            "Content-Type": obj.content_type,
            "Accept-Ranges": "bytes",
        }
        headers.update({f"x-amz-meta-{k}": v for k, v in obj.metadata.items()})
        return headers

    # --- verbs ---
    def do_GET(self) -> None:
        bucket, key, query = self._parse()
        if not key:
            return self._list(bucket, query)
        obj = self._lookup(bucket, key)
        if obj is None:
            return self._count("GET", "missing")
        if self.headers.get("If-Match", obj.etag) not in (obj.etag, "*"):
            self._count("GET", "precondition")
            return self._error(412, "PreconditionFailed", "If-Match failed", key)
        headers, size = self._object_headers(obj), len(obj.body)
        try:
            span = _byte_range(self.headers.get("Range"), size)
        except _Unsatisfiable:
            self._count("GET", "unsatisfiable")
            unsatisfiable = {"Content-Range": f"bytes */{size}"}
            return self._error(416, "InvalidRange", "Range not satisfiable", key, unsatisfiable)
        if span is None:
            self._count("GET", "whole")
            return self._send(200, obj.body, headers)
        a, b = span
        self._count("GET", "range")
        headers["Content-Range"] = f"bytes {a}-{b - 1}/{size}"
        self._send(206, memoryview(obj.body)[a:b], headers)

    def do_HEAD(self) -> None:
        bucket, key, _ = self._parse()
        self._count("HEAD", "object" if key else "bucket")
        if not key:
            return self._send(200 if bucket in self.s3.buckets else 404)
        objects = self.s3.buckets.get(bucket) or {}
        obj = objects.get(key)
        if obj is None:
            return self._send(404)
        self._send(200, obj.body, self._object_headers(obj))  # HEAD: length, no body

    def do_PUT(self) -> None:
        bucket, key, query = self._parse()
        data = self._body()
        if not key:
            self._count("PUT", "bucket")
            self.s3.create_bucket(bucket)
            return self._send(200)
        if bucket not in self.s3.buckets:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)
        if "uploadId" in query:
            self._count("PUT", "part")
            upload = self.s3._uploads.get(query["uploadId"])
            if upload is None:
                return self._error(404, "NoSuchUpload", "No such upload", key)
            upload[2][int(query["partNumber"])] = data
            return self._send(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
        metadata = self._metadata()
        source = self.headers.get("x-amz-copy-source")
        if source:
            self._count("PUT", "copy")
            src_bucket, _, src_key = unquote(source.split("?")[0]).lstrip("/").partition("/")
            src = self._lookup(src_bucket, src_key)
            if src is None:
                return None
            if self.headers.get("x-amz-metadata-directive", "COPY").upper() == "COPY":
                metadata = src.metadata
            obj = self.s3.put(bucket, key, src.body, metadata, src.content_type)
            return self._xml(
                200,
                f"<CopyObjectResult><LastModified>{_iso(obj.mtime)}</LastModified>"
                f"<ETag>{escape(obj.etag)}</ETag></CopyObjectResult>",
            )
        self._count("PUT", "object")
        obj = self.s3.put(bucket, key, data, metadata, self._content_type())
        self._send(200, b"", {"ETag": obj.etag})

    def do_POST(self) -> None:
        bucket, key, query = self._parse()
        data = self._body()
        if bucket not in self.s3.buckets:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)
        if "delete" in query:  # DeleteObjects
            self._count("POST", "delete")
            keys = [e.text or "" for e in ElementTree.fromstring(data).iter() if _local(e) == "Key"]
            with self.s3._lock:
                for k in keys:
                    self.s3.buckets[bucket].pop(k, None)
            deleted = "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in keys)
            return self._xml(200, f"<DeleteResult>{deleted}</DeleteResult>")
        if "uploads" in query:  # CreateMultipartUpload
            self._count("POST", "create-upload")
            upload_id = hashlib.md5(f"{bucket}/{key}/{time.time_ns()}".encode()).hexdigest()
            self.s3._uploads[upload_id] = (self._content_type(), self._metadata(), {})
            return self._xml(
                200,
                f"<InitiateMultipartUploadResult><Bucket>{escape(bucket)}</Bucket>"
                f"<Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId>"
                "</InitiateMultipartUploadResult>",
            )
        upload = self.s3._uploads.pop(query.get("uploadId", ""), None)
        if upload is None:
            return self._error(404, "NoSuchUpload", "No such upload", key)
        self._count("POST", "complete-upload")
        content_type, metadata, parts = upload
        # Every part the client sent, in order (the request's part list is not checked).
        ordered = [parts[n] for n in sorted(parts)]
        digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in ordered)).hexdigest()
        etag = f'"{digest}-{len(ordered)}"'
        self.s3.put(bucket, key, b"".join(ordered), metadata, content_type, etag)
        self._xml(
            200,
            f"<CompleteMultipartUploadResult><Bucket>{escape(bucket)}</Bucket>"
            f"<Key>{escape(key)}</Key><ETag>{escape(etag)}</ETag>"
            "</CompleteMultipartUploadResult>",
        )

    def do_DELETE(self) -> None:
        bucket, key, query = self._parse()
        self._body()
        self._count("DELETE", "upload" if "uploadId" in query else "object")
        if "uploadId" in query:
            self.s3._uploads.pop(query["uploadId"], None)
        else:
            with self.s3._lock:
                self.s3.buckets.get(bucket, {}).pop(key, None)
        self._send(204)

    # --- helpers of the verbs ---
    def _count(self, method: str, kind: str) -> None:
        self.s3._count(method, kind)

    def _metadata(self) -> dict[str, str]:
        return {
            name[11:].lower(): value
            for name, value in self.headers.items()
            if name.lower().startswith("x-amz-meta-")
        }

    def _content_type(self) -> str:
        return self.headers.get("Content-Type") or "application/octet-stream"

    def _list(self, bucket: str, query: dict[str, str]) -> None:
        """ListObjectsV2; the continuation token is the last key returned."""
        self._count("LIST", "objects")
        objects = self.s3.buckets.get(bucket)
        if objects is None:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        after = max(query.get("continuation-token", ""), query.get("start-after", ""))
        limit = int(query.get("max-keys") or 1000)
        url = query.get("encoding-type") == "url"

        def enc(s: str) -> str:
            return escape(quote_plus(s, safe="/") if url else s)

        with self.s3._lock:
            keys = sorted(k for k in objects if k.startswith(prefix) and k > after)
        contents: list[str] = []
        prefixes: list[str] = []
        last, truncated = "", False
        for k in keys:
            cut = k.find(delimiter, len(prefix)) if delimiter else -1
            common = k[: cut + len(delimiter)] if cut >= 0 else None
            if common is not None and prefixes and prefixes[-1] == common:
                continue  # keys under one common prefix are adjacent once sorted
            if len(contents) + len(prefixes) >= limit:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last = common + "\U0010ffff"  # the next page starts after that prefix
                continue
            obj = objects[k]
            contents.append(
                f"<Contents><Key>{enc(k)}</Key><LastModified>{_iso(obj.mtime)}</LastModified>"
                f"<ETag>{escape(obj.etag)}</ETag><Size>{len(obj.body)}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
            last = k
        body = [
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket)}</Name><Prefix>{enc(prefix)}</Prefix>"
            f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount><MaxKeys>{limit}</MaxKeys>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
            *contents,
            *(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>" for p in prefixes),
        ]
        if delimiter:
            body.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        if url:
            body.append("<EncodingType>url</EncodingType>")
        if truncated:
            body.append(f"<NextContinuationToken>{escape(last)}</NextContinuationToken>")
        self._xml(200, "".join(body) + "</ListBucketResult>")


def main() -> None:
    """Serves until killed, in a process of its own (so that its CPU is not the
    client's); prints the endpoint on the first line of stdout."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=None, help="bytes/s per connection")
    parser.add_argument("--first-byte", type=float, default=0.0, help="seconds before a response")
    args = parser.parse_args()
    server = RangeServer(rate=args.rate, first_byte=args.first_byte).start()
    print(server.endpoint, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
