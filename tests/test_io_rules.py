"""The object layer's format rules, as every read and write path applies them:
sidecars that leave bytes in no frame are refused when an object opens (never a
short or wrong read), a sidecar is parsed once per open object, codec aliases
are stored under their FORMAT names, and single-PUT metadata is the gateway's."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import subprocess
import sys

import pytest
from conftest import raw_sidecar, require
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import s4_codec
from s4_codec import _internal, cli

require("obstore")
require("fsspec")
from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402
from obstore.store import LocalStore, MemoryStore  # noqa: E402

import s4_codec.io as s4io  # noqa: E402
from s4_codec.io._fsspec import S4FileSystem  # noqa: E402

MiB = 1 << 20
FRAME = 4 * MiB  # pick_chunk_size for objects of 1..100 MiB


def _data(size: int) -> bytes:
    block = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


DATA = _data(3 * FRAME + 12345)  # four frames


def _stored(store, key: str = "obj.bin", data: bytes = DATA) -> tuple[list[dict], int, str | None]:
    """Puts `data`; returns its sidecar's entries, stored size and stored ETag."""
    result = s4io.put(store, key, data, level=1)
    sidecar = bytes(store.get(key + _internal.SIDECAR_SUFFIX).bytes())
    entries = [dict(e) for e in s4_codec.decode_index(sidecar)["entries"]]
    return entries, result["stored_size"], result["stored_etag"]


def _replace_sidecar(store, key: str, entries, stored: int, etag) -> None:
    store.put(key + _internal.SIDECAR_SUFFIX, raw_sidecar(entries, stored, stored, etag))


def _gapped(entries: list[dict]) -> list[dict]:
    """Entry 1 starts 100 original bytes after entry 0 ends; sizes unchanged
    otherwise, so the sidecar still ends where the metadata says."""
    out = [dict(e) for e in entries]
    out[0]["original_size"] -= 100
    return out


def _shifted(entries: list[dict]) -> list[dict]:
    """Every entry after the first moved 100 bytes on: the entries end 100 bytes
    past the metadata's s4-original-size."""
    out = [dict(e) for e in entries]
    for e in out[1:]:
        e["original_offset"] += 100
    return out


def _read_paths(store, key: str):
    """Each read path, as a function reading [a, b) of the object."""

    def seekable(a, b):
        with s4io.open(store, key) as f:
            f.seek(a)
            return f.read(b - a)

    def get(a, b):
        return s4io.get(store, key, a, b)

    def get_async(a, b):
        return asyncio.run(s4io.get_async(store, key, a, b))

    def open_async(a, b):
        async def run():
            async with await s4io.open_async(store, key) as f:
                f.seek(a)
                return await f.read(b - a)

        return asyncio.run(run())

    return {"open": seekable, "get": get, "get_async": get_async, "open_async": open_async}


def _fsspec_paths():
    """The fsspec door over an in-memory fsspec filesystem, and its store."""
    inner = MemoryFileSystem()
    inner.store.clear()
    fs = S4FileSystem(fs=inner, skip_instance_cache=True)

    def read(key):
        def at(a, b):
            fs.invalidate_cache()
            with fs.open(key, "rb") as f:
                f.seek(a)
                return f.read(b - a)

        return at

    return fs, inner, read


@pytest.mark.parametrize("lie", [_gapped, _shifted])
@pytest.mark.parametrize("store_kind", ["memory", "local"])
def test_a_sidecar_that_does_not_add_up_is_refused_at_open(tmp_path, store_kind, lie):
    store = MemoryStore() if store_kind == "memory" else LocalStore(str(tmp_path))
    entries, stored, etag = _stored(store)
    _replace_sidecar(store, "obj.bin", lie(entries), stored, etag)
    for name, read in _read_paths(store, "obj.bin").items():
        # Across the gap, inside frame 0, and the whole object: all refused.
        for a, b in [(FRAME - 101, FRAME + 1), (0, 10), (0, len(DATA))]:
            with pytest.raises(s4_codec.S4IndexError) as caught:
                read(a, b)
            message = str(caught.value)
            assert message.startswith("obj.bin: sidecar entries do not add up"), (name, message)
            assert f"[{FRAME - 100 if lie is _gapped else FRAME}, " in message, (name, message)
            assert "before frame 1 are in no frame" in message, (name, message)


def test_the_issue_reproduction_reads_full_lengths_or_fails():
    """The reported case: seek(4194303) read(2) gave 1 byte, read(1) at the gap b""."""
    store = MemoryStore()
    entries, stored, etag = _stored(store)
    _replace_sidecar(store, "obj.bin", _gapped(entries), stored, etag)
    with pytest.raises(s4_codec.S4IndexError, match="obj.bin"):
        s4io.open(store, "obj.bin")
    # A healthy object: every read is full length.
    good = MemoryStore()
    _stored(good)
    with s4io.open(good, "obj.bin") as f:
        f.seek(FRAME - 1)
        assert f.read(2) == DATA[FRAME - 1 : FRAME + 1]
        f.seek(FRAME)
        assert f.read(1) == DATA[FRAME : FRAME + 1]


def test_fsspec_and_cli_refuse_a_gapped_sidecar(tmp_path):
    fs, inner, read = _fsspec_paths()
    body = s4_codec.encode_s4_object(DATA, "cpu-zstd", 1)
    inner.pipe_file("/b/obj.bin", body["body"])
    etag = None  # MemoryFileSystem has no ETags; the sidecar is bound to the size
    index = s4_codec.decode_index(body["sidecar"])
    gapped = raw_sidecar(
        _gapped([dict(e) for e in index["entries"]]), len(body["body"]), len(body["body"]), etag
    )
    inner.pipe_file("/b/obj.bin" + _internal.SIDECAR_SUFFIX, gapped)
    with pytest.raises(s4_codec.S4IndexError, match="obj.bin"):
        read("/b/obj.bin")(FRAME - 101, FRAME + 1)
    # The CLI over a local directory: exit status for bad data, nothing on stdout.
    store = LocalStore(str(tmp_path))
    entries, stored, etag = _stored(store)
    _replace_sidecar(store, "obj.bin", _gapped(entries), stored, etag)
    for args in (["--range", f"{FRAME - 101}-{FRAME + 1}"], []):
        done = subprocess.run(
            [sys.executable, "-m", "s4_codec", "cat", str(tmp_path / "obj.bin"), *args],
            capture_output=True,
        )
        assert done.returncode != 0
        assert done.stdout == b""
        assert b"in no frame" in done.stderr, done.stderr


# ---- the mutation campaign ----

_MUTATIONS = st.one_of(
    st.tuples(
        st.just("field"),
        st.integers(0, 3),
        st.sampled_from(
            ["original_offset", "original_size", "compressed_offset", "compressed_size"]
        ),
        st.sampled_from([-100, -1, 1, 100, 4096, -FRAME, FRAME]),
    ),
    st.tuples(st.just("drop"), st.integers(0, 3), st.just(""), st.just(0)),
    st.tuples(st.just("duplicate"), st.integers(0, 3), st.just(""), st.just(0)),
    st.tuples(st.just("swap"), st.integers(0, 2), st.just(""), st.just(0)),
    st.tuples(st.just("bind"), st.integers(0, 1), st.just(""), st.sampled_from([-1, 1])),
)


def _mutate(entries, stored, etag, mutations):
    entries = [dict(e) for e in entries]
    for kind, k, field, delta in mutations:
        if kind == "field":
            entry = entries[min(k, len(entries) - 1)]
            entry[field] = max(0, entry[field] + delta)
        elif kind == "drop" and len(entries) > 1:
            del entries[min(k, len(entries) - 1)]
        elif kind == "duplicate":
            k = min(k, len(entries) - 1)
            entries.insert(k, dict(entries[k]))
        elif kind == "swap" and len(entries) > 2:
            k = min(k, len(entries) - 2)
            entries[k], entries[k + 1] = entries[k + 1], entries[k]
        elif kind == "bind":
            if k == 0:
                stored += delta
            else:
                etag = (etag or "") + "x"
    return entries, stored, etag


class _Tally:
    def __init__(self):
        self.reads = self.refused = self.wrong = self.short = 0
        self.failures: list[tuple] = []

    def check(self, read, a: int, b: int, case: tuple) -> None:
        self.reads += 1
        try:
            got = read(a, b)
        except (s4_codec.S4Error, s4_codec.S4IoError):
            self.refused += 1
            return
        want = DATA[a:b]
        if len(got) < len(want):
            self.short += 1
        elif got != want:
            self.wrong += 1
        else:
            return
        self.failures.append((*case, a, b, len(got)))


_CAMPAIGN = _Tally()
_SPANS = [
    (0, 10),
    (FRAME - 101, FRAME + 1),
    (FRAME - 1, FRAME + 1),
    (2 * FRAME + 5, 3 * FRAME + 9),
    (0, len(DATA)),
]


@pytest.fixture(scope="module")
def campaign_store(tmp_path_factory):
    store = MemoryStore()
    yield store, tmp_path_factory.mktemp("cli"), *_stored(store)
    print(f"\nsidecar mutation campaign: {vars(_CAMPAIGN)}")


def _cli_read(path):
    """`s4-codec cat PATH --range A-B`, in this process; a refusal (exit status
    EXIT_DATA or EXIT_IO) reads as an S4Error. `cat` streams 8 MiB reads, so a
    frame that fails after earlier reads leaves their bytes on stdout: those
    must be the data's own, never more than were asked for."""

    def at(a, b):
        out, err = io.TextIOWrapper(io.BytesIO()), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(["cat", str(path), "--range", f"{a}-{b}"])
        out.flush()
        written = out.buffer.getvalue()
        if status in (cli.EXIT_DATA, cli.EXIT_IO):
            assert len(written) < b - a and written == DATA[a : a + len(written)], status
            assert path.name in err.getvalue(), err.getvalue()
            raise s4_codec.S4Error(err.getvalue())
        assert status == 0, (status, err.getvalue())
        return written

    return at


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutations=st.lists(_MUTATIONS, min_size=1, max_size=3))
# Found by the campaign: a last entry that claims no bytes read short to the end.
@example(mutations=[("field", 3, "original_size", -(4 << 20))])
# ... and an entry of no stored bytes, once requests no longer merged it with the next.
@example(mutations=[("field", 0, "compressed_size", -(4 << 20))])
def test_sidecar_mutations_never_read_short_or_wrong(campaign_store, mutations):
    store, root, entries, stored, etag = campaign_store
    body = bytes(store.get("obj.bin").bytes())
    metadata = s4io.stat(store, "obj.bin")["metadata"]
    mutated = MemoryStore()
    mutated.put("obj.bin", body, attributes=metadata)
    _replace_sidecar(mutated, "obj.bin", *_mutate(entries, stored, etag, mutations))
    fs, inner, read_fsspec = _fsspec_paths()
    inner.pipe_file("/b/obj.bin", body)
    bad, size, _ = _mutate(entries, stored, etag, mutations)
    inner.pipe_file("/b/obj.bin" + _internal.SIDECAR_SUFFIX, raw_sidecar(bad, size, size, None))
    # The CLI over a local directory (no metadata: the body's magic tells).
    (root / "obj.bin").write_bytes(body)
    (root / ("obj.bin" + _internal.SIDECAR_SUFFIX)).write_bytes(raw_sidecar(bad, size, size, None))
    paths = dict(
        _read_paths(mutated, "obj.bin"),
        fsspec=read_fsspec("/b/obj.bin"),
        cli=_cli_read(root / "obj.bin"),
    )
    for name, read in paths.items():
        for a, b in _SPANS:
            _CAMPAIGN.check(read, a, b, (name, mutations))
    assert _CAMPAIGN.failures == []


# ---- parsing once ----


def test_a_sequential_read_parses_the_sidecar_once(monkeypatch):
    # Hundreds of frames: a multipart-style object of 64 KiB parts.
    data = _data(300 * 65536)
    parts = [
        _internal.encode_s4_part(data[i : i + 65536], level=1) for i in range(0, len(data), 65536)
    ]
    body = b"".join(parts)
    ledger_entries, at = [], 0
    for i, part in enumerate(parts):
        ledger_entries.append(
            {
                "original_offset": i * 65536,
                "original_size": 65536,
                "compressed_offset": at,
                "compressed_size": len(part),
            }
        )
        at += len(part)
    store = MemoryStore()
    put = store.put("many.bin", body, attributes={"s4-codec": "cpu-zstd", "s4-multipart": "true"})
    etag = put["e_tag"].strip('"') if put.get("e_tag") else None
    sidecar = s4_codec.encode_index(ledger_entries, len(body), len(body), etag)
    store.put("many.bin" + _internal.SIDECAR_SUFFIX, sidecar)

    parses = {"Sidecar": 0, "bytes into RangeDecoder": 0, "decode_index": 0}
    real_sidecar, real_decoder, real_decode_index = (
        _internal.Sidecar,
        _internal.RangeDecoder,
        _internal.decode_index,
    )

    def sidecar(*args, **kwargs):
        parses["Sidecar"] += 1
        return real_sidecar(*args, **kwargs)

    def decoder(sidecar, *args, **kwargs):
        if not isinstance(sidecar, real_sidecar):
            parses["bytes into RangeDecoder"] += 1
        return real_decoder(sidecar, *args, **kwargs)

    def decode_index(*args, **kwargs):
        parses["decode_index"] += 1
        return real_decode_index(*args, **kwargs)

    monkeypatch.setattr(_internal, "Sidecar", sidecar)
    monkeypatch.setattr(_internal, "RangeDecoder", decoder)
    monkeypatch.setattr(_internal, "decode_index", decode_index)
    with s4io.open(store, "many.bin") as f:
        assert f.info["frames"] == 300
        pieces = []
        while piece := f.read(10_000):
            pieces.append(piece)
    assert b"".join(pieces) == data
    assert parses == {"Sidecar": 1, "bytes into RangeDecoder": 0, "decode_index": 0}


# ---- writing: FORMAT names and the gateway's metadata ----


@pytest.mark.parametrize(
    "alias, name", [("zstd", "cpu-zstd"), ("gzip", "cpu-gzip"), ("cpu-zstd", "cpu-zstd")]
)
def test_aliases_are_stored_under_their_format_names(alias, name):
    store = MemoryStore()
    with s4io.open(store, "s.bin", "wb", codec=alias, part_size=5 * MiB, level=1) as w:
        w.write(DATA)
    assert s4io.stat(store, "s.bin")["metadata"]["s4-codec"] == name
    assert s4io.get(store, "s.bin") == DATA
    assert s4io.put(store, "p.bin", DATA[:1000], codec=alias)["metadata"]["s4-codec"] == name


def test_local_store_takes_the_zstd_alias_and_refuses_what_it_cannot_hold(tmp_path):
    store = LocalStore(str(tmp_path))
    assert s4io.put(store, "a.bin", DATA[:5000], codec="zstd")["size"] == 5000
    assert s4io.get(store, "a.bin") == DATA[:5000]
    with pytest.raises(ValueError, match="keeps no object metadata"):
        s4io.put(store, "b.bin", DATA[:5000], codec="gzip")
    with pytest.raises(NotImplementedError, match="gateway"):
        s4io.put(store, "c.bin", DATA[:5000], codec="nvcomp-zstd")


def test_framed_dictionary_metadata_without_a_size_opens_from_its_frames():
    samples = [b"event %d with some shared words\n" % i for i in range(500)]
    dictionary = s4_codec.train_dictionary(samples, 4096)
    data = b"".join(samples)
    obj = s4_codec.encode_s4_object(data, "cpu-zstd-dict", dictionary=dictionary)
    store = MemoryStore()
    metadata = {k: v for k, v in obj["metadata"].items() if k != "s4-original-size"}
    store.put("d.bin", obj["body"], attributes=metadata)
    got = s4io.get(store, "d.bin", dictionary=dictionary)
    assert got == data
    assert s4io.open(store, "d.bin", dictionary=dictionary).size == len(data)
    metadata["s4-original-size"] = "many"
    store.put("d.bin", obj["body"], attributes=metadata)
    assert s4io.get(store, "d.bin", dictionary=dictionary) == data


def _gateway_metadata(codec: str, data: bytes, body: bytes, dict_id: str | None = None) -> dict:
    """What the S4 gateway 1.4.0 stores for a single PUT (FORMAT.md §8.4-8.5)."""
    metadata = {
        "s4-codec": codec,
        "s4-original-size": str(len(data)),
        "s4-compressed-size": str(len(body)),
        "s4-crc32c": str(s4_codec.crc32c(data)),
    }
    if codec in ("cpu-zstd", "cpu-zstd-dict"):
        metadata["s4-framed"] = "true"
    if dict_id:
        metadata["s4-dict-id"] = dict_id
    if codec != "passthrough":  # a passthrough object's ETag is its body's MD5 already
        metadata["s4-logical-etag"] = hashlib.md5(data).hexdigest()
    return metadata


@pytest.mark.parametrize("codec", ["cpu-zstd", "cpu-gzip", "cpu-zstd-dict", "passthrough"])
def test_single_put_metadata_is_the_gateways(codec):
    samples = [b"row %d of the object\n" % i for i in range(400)]
    dictionary = s4_codec.train_dictionary(samples, 4096) if codec == "cpu-zstd-dict" else None
    data = b"".join(samples) * 3
    obj = s4_codec.encode_s4_object(data, codec, dictionary=dictionary)
    dict_id = s4_codec.CpuZstdDict(dictionary).s4_dict_id if dictionary else None
    assert obj["metadata"] == _gateway_metadata(codec, data, obj["body"], dict_id)
    if codec == "passthrough":
        assert obj["body"] == data


def test_multipart_metadata_and_sidecar_come_from_the_ledger():
    ledger = _internal.MultipartLedger("zstd", 1)
    parts = [DATA[: 6 * MiB], DATA[6 * MiB :]]
    stored = [ledger.encode_part(p) for p in parts]
    assert ledger.upload_metadata() == {"s4-codec": "cpu-zstd", "s4-multipart": "true"}
    composite = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-2"
    assert ledger.complete_metadata() == {
        "s4-codec": "cpu-zstd",
        "s4-multipart": "true",
        "s4-original-size": str(len(DATA)),
        "s4-compressed-size": str(sum(map(len, stored))),
        "s4-logical-etag": composite,
    }
    body = b"".join(stored)
    assert len(stored[0]) >= 5 * MiB  # padded like the gateway's UploadPart
    sidecar = ledger.sidecar("etag-1")
    index = s4_codec.decode_index(sidecar)
    assert (index["source_etag"], index["source_compressed_size"]) == ("etag-1", len(body))
    assert [e["original_size"] for e in index["entries"]] == [len(p) for p in parts]
    metadata = ledger.complete_metadata()
    assert s4_codec.decode_s4_object(body, metadata, sidecar=sidecar) == DATA
