"""S4 objects: frames, padding, sidecars, object encode/decode, dictionaries."""

from __future__ import annotations

import builtins
import hashlib
import pickle
import random

import pytest
from conftest import blob, json_event

import s4_codec
from s4_codec import (
    CpuZstd,
    CpuZstdDict,
    S4FrameError,
    S4IndexError,
    bind_index,
    decode_index,
    decode_s4_object,
    encode_index,
    encode_s4_object,
    frame_iter,
    pick_chunk_size,
    plan_range,
    read_frame,
)

MiB = 1 << 20


def test_constants(vectors):
    api = vectors["api"]
    assert s4_codec.FRAME_MAGIC == bytes.fromhex(api["FRAME_MAGIC"])
    assert s4_codec.PADDING_MAGIC == bytes.fromhex(api["PADDING_MAGIC"])
    assert s4_codec.FRAME_HEADER_BYTES == api["FRAME_HEADER_BYTES"] == 28
    assert s4_codec.SIDECAR_SUFFIX == api["SIDECAR_SUFFIX"]


def test_pick_chunk_size(vectors):
    for case in vectors["pick_chunk_size"]:
        if "chunk_size" in case:
            assert pick_chunk_size(case["content_length"]) == case["chunk_size"]
        else:
            with pytest.raises(getattr(builtins, case["error"]["raises"])):
                pick_chunk_size(case["content_length"])
    with pytest.raises(OverflowError):
        pick_chunk_size(-1)


def _returns(case):
    return case["result"].get("returns")


def test_read_frame_vectors(vectors):
    for case in vectors["read_frame"]:
        data = blob(case["input"])
        expected = _returns(case)
        if expected is None:
            with pytest.raises(S4FrameError):
                read_frame(data)
            continue
        header, payload, rest = read_frame(data)
        assert header == expected[0]
        assert payload.hex() == expected[1]["hex"]
        assert rest.hex() == expected[2]["hex"]


def test_frame_iter_vectors(vectors):
    for case in vectors["frame_iter"]:
        data = blob(case["input"])
        expected = _returns(case)
        iterator = frame_iter(data)
        assert iter(iterator) is iterator  # lazy, not a list
        if expected is None:
            with pytest.raises(S4FrameError):
                list(iterator)
            continue
        got = [(header, payload.hex()) for header, payload in iterator]
        assert got == [(item[0], item[1]["hex"]) for item in expected], case["name"]


def test_frame_and_index_error_vectors(vectors):
    functions = {
        "read_frame": read_frame,
        "frame_iter": lambda d: list(frame_iter(d)),
        "decode_index": decode_index,
        "bind_index": lambda d: bind_index(d, 10),
    }
    checked = 0
    for case in vectors["errors"]["cases"]:
        name = case["name"].split(":")[0]
        if name not in functions or "data" not in case:
            continue
        if case["name"] == "bind_index: negative size":
            with pytest.raises(OverflowError):
                bind_index(bytes.fromhex(case["data"]), -1)
            continue
        expected = getattr(s4_codec, case["result"]["raises"])
        with pytest.raises(expected):
            functions[name](bytes.fromhex(case["data"]))
        checked += 1
    assert checked >= 25


def test_decode_index_vectors(vectors):
    for case in vectors["index"]["decode_index"]:
        data = blob(case["input"])
        result = case["result"]
        if "raises" in result:
            with pytest.raises(S4IndexError):
                decode_index(data)
            continue
        got = decode_index(data)
        expected = result["returns"]
        if got["sse"] is not None:
            got["sse"]["enc_salt"] = got["sse"]["enc_salt"].hex()
            salt = expected["sse"]["enc_salt"]
            expected["sse"]["enc_salt"] = salt["hex"] if isinstance(salt, dict) else salt
        assert got == expected, case["name"]


def test_bind_index_vectors(vectors):
    checked = 0
    for case in vectors["index"]["bind_index"]:
        if "input" not in case:
            continue  # the reference's oversized-etag bug: see the test below
        data = blob(case["input"])
        out = bind_index(data, case["source_compressed_size"], case.get("source_etag"))
        assert out == blob(case["output"]), case["name"]
        decoded = decode_index(out)
        if decoded["sse"] is not None:
            decoded["sse"]["enc_salt"] = decoded["sse"]["enc_salt"].hex()
        expected = case["decoded"]
        if expected["sse"] is not None and isinstance(expected["sse"]["enc_salt"], dict):
            expected["sse"]["enc_salt"] = expected["sse"]["enc_salt"]["hex"]
        assert decoded == expected, case["name"]
        checked += 1
    assert checked == 5


def test_bind_index_refuses_unreadable_etag():
    obj = encode_s4_object(bytes(9 * MiB), level=1)
    with pytest.raises(S4IndexError, match="4096"):
        bind_index(obj["sidecar"], 10, "x" * 4097)
    assert decode_index(bind_index(obj["sidecar"], 10, "x" * 4096))["source_etag"] == "x" * 4096


def test_encode_index_round_trip():
    entries = [
        {"original_offset": 0, "original_size": 100, "compressed_offset": 0, "compressed_size": 50},
        {
            "original_offset": 100,
            "original_size": 80,
            "compressed_offset": 60,
            "compressed_size": 40,
        },
    ]
    data = encode_index(entries, 200, 123, "etag")
    decoded = decode_index(data)
    assert decoded["entries"] == entries and decoded["source_etag"] == "etag"
    assert decoded["total_original_size"] == 180 and decoded["sse"] is None
    sse = {
        "enc_chunk_size": 65536,
        "enc_chunk_count": 3,
        "enc_key_id": 7,
        "enc_salt": b"12345678",
        "enc_plaintext_len": 180,
        "enc_header_bytes": 24,
    }
    assert decode_index(encode_index(entries, 200, sse=sse))["sse"] == sse
    with pytest.raises(S4IndexError):
        encode_index(list(reversed(entries)), 200)


def _digest(spec) -> tuple[int, str]:
    return spec["len"], spec["sha256"]


def test_encode_s4_object_vectors(vectors):
    """Bodies, frame headers, sidecars and metadata equal the reference's,
    byte for byte (same libzstd, same streaming mode)."""
    for case in vectors["encode_s4_object"]["objects"]:
        data = blob(case["input"])
        obj = encode_s4_object(data, case["codec"], case["level"])
        # The reference predates `s4-logical-etag`, which the gateway serves
        # as the ETag (FORMAT.md §8.5) and stamps on every codec but
        # passthrough: everything else is the reference's.
        stamped = case["codec"] != "passthrough"
        logical_etag = {"s4-logical-etag": hashlib.md5(data).hexdigest()} if stamped else {}
        assert obj["metadata"] == case["metadata"] | logical_etag, case["input"]
        assert (len(obj["body"]), hashlib.sha256(obj["body"]).hexdigest()) == _digest(case["body"])
        frames = list(frame_iter(obj["body"])) if "s4-framed" in obj["metadata"] else []
        assert [h for h, _ in frames] == [f["header"] for f in case["frames"]]
        if case["sidecar"] is None:
            assert obj["sidecar"] is None
        else:
            sidecar = obj["sidecar"]
            assert (len(sidecar), hashlib.sha256(sidecar).hexdigest()) == _digest(case["sidecar"])
            assert decode_index(sidecar) == case["decode_index(sidecar)"]
            bound = bind_index(sidecar, len(obj["body"]), "0123abcd")
            expected = case["bind_index(sidecar, len(body), '0123abcd')"]
            assert (len(bound), hashlib.sha256(bound).hexdigest()) == _digest(expected)
        assert decode_s4_object(obj["body"], obj["metadata"]) == data


def test_parts_are_framed_and_padded_like_the_gateway_upload_part():
    small, large = b"tail", bytes(range(256)) * (20 << 10)  # 4 B and 5 MiB
    parts = [s4_codec._internal.encode_s4_part(p) for p in (large, small)]
    assert len(parts[0]) >= 5 << 20 and b"S4P1" in parts[0][-(5 << 20) :]
    assert [h["original_size"] for h, _ in frame_iter(parts[0] + parts[1])] == [5 << 20, 4]
    body = parts[0] + parts[1]
    assert decode_s4_object(body, {"s4-multipart": "true"}) == large + small


def test_unsupported_codecs(vectors):
    for codec in ("nvcomp-zstd", "dietgpu-ans", "nvcomp-lz4", "CPU-ZSTD", ""):
        with pytest.raises(NotImplementedError, match="gateway"):
            encode_s4_object(b"x", codec)
    with pytest.raises(TypeError):
        encode_s4_object(b"x", None)


def test_gzip_and_dict_objects():
    data = b"".join(json_event(i) for i in range(2000))
    gz = encode_s4_object(data, "cpu-gzip", 6)
    assert "s4-framed" not in gz["metadata"] and gz["body"][:2] == b"\x1f\x8b"
    assert decode_s4_object(gz["body"], gz["metadata"]) == data
    dictionary = s4_codec.train_dictionary([json_event(i) for i in range(3000)], size=8192)
    obj = encode_s4_object(data, "cpu-zstd-dict", 3, dictionary=dictionary)
    assert obj["metadata"]["s4-dict-id"] == hashlib.sha256(dictionary).hexdigest()[:16]
    assert [h["codec"] for h, _ in frame_iter(obj["body"])] == ["cpu-zstd-dict"]
    assert decode_s4_object(obj["body"], obj["metadata"], dictionary=dictionary) == data
    with pytest.raises(s4_codec.S4UnregisteredCodecError):
        decode_s4_object(obj["body"], obj["metadata"])


def test_get_decision():
    data = b"plain object"
    assert decode_s4_object(data, {}) == data
    assert decode_s4_object(data) == data
    obj = encode_s4_object(b"abc" * 1000)
    assert decode_s4_object(obj["body"]) == b"abc" * 1000
    wrong_crc = obj["metadata"] | {"s4-crc32c": "1"}
    with pytest.raises(s4_codec.S4CrcMismatchError):
        decode_s4_object(obj["body"], wrong_crc)
    payload, size, crc = CpuZstd().compress(data)
    manifest = {
        "s4-codec": "cpu-zstd",
        "s4-original-size": str(size),
        "s4-compressed-size": str(len(payload)),
        "s4-crc32c": str(crc),
    }
    assert decode_s4_object(payload, manifest) == data
    with pytest.raises(s4_codec.S4ManifestSizeMismatchError):
        decode_s4_object(payload + b"x", manifest)


def _mild(n: int) -> bytes:
    block = bytes((i * 31 + (i >> 13)) & 0xFF for i in range(1 << 16))
    return (block * (n // len(block) + 1))[:n]


@pytest.mark.parametrize("size", [9 * MiB, 200 * MiB])
def test_multi_frame_round_trip(size):
    data = _mild(size)
    obj = encode_s4_object(data, level=1)
    frames = list(frame_iter(obj["body"]))
    assert len(frames) == -(-size // pick_chunk_size(size))
    assert decode_index(obj["sidecar"])["total_original_size"] == size
    assert decode_s4_object(obj["body"], obj["metadata"], threads=2) == data
    assert decode_s4_object(obj["body"], obj["metadata"], threads=1) == data


def test_range_decoding_matches_slicing():
    data = _mild(9 * MiB + 12345)
    obj = encode_s4_object(data, level=1)
    rng = random.Random(3)
    for _ in range(1000):
        start = rng.randrange(len(data))
        end = rng.randrange(start, min(len(data), start + rng.choice([10, 5000, 5 * MiB])) + 1)
        got = decode_s4_object(obj["body"], sidecar=obj["sidecar"], start=start, end=end)
        assert got == data[start:end]
    first, last, skip = plan_range(obj["sidecar"], 5 * MiB, 5 * MiB + 10)
    fetched = obj["body"][first:last]
    got = decode_s4_object(
        fetched, sidecar=obj["sidecar"], start=5 * MiB, end=5 * MiB + 10, body_offset=first
    )
    assert got == data[5 * MiB : 5 * MiB + 10]
    assert skip == MiB
    with pytest.raises(S4IndexError):
        plan_range(obj["sidecar"], 10, len(data) + 1)


def test_corrupt_frames_in_objects():
    obj = encode_s4_object(_mild(5 * MiB), level=1)
    body = bytearray(obj["body"])
    body[40] ^= 0xFF
    with pytest.raises((s4_codec.S4Error, s4_codec.S4IoError)):
        decode_s4_object(bytes(body), obj["metadata"])
    with pytest.raises(S4FrameError):
        decode_s4_object(obj["body"][:-1], obj["metadata"])
    lying = bytearray(obj["body"])
    lying[8:16] = (5 << 30).to_bytes(8, "little")
    with pytest.raises(s4_codec.S4SizeMismatchError):
        decode_s4_object(bytes(lying), obj["metadata"])


def test_cpu_zstd_dict(vectors):
    ref = vectors["cpu_zstd_dict"]
    dictionaries = {
        "structured": blob(ref["structured_dict"]["bytes"]),
        "raw_content": blob(ref["raw_content_dict"]["bytes"]),
    }
    structured = dictionaries["structured"]
    codec = CpuZstdDict(structured, 3)
    assert codec.dict_id == int.from_bytes(structured[4:8], "little")
    for case in ref["vectors"]:
        data = blob(case["input"])
        dict_codec = CpuZstdDict(dictionaries[case["dict"]], case["level"])
        reference = blob(case["compressed"])
        assert dict_codec.decompress(reference, case["original_size"], case["crc32c"]) == data
        ours, size, crc = dict_codec.compress(data)
        assert (size, crc) == (case["original_size"], case["crc32c"])
        assert dict_codec.decompress(ours, size, crc) == data
        if data:
            assert len(ours) < case["plain_cpu_zstd_len_same_level"]
    event = blob(ref["fresh_event"])
    payload, size, crc = codec.compress(event)
    with pytest.raises(s4_codec.S4IoError):
        CpuZstd().decompress(payload, size, crc)
    plain = CpuZstd().compress(event)
    assert codec.decompress(*plain) == event
    assert repr(codec) == f"CpuZstdDict(dict_len={len(structured)}, level=3)"
    assert pickle.loads(pickle.dumps(codec)) == codec
    with pytest.raises(s4_codec.S4BackendError):
        CpuZstdDict(b"")
    with pytest.raises(s4_codec.S4BackendError, match="corrupt"):
        CpuZstdDict(structured[:8] + b"\xff" * 50)


def test_train_dictionary_beats_plain_zstd():
    samples = [json_event(i) * 5 for i in range(5000)]
    dictionary = s4_codec.train_dictionary(samples, size=16_384)
    assert 0 < len(dictionary) <= 16_384
    with_dict = sum(len(CpuZstdDict(dictionary).compress(s)[0]) for s in samples[:500])
    plain = sum(len(CpuZstd().compress(s)[0]) for s in samples[:500])
    assert with_dict * 2 <= plain


def test_io_primitives_read_headers_layouts_and_crcs():
    data = b"".join(json_event(i) for i in range(120_000))  # > 4 MiB: two frames
    obj = encode_s4_object(data)
    body = obj["body"]
    first = s4_codec._internal.frame_header(body[:28])
    assert first["padding"] is False and first["codec"] == "cpu-zstd"
    assert first["stored_size"] == 28 + first["compressed_size"]
    part = s4_codec._internal.encode_s4_part(data[: 5 << 20])
    padding = s4_codec._internal.frame_header(part[first_frame_size(part) :][:12])
    assert padding == {"padding": True, "stored_size": len(part) - first_frame_size(part)}
    with pytest.raises(s4_codec.S4FrameError):
        s4_codec._internal.frame_header(b"S4F2")
    layout = s4_codec._internal.object_layout
    assert layout(obj["metadata"]) == "framed"
    assert layout(encode_s4_object(data, "gzip")["metadata"]) == "whole"
    assert layout({"content-type": "x"}) == layout(None, b"PK") == "plain"
    assert layout(None, body[:4]) == "framed"
    a, b = data[:1000], data[1000:]
    combine = s4_codec._internal.crc32c_combine
    assert combine(s4_codec.crc32c(a), s4_codec.crc32c(b), len(b)) == s4_codec.crc32c(data)


def first_frame_size(body: bytes) -> int:
    return s4_codec._internal.frame_header(body[:28])["stored_size"]


def test_range_decoder_assembles_pieces_in_any_order():
    data = b"".join(json_event(i) for i in range(300_000))  # about 3 frames
    obj = encode_s4_object(data)
    entries = decode_index(obj["sidecar"])["entries"]
    assert len(entries) >= 3
    RangeDecoder = s4_codec._internal.RangeDecoder
    for start, end in [(0, len(data)), (5, len(data) - 7), (4 << 20, (4 << 20) + 1), (9, 9)]:
        rd = RangeDecoder(obj["sidecar"], start, end, source_size=len(obj["body"]))
        for first, stop in reversed(rd.pending):
            piece = obj["body"][first:stop]
            assert rd.decode(piece, first) == 1
        assert rd.pending == [] and rd.finish() == data[start:end]
        with pytest.raises(RuntimeError):
            rd.decode(obj["body"], 0)
    rd = RangeDecoder(obj["sidecar"])
    assert rd.decode(obj["body"][: entries[1]["compressed_offset"]], 0) == 1
    with pytest.raises(RuntimeError, match="not decoded yet"):
        rd.finish()
    corrupt = bytearray(obj["body"])
    corrupt[entries[1]["compressed_offset"] + 40] ^= 0xFF
    with pytest.raises(s4_codec.S4_ERRORS, match="frame 1"):
        rd.decode(bytes(corrupt), 0)
    assert len(rd.pending) == len(entries) - 1  # the failed frame waits again
    assert rd.decode(obj["body"], 0) == len(entries) - 1 and rd.finish() == data
    with pytest.raises(s4_codec.S4IndexError, match="stale"):
        RangeDecoder(obj["sidecar"], source_size=len(obj["body"]) + 1)
    with pytest.raises(s4_codec.S4ManifestSizeExceedsLimitError):
        RangeDecoder(obj["sidecar"], max_output_size=10)


def test_range_decoder_checks_the_metadata_against_the_frames():
    data = b"".join(json_event(i) for i in range(200_000))
    obj = encode_s4_object(data)
    RangeDecoder = s4_codec._internal.RangeDecoder
    lying_size = obj["metadata"] | {"s4-original-size": str(len(data) + 1)}
    with pytest.raises(s4_codec.S4SizeMismatchError):
        RangeDecoder(obj["sidecar"], metadata=lying_size)
    lying_crc = obj["metadata"] | {"s4-crc32c": str(s4_codec.crc32c(data) ^ 1)}
    whole = RangeDecoder(obj["sidecar"], metadata=lying_crc)
    whole.decode(obj["body"], 0)
    with pytest.raises(s4_codec.S4CrcMismatchError):
        whole.finish()
    part = RangeDecoder(obj["sidecar"], 10, 20, metadata=lying_crc)  # frames alone vouch
    part.decode(obj["body"], 0)
    assert part.finish() == data[10:20]
    good = RangeDecoder(obj["sidecar"], metadata=obj["metadata"])
    good.decode(obj["body"], 0)
    assert good.finish() == data


def test_single_frame_objects_are_told_by_their_metadata():
    def opened(metadata):
        return s4_codec._internal.open_layout({"s4-framed": "true", **metadata})

    for size in (1 << 20, 4 << 20):
        assert opened(encode_s4_object(b"x" * size)["metadata"]) == ("whole", size)
    assert opened(encode_s4_object(b"x" * ((4 << 20) + 1))["metadata"]) == ("framed", None)
    assert opened({"s4-multipart": "true", "s4-original-size": "10"}) == ("framed", None)
    dict_object = {"s4-dict-id": "0123456789abcdef", "s4-original-size": str(50 << 20)}
    assert opened(dict_object) == ("whole", 50 << 20)
    # Without a numeric size the frames must tell it (no KeyError, no guess).
    assert opened({"s4-dict-id": "0123456789abcdef"}) == ("framed", None)
    assert opened({"s4-dict-id": "0123456789abcdef", "s4-original-size": "x"}) == ("framed", None)
    assert opened({}) == ("framed", None)
    gzip = encode_s4_object(b"y" * 1000, "cpu-gzip")["metadata"]
    assert s4_codec._internal.open_layout(gzip) == ("whole", 1000)
    assert s4_codec._internal.open_layout({"s4-codec": "cpu-zstd"}) == ("plain", None)
    assert s4_codec._internal.open_layout(None, b"S4F2") == ("framed", None)


def test_a_sidecar_entry_past_the_stored_body_is_refused():
    data = b"".join(json_event(i) for i in range(200_000))
    obj = encode_s4_object(data)
    index = decode_index(obj["sidecar"])
    entries = index["entries"]
    entries[-1] = entries[-1] | {"compressed_size": entries[-1]["compressed_size"] + 1}
    lying = encode_index(entries, total_padded_size=0)
    RangeDecoder = s4_codec._internal.RangeDecoder
    with pytest.raises(s4_codec.S4IndexError, match="ends past the object's"):
        RangeDecoder(lying, 0, 10, source_size=len(obj["body"]))
    with pytest.raises(s4_codec.S4IndexError):
        decode_s4_object(obj["body"], sidecar=lying, start=0, end=10)
