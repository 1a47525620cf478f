"""s4_codec.io against real stores: a moto S3 server over HTTP (obstore S3Store and
s3fs), LocalStore and MemoryStore. Bytes and requests are counted by a wrapper
around the real store."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import threading
from datetime import timedelta

import pytest
from conftest import S3_BUCKET, require

import s4_codec
from s4_codec import _internal

obstore = require("obstore")
from obstore.store import LocalStore, MemoryStore  # noqa: E402

import s4_codec.io as s4io  # noqa: E402

MiB = 1 << 20
SIZES = [0, 1, 4 * MiB, 4 * MiB + 1, 9 * MiB]
_BLOCK = bytes((i * 31 + (i >> 7)) & 0xFF for i in range(1 << 16))


def payload(n: int, seed: int = 0) -> bytes:
    """Compressible, position-dependent bytes, made cheaply."""
    head = seed.to_bytes(4, "little")
    return ((head + _BLOCK) * (n // (len(_BLOCK) + 4) + 1))[:n]


class Counting:
    """Wraps a real obstore store, counting requests and the bytes they return."""

    def __init__(self, store):
        self.store = store
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.fail_after: int | None = None

    def _log(self, op, path, n):
        with self.lock:
            self.requests.append((op, path, n))
            if self.fail_after is not None and len(self.requests) > self.fail_after:
                raise ConnectionResetError(104, "connection reset by peer")

    @property
    def bytes(self) -> int:
        return sum(n for _, _, n in self.requests)

    def reset(self):
        self.requests.clear()

    def get(self, path, options=None):
        options = options or {}
        op = "head" if options.get("head") else "range" if "range" in options else "get"
        try:
            result = self.store.get(path, options=options)
        except FileNotFoundError:
            self._log(op, path, 0)  # a 404 is a request too
            raise
        first, end = result.range
        self._log(op, path, 0 if op == "head" else end - first)
        return result

    def get_range(self, path, *, start, end):
        out = self.store.get_range(path, start=start, end=end)
        self._log("range", path, len(out))
        return out

    def get_ranges(self, path, *, starts, ends):
        out = self.store.get_ranges(path, starts=starts, ends=ends)
        self._log("ranges", path, sum(len(x) for x in out))
        return out

    def put(self, path, data, **kw):
        return self.store.put(path, data, **kw)

    def delete(self, path):
        return self.store.delete(path)

    def list(self, prefix=None):
        return self.store.list(prefix)


@pytest.fixture(params=["memory", "local", "s3", "s3fs"])
def store(request, tmp_path):
    if request.param == "memory":
        return MemoryStore()
    if request.param == "local":
        return LocalStore(str(tmp_path))
    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    return _S3fsRooted(request.getfixturevalue("s3fs_fs"))


class _S3fsRooted:
    """s3fs paths carry the bucket; tests use bucket-relative keys everywhere."""

    def __init__(self, fs):
        self.fs = fs

    def key(self, path: str) -> str:
        return f"{S3_BUCKET}/{path}"


def key_of(store, path: str) -> tuple[object, str]:
    if isinstance(store, _S3fsRooted):
        return store.fs, store.key(path)
    return store, path


def raw_put(store, path: str, data: bytes, metadata: dict[str, str] | None = None):
    """A plain PUT, no S4 logic: what any client would do."""
    target, key = key_of(store, path)
    backend = s4io.backend_for(target)
    return backend.put(key, data, metadata or {})


# --- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("writer", ["put", "stream", "encode+put"])
def test_round_trip(store, size, writer):
    data = payload(size, seed=size)
    target, key = key_of(store, f"rt/{writer}/{size}")
    if writer == "put":
        result = s4io.put(target, key, data, level=1)
        assert result["size"] == size
    elif writer == "stream":
        with s4io.open(target, key, "wb", level=1, part_size=5 * MiB) as w:
            for i in range(0, size, 3 * MiB):
                w.write(data[i : i + 3 * MiB])
        result = w.result
        assert result is not None and result["size"] == size
    else:
        # A plain client: PUT body + metadata (a LocalStore keeps none: the body is
        # recognised by its magic), then the sidecar bound to the new ETag.
        obj = s4_codec.encode_s4_object(data, level=1)
        backend = s4io.backend_for(target)
        etag = backend.put(key, obj["body"], obj["metadata"])
        if obj["sidecar"] is not None:
            bound = s4_codec.bind_index(obj["sidecar"], len(obj["body"]), etag)
            backend.put(key + ".s4index", bound, {})
    assert s4io.get(target, key) == data
    with s4io.open(target, key) as f:
        assert f.size == size and f.readable() and f.seekable()
        assert f.read() == data
        f.seek(size // 3)
        assert f.read(1000) == data[size // 3 : size // 3 + 1000]
    if size:
        assert s4io.get(target, key, size - 5) == data[-5:]
        assert s4io.get(target, key, 1, size // 2) == data[1 : size // 2]


def test_logical_etags_and_sidecar_binding(s3_store, s3_client):
    data = payload(9 * MiB)
    result = s4io.put(s3_store, "etag/single", data, level=1)
    head = s3_client.head_object(Bucket=S3_BUCKET, Key="etag/single")
    assert head["Metadata"]["s4-logical-etag"] == hashlib.md5(data).hexdigest() == result["etag"]
    sidecar = s3_client.get_object(Bucket=S3_BUCKET, Key="etag/single.s4index")["Body"].read()
    assert s4_codec.decode_index(sidecar)["source_etag"] == head["ETag"].strip('"')

    part = 5 * MiB
    with s4io.open(s3_store, "etag/multi", "wb", level=1, part_size=part) as w:
        w.write(data)
    head = s3_client.head_object(Bucket=S3_BUCKET, Key="etag/multi")
    parts = [data[i : i + part] for i in range(0, len(data), part)]
    composite = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert head["Metadata"]["s4-logical-etag"] == f"{composite}-{len(parts)}" == w.result["etag"]
    assert head["Metadata"]["s4-multipart"] == "true" and "s4-crc32c" not in head["Metadata"]
    assert w.result["logical_etag_stamped"]
    body = s3_client.get_object(Bucket=S3_BUCKET, Key="etag/multi")["Body"].read()
    # The gateway's multipart layout: one frame per part, S4P1 padding to >= 5 MiB.
    frames = list(s4_codec.frame_iter(body))
    assert [h["original_size"] for h, _ in frames] == [len(p) for p in parts]
    assert body[len(frames[0][1]) + 28 : len(frames[0][1]) + 32] == s4_codec.PADDING_MAGIC
    assert s4_codec.decode_s4_object(body, head["Metadata"]) == data  # the gateway's GET rules
    sidecar = s3_client.get_object(Bucket=S3_BUCKET, Key="etag/multi.s4index")["Body"].read()
    assert s4_codec.decode_index(sidecar)["source_etag"] == head["ETag"].strip('"')


def test_large_object_stream_and_put(s3_store):
    data = payload(130 * MiB + 3, seed=7)
    with s4io.open(s3_store, "big/stream", "wb", level=1) as w:
        view = memoryview(data)
        for i in range(0, len(data), 7 * MiB):
            w.write(view[i : i + 7 * MiB])
    assert w.result["parts"] == 17
    s4io.put(s3_store, "big/put", data, level=1)
    for key in ("big/stream", "big/put"):
        assert s4io.get(s3_store, key) == data
        assert (
            s4io.get(s3_store, key, 100 * MiB, 101 * MiB + 17) == data[100 * MiB : 101 * MiB + 17]
        )


def test_multipart_body_without_sidecar_walks_headers():
    data = payload(17 * MiB + 5)
    sizes = [6 * MiB, 2 * MiB, 6 * MiB, len(data) - 14 * MiB]
    parts, offset = [], 0
    for n in sizes:
        parts.append(_internal.encode_s4_part(data[offset : offset + n], "cpu-zstd", 1))
        offset += n
    body = b"".join(parts)
    real = MemoryStore()
    real.put("mp", body, attributes={"s4-codec": "cpu-zstd", "s4-multipart": "true"})
    store = Counting(real)
    info = s4io.stat(store, "mp")
    assert info["sidecar"] == "walked" and info["frames"] == 4 and info["size"] == len(data)
    # head + sidecar probe + one header per data frame and per padding frame
    assert len(store.requests) == 2 + 4 + 2
    store.reset()
    assert s4io.get(store, "mp", 7 * MiB, 9 * MiB) == data[7 * MiB : 9 * MiB]
    assert len(store.requests) == 3  # head, sidecar probe, frames (walk cached)
    assert s4io.get(store, "mp") == data


def test_gzip_passthrough_and_plain_objects(store):
    data = payload(3 * MiB + 11)
    target, _ = key_of(store, "x")
    backend = s4io.backend_for(target)
    if not backend.has_metadata:
        with pytest.raises(ValueError, match="metadata"):
            s4io.put(target, key_of(store, "gz")[1], data, "cpu-gzip")
    else:
        for codec in ("cpu-gzip", "passthrough"):
            _, key = key_of(store, f"kinds/{codec}")
            obj = s4_codec.encode_s4_object(data, codec)
            backend.put(key, obj["body"], obj["metadata"])
            assert s4io.get(target, key) == data
            assert s4io.get(target, key, 10, 20) == data[10:20]
            assert s4io.stat(target, key)["kind"] == "whole"
    _, key = key_of(store, "kinds/plain")
    backend.put(key, data, {})
    assert s4io.stat(target, key)["kind"] == "plain"
    assert s4io.get(target, key, 5, 6 * MiB) == data[5:]


def test_random_ranges_equal_slicing():
    data = payload(21 * MiB + 7)
    store = MemoryStore()
    s4io.put(store, "r", data, level=1)
    rng = random.Random(11)
    with s4io.open(store, "r") as f:
        for _ in range(500):
            a = rng.randrange(len(data) + 1)
            b = rng.randrange(a, min(len(data), a + rng.choice([1, 700, 5 * MiB])) + 1)
            assert s4io.get(store, "r", a, b) == data[a:b]
            f.seek(a)
            assert f.read(b - a) == data[a:b]


def test_file_semantics():
    data = b"".join(b"line %d\n" % i for i in range(300_000))
    store = MemoryStore()
    s4io.put(store, "lines", data, level=1)
    with s4io.open(store, "lines") as f:
        assert f.seek(0, io.SEEK_END) == len(data)
        assert f.seek(10, io.SEEK_END) == len(data) + 10 and f.read() == b"" and f.read(5) == b""
        with pytest.raises(ValueError):
            f.seek(-1)
        with pytest.raises(ValueError):
            f.seek(0, 7)
        f.seek(-8, io.SEEK_END)
        assert f.read() == data[-8:]
        f.seek(3)
        f.seek(4, io.SEEK_CUR)
        assert f.tell() == 7
        buf = bytearray(10)
        assert f.readinto(buf) == 10 and bytes(buf) == data[7:17]
        f.seek(0)
        assert list(f) == data.splitlines(keepends=True)
        f.seek(0)
        assert f.readline() == b"line 0\n"
    assert f.closed
    with pytest.raises(ValueError):
        f.read()
    assert s4io.get(store, "lines", -10) == data[-10:]
    assert s4io.get(store, "lines", 50, 10) == b""
    assert s4io.get(store, "lines", 10, 10**12) == data[10:]


def test_bytes_fetched_are_proportional(s3_store):
    data = payload(64 * MiB)
    s4io.put(s3_store, "prop", data, level=1)
    store = Counting(s3_store)
    a = 30 * MiB + 12345
    assert s4io.get(store, "prop", a, a + MiB) == data[a : a + MiB]
    sidecar = bytes(s3_store.get("prop.s4index").bytes())
    entries = s4_codec.decode_index(sidecar)["entries"]
    covering = [
        e
        for e in entries
        if e["original_offset"] < a + MiB and a < e["original_offset"] + e["original_size"]
    ]
    assert len(store.requests) <= 3
    assert store.bytes <= sum(e["compressed_size"] for e in covering) + len(sidecar)
    # A Parquet-like pattern: footer first, then one column chunk.
    store.reset()
    with s4io.open(store, "prop") as f:
        f.seek(-8, io.SEEK_END)
        assert f.read(8) == data[-8:]
        f.seek(MiB)
        assert f.read(100) == data[MiB : MiB + 100]
    frames = {e["compressed_size"] for e in entries}
    assert store.bytes <= 2 * max(frames) + len(sidecar)


def test_async_twins(s3_store):
    data = payload(9 * MiB + 3)
    s4io.put(s3_store, "async", data, level=1)

    async def main():
        whole = await s4io.get_async(s3_store, "async")
        part = await s4io.get_async(s3_store, "async", 5 * MiB, 5 * MiB + 10)
        async with await s4io.open_async(s3_store, "async") as f:
            f.seek(4 * MiB - 3)
            chunk = await f.read(6)
            rest = await f.read()
        return whole, part, chunk, rest, f.size

    whole, part, chunk, rest, size = asyncio.run(main())
    assert whole == data and part == data[5 * MiB : 5 * MiB + 10]
    assert chunk == data[4 * MiB - 3 : 4 * MiB + 3] and rest == data[4 * MiB + 3 :]
    assert size == len(data)


def test_dictionary_objects(s3_store, s3_client):
    samples = [b'{"id": %d, "name": "user-%d", "ok": true}' % (i, i * 7) for i in range(3000)]
    dictionary = s4_codec.train_dictionary(samples, size=4096)
    data = b"\n".join(samples[:200])
    result = s4io.put(s3_store, "dict/obj", data, "cpu-zstd-dict", dictionary=dictionary)
    dict_id = result["metadata"]["s4-dict-id"]
    stored = s3_client.get_object(Bucket=S3_BUCKET, Key=f".s4dict/{dict_id}")["Body"].read()
    assert stored == dictionary
    assert s4io.get(s3_store, "dict/obj") == data
    # A dictionary object whose content is not its id is refused.
    other = s4_codec.train_dictionary(samples[1000:], size=2048)
    obj = s4_codec.encode_s4_object(data, "cpu-zstd-dict", dictionary=other)
    bad_id = obj["metadata"]["s4-dict-id"]
    s3_client.put_object(Bucket=S3_BUCKET, Key=f".s4dict/{bad_id}", Body=dictionary)
    s3_store.put("dict/bad", obj["body"], attributes=obj["metadata"])
    with pytest.raises(s4_codec.S4IoError, match="dictionary mismatch"):
        s4io.get(s3_store, "dict/bad")


# --- bad input -----------------------------------------------------------------


def test_missing_objects(store):
    target, key = key_of(store, "no/such/key")
    with pytest.raises(FileNotFoundError):
        s4io.get(target, key)
    with pytest.raises(FileNotFoundError):
        s4io.open(target, key)


def test_stale_truncated_and_lying_sidecars(store):
    target, key = key_of(store, "stale/obj")
    data = payload(9 * MiB)
    s4io.put(target, key, data, level=1)
    backend = s4io.backend_for(target)
    good = bytes(backend.get(key + ".s4index"))
    # The object is rewritten by a client that knows nothing of sidecars.
    obj = s4_codec.encode_s4_object(payload(9 * MiB, seed=9), level=1)
    backend.put(key, obj["body"], obj["metadata"])
    with pytest.raises(s4_codec.S4IndexError, match="stale"):
        s4io.get(target, key, 0, 10)
    etag = backend.head(key).etag
    backend.put(key + ".s4index", good[:-5], {})
    with pytest.raises(s4_codec.S4IndexError):
        s4io.get(target, key)
    # A sidecar bound to this very object whose entries lie about sizes.
    lying = s4_codec.decode_index(s4_codec.bind_index(obj["sidecar"], len(obj["body"]), etag))
    lying["entries"][1]["original_size"] -= 1
    lying["entries"][2]["original_offset"] -= 1
    lying["entries"][2]["original_size"] += 1
    forged = s4_codec.encode_index(lying["entries"], len(obj["body"]), len(obj["body"]), etag)
    backend.put(key + ".s4index", forged, {})
    with pytest.raises(s4_codec.S4IndexError):
        s4io.get(target, key, 5 * MiB, 5 * MiB + 1)


def test_corrupt_frame_names_the_frame():
    data = payload(9 * MiB)
    store = MemoryStore()
    obj = s4_codec.encode_s4_object(data, level=1)
    body = bytearray(obj["body"])
    second = s4_codec.decode_index(obj["sidecar"])["entries"][1]
    body[second["compressed_offset"] + 40] ^= 0x55
    store.put("c", bytes(body), attributes=obj["metadata"])
    store.put("c.s4index", s4_codec.bind_index(obj["sidecar"], len(body), "1"))
    etag = store.head("c")["e_tag"].strip('"')
    store.put("c.s4index", s4_codec.bind_index(obj["sidecar"], len(body), etag))
    with pytest.raises((s4_codec.S4CrcMismatchError, s4_codec.S4IoError), match="frame 1"):
        s4io.get(store, "c")
    assert s4io.get(store, "c", 0, 100) == data[:100]  # frame 0 is intact


def test_metadata_that_disagrees_with_the_body():
    data = payload(9 * MiB)
    store = MemoryStore()
    obj = s4_codec.encode_s4_object(data, level=1)
    wrong_crc = obj["metadata"] | {"s4-crc32c": str(s4_codec.crc32c(data) ^ 1)}
    store.put("crc", obj["body"], attributes=wrong_crc)
    store.put("crc.s4index", obj["sidecar"])
    with pytest.raises(s4_codec.S4CrcMismatchError):
        s4io.get(store, "crc")
    wrong_size = obj["metadata"] | {"s4-original-size": str(len(data) + 1)}
    store.put("size", obj["body"], attributes=wrong_size)
    store.put("size.s4index", obj["sidecar"])
    with pytest.raises(s4_codec.S4SizeMismatchError):
        s4io.get(store, "size")
    small = s4_codec.encode_s4_object(b"abc" * 100)
    store.put("one", small["body"], attributes=small["metadata"] | {"s4-crc32c": "1"})
    with pytest.raises(s4_codec.S4CrcMismatchError):
        s4io.get(store, "one")


def test_network_failure_mid_read_names_key_and_range():
    data = payload(20 * MiB)
    real = MemoryStore()
    s4io.put(real, "net", data, level=1)
    store = Counting(real)
    store.fail_after = 2  # head and sidecar answer; then the connection drops
    with pytest.raises(s4io.ObjectStoreError) as err:
        s4io.get(store, "net")
    assert isinstance(err.value, OSError) and err.value.path == "net"
    assert err.value.byte_range is not None and "net bytes" in str(err.value)


def test_unreachable_server_is_an_oserror():
    store_mod = require("obstore.store")
    dead = store_mod.S3Store(
        "b",
        endpoint="http://127.0.0.1:9",
        region="us-east-1",
        access_key_id="x",
        secret_access_key="y",
        client_options={"allow_http": True, "connect_timeout": "1s", "timeout": "2s"},
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=1)},
    )
    with pytest.raises(s4io.ObjectStoreError, match="key"):
        s4io.get(dead, "key")


def test_streaming_writer_aborts_on_error(s3_store):
    with pytest.raises(RuntimeError):
        with s4io.open(s3_store, "abort/obj", "wb", part_size=5 * MiB) as w:
            w.write(payload(12 * MiB))
            raise RuntimeError("source failed")
    with pytest.raises(FileNotFoundError):
        s4io.get(s3_store, "abort/obj")


def test_stale_sidecar_removed_when_object_shrinks(tmp_path):
    store = LocalStore(str(tmp_path))
    s4io.put(store, "k", payload(9 * MiB), level=1)
    s4io.put(store, "k", b"small now")
    assert s4io.get(store, "k") == b"small now"
    assert not (tmp_path / "k.s4index").exists()


# --- whole and ranged reads through Rust's RangeDecoder ----------------------


def multipart_body(data: bytes, part: int) -> bytes:
    """The gateway's multipart layout: one frame per part, S4P1 padding to 5 MiB."""
    return b"".join(
        _internal.encode_s4_part(data[i : i + part], "cpu-zstd", 1)
        for i in range(0, max(len(data), 1), part)
    )


@pytest.mark.parametrize("size", SIZES)
def test_multipart_bodies_without_sidecar(s3_store, size):
    data = payload(size, seed=3)
    key = f"nosidecar/{size}"
    s3_store.put(key, multipart_body(data, 5 * MiB), attributes={"s4-multipart": "true"})
    info = s4io.stat(s3_store, key)
    assert info["size"] == size and info["kind"] == "framed"
    assert info["sidecar"] == "walked"
    assert s4io.get(s3_store, key) == data
    assert s4io.get(s3_store, key, size // 3, size - 1) == data[size // 3 : size - 1]


@pytest.mark.parametrize("size", SIZES)
def test_get_decodes_into_one_result(s3_store, size):
    """Whole and ranged gets of framed objects: requests only for the frames
    needed, each frame decoded once, the result assembled by RangeDecoder."""
    data = payload(size, seed=5)
    s4io.put(s3_store, f"rd/{size}", data, level=1)
    store = Counting(s3_store)
    assert s4io.get(store, f"rd/{size}") == data
    frames = s4io.stat(s3_store, f"rd/{size}")["frames"]
    ranged = [op for op, _, _ in store.requests if op == "range"]
    assert len(ranged) <= max(frames or 0, 1)
    assert s4io.get(s3_store, f"rd/{size}", 1, -1) == data[1:-1]


def test_corrupt_frame_in_a_whole_get_over_http(s3_store):
    data = payload(9 * MiB, seed=8)
    obj = s4_codec.encode_s4_object(data, level=1)
    entries = s4_codec.decode_index(obj["sidecar"])["entries"]
    body = bytearray(obj["body"])
    body[entries[1]["compressed_offset"] + 60] ^= 0xFF
    backend = s4io.backend_for(s3_store)
    etag = backend.put("corrupt", bytes(body), obj["metadata"])
    backend.put("corrupt.s4index", s4_codec.bind_index(obj["sidecar"], len(body), etag), {})
    a, b = (
        entries[1]["compressed_offset"],
        entries[1]["compressed_offset"] + entries[1]["compressed_size"],
    )
    pattern = rf"frame 1 \(stored bytes \[{a}, {b}\), original bytes \[{4 * MiB}, {8 * MiB}\)\)"
    with pytest.raises((s4_codec.S4CrcMismatchError, s4_codec.S4IoError), match=pattern):
        s4io.get(s3_store, "corrupt")
    with pytest.raises((s4_codec.S4CrcMismatchError, s4_codec.S4IoError), match=pattern):
        asyncio.run(s4io.get_async(s3_store, "corrupt"))
    assert s4io.get(s3_store, "corrupt", 8 * MiB) == data[8 * MiB :]  # other frames are fine


def test_concurrent_gets_of_one_object(s3_store):
    data = payload(9 * MiB + 5, seed=4)
    s4io.put(s3_store, "shared", data, level=1)
    ranges = [(None, None), (MiB, 6 * MiB), (None, None), (4 * MiB - 1, None)]
    results: list[bytes | None] = [None] * len(ranges)

    def read(i: int) -> None:
        for _ in range(3):
            results[i] = s4io.get(s3_store, "shared", *ranges[i])

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(ranges))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [data[slice(*r)] for r in ranges]
