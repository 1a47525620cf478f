"""Writes the seed corpora of the fuzz targets from tests/data/vectors.json.

Each target reads its input in the layout documented on its check function
(fuzz/src/checks.rs, fuzz/src/object_checks.rs) and in fuzz/README.md; this
script writes the golden payloads, frames, bodies, sidecars and malformed
cases of vectors.json in those layouts, named by SHA-1 as libFuzzer does.
It also writes fuzz/data/structured.dict, the dictionary the checks load.

    .venv/bin/python fuzz/seed.py [--out DIR]   # default: fuzz/corpus

Seeds only add files; run `cargo fuzz cmin` afterwards to keep the corpus
small. Needs nothing beyond the standard library (and pytest's conftest
helpers for the vectors' recipes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import RECIPES, blob  # noqa: E402

LIMIT = 8 << 20
MAX_SEED = 64 << 10  # keeps libFuzzer's max_len, and replay, small


def crc32c(data: bytes) -> int:
    table = crc32c.table  # type: ignore[attr-defined]
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _table() -> list[int]:
    out = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        out.append(c)
    return out


crc32c.table = _table()  # type: ignore[attr-defined]

u8 = struct.Struct("<B").pack
u16 = struct.Struct("<H").pack
u32 = struct.Struct("<I").pack
u64 = struct.Struct("<Q").pack

CODEC_ID = {"passthrough": 0, "cpu-zstd": 1, "cpu-gzip": 7, "cpu-zstd-dict": 8}


def frame(codec_id: int, original: bytes | int, payload: bytes, crc: int | None = None) -> bytes:
    size = original if isinstance(original, int) else len(original)
    if crc is None:
        crc = crc32c(original) if isinstance(original, bytes) else 0
    return b"S4F2" + u32(codec_id) + u64(size) + u64(len(payload)) + u32(crc) + payload


def padding(n: int, fill: int = 0) -> bytes:
    return b"S4P1" + u64(n) + bytes([fill]) * n


def cells(values: list[bytes | None]) -> bytes:
    out = b""
    for v in values:
        out += u16(0xFFFF) if v is None else u16(len(v)) + v
    return out


def gzip_member(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


class Corpus:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count: dict[str, int] = {}

    def add(self, target: str, data: bytes) -> None:
        if len(data) > MAX_SEED:
            return
        d = self.root / target
        d.mkdir(parents=True, exist_ok=True)
        (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
        self.count[target] = self.count.get(target, 0) + 1


def sidecar(entries: list[tuple[int, int, int, int]], padded: int, version: int = 2) -> bytes:
    total = entries[-1][0] + entries[-1][1] if entries else 0
    out = b"S4IX" + u32(version) + u64(len(entries)) + u64(total) + u64(padded)
    if version >= 2:
        out += u64(0) + u32(0)
    if version == 3:
        out += u32(1 << 20) + u32(2) + u16(1) + b"saltsalt" + u64(total) + u32(24)
    for e in entries:
        out += b"".join(u64(x) for x in e)
    return out


def multiframe(pieces: list[tuple[int, bytes, bytes]], pad: int = 0) -> tuple[bytes, bytes]:
    """A body of (codec id, original, payload) frames and its v2 sidecar."""
    body, entries, at = b"", [], 0
    for codec_id, original, payload in pieces:
        f = frame(codec_id, original, payload)
        entries.append((at, len(original), len(body), len(f)))
        body += f
        at += len(original)
        if pad:
            body += padding(pad)
    return body, sidecar(entries, len(body))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=FUZZ / "corpus")
    args = ap.parse_args()
    v = json.loads((ROOT / "tests" / "data" / "vectors.json").read_text())
    c = Corpus(args.out)

    dict_bytes = bytes.fromhex(v["cpu_zstd_dict"]["structured_dict"]["bytes"]["hex"])
    (FUZZ / "data").mkdir(exist_ok=True)
    (FUZZ / "data" / "structured.dict").write_bytes(dict_bytes)

    # Payloads with their manifests: (codec name, original or None, payload, size, crc).
    payloads: list[tuple[str, bytes | None, bytes, int, int]] = []
    for name in ("cpu_zstd", "cpu_gzip"):
        for vec in v[name]:
            payload = blob(vec["compressed"])
            if payload is not None:
                codec = "cpu-zstd" if name == "cpu_zstd" else "cpu-gzip"
                payloads.append(
                    (codec, blob(vec["input"]), payload, vec["original_size"], vec["crc32c"])
                )
    dict_payloads = []
    for vec in v["cpu_zstd_dict"]["vectors"]:
        payload = blob(vec["compressed"])
        if payload is not None and vec["dict"] == "structured":
            dict_payloads.append((blob(vec["input"]), payload, vec["original_size"], vec["crc32c"]))
    cases = v["errors"]["cases"]

    def case_int(value: object, bits: int) -> int | None:
        try:
            n = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return n if 0 <= n < 1 << bits else None

    # --- sized codec decoders
    for codec, _, payload, size, crc in payloads:
        target = "codec_zstd_decode" if codec == "cpu-zstd" else "codec_gzip_decode"
        c.add(target, u64(size) + u32(crc) + payload)
        c.add(target, u64(size + 1) + u32(crc) + payload)  # claim one too many
        c.add(target, u64(max(size - 1, 0)) + u32(crc) + payload)  # bomb guard
    for _original, payload, size, crc in dict_payloads:
        c.add("codec_zstd_decode", u64(size) + u32(crc) + payload)  # needs a dictionary
    for case in cases:
        prefix = case["name"].split(":")[0]
        if prefix not in ("zstd", "gzip") or "data" not in case:
            continue
        size, crc = case_int(case.get("original_size"), 64), case_int(case.get("crc32c"), 32)
        if size is None or crc is None:
            continue
        seed = u64(size % (LIMIT + 1)) + u32(crc) + bytes.fromhex(case["data"])
        c.add("codec_zstd_decode" if prefix == "zstd" else "codec_gzip_decode", seed)

    # --- unsized decoder: sel % 3 = zstd, gzip, passthrough; sel / 3 % 8 * 5 prefix bytes
    for codec, _, payload, _, _ in payloads:
        sel = 0 if codec == "cpu-zstd" else 1
        c.add("codec_raw_decode", u8(sel) + payload)
        c.add("codec_raw_decode", u8(sel + 3 * 5) + payload + b"trailing")
    for case in cases:
        if case["name"].startswith(("zstd:", "gzip:")) and "data" in case:
            sel = 0 if case["name"].startswith("zstd") else 1
            c.add("codec_raw_decode", u8(sel) + bytes.fromhex(case["data"]))
    c.add("codec_raw_decode", u8(2) + b"passthrough bytes")
    c.add("codec_raw_decode", u8(1) + gzip_member(b"x" * 100_000, 9))

    # --- framed bodies
    bodies: list[bytes] = []
    for vec in v["read_frame"] + v["frame_iter"]:
        bodies.append(blob(vec["input"]))
    for obj in v["encode_s4_object"]["objects"]:
        body = blob(obj["body"])
        if body is not None and obj["codec"] == "cpu-zstd":
            bodies.append(body)
    for case in cases:
        if case["name"].startswith(("read_frame:", "frame_iter:")) and "data" in case:
            bodies.append(bytes.fromhex(case["data"]))
    mixed = []
    for codec, _original, payload, size, crc in payloads[:12]:
        mixed.append(frame(CODEC_ID[codec], size, payload, crc))
    bodies.append(b"".join(mixed))
    bodies.append(mixed[0] + padding(7, 0xAB) + mixed[-1] + padding(0))
    for _original, payload, size, crc in dict_payloads[:2]:
        bodies.append(frame(8, size, payload, crc))
    bodies.append(frame(3, 1000, b"gpu payload"))  # parse-only codec
    bodies.append(frame(1, 5 << 30, b"\x28\xb5\x2f\xfd" + bytes(20)))  # huge claim
    for body in bodies:
        c.add("frame_parse", body)

    # --- sidecars
    sidecars: list[bytes] = []
    for vec in v["index"]["decode_index"]:
        sidecars.append(blob(vec["input"]))
    for vec in v["index"]["bind_index"]:
        sidecars += [blob(vec[k]) for k in ("input", "output") if k in vec]
    for obj in v["encode_s4_object"]["objects"]:
        if obj.get("sidecar"):
            sidecars.append(blob(obj["sidecar"]))
    for case in cases:
        if case["name"].startswith(("decode_index:", "bind_index:")) and "data" in case:
            sidecars.append(bytes.fromhex(case["data"]))
    for sc in sidecars:
        c.add("index_decode", u64(0) + u64(1 << 62) + sc)
        c.add("index_decode", u64(5) + u64(4 << 20) + sc)

    # --- object decode: flags | codec | size | crc | csize | body
    names = [
        "passthrough",
        "cpu-zstd",
        "nvcomp-zstd",
        "nvcomp-bitcomp",
        "nvcomp-gans",
        "dietgpu-ans",
        "nvcomp-gdeflate",
        "cpu-gzip",
        "cpu-zstd-dict",
        "CPU-ZSTD",
    ]

    def obj_seed(
        flags: int, codec: str, size: int, crc: int, body: bytes, csize: int = 0, limit: int = 0
    ) -> bytes:
        head = u8(flags) + u8(names.index(codec)) + u64(size) + u32(crc) + u8(csize & 0xFF)
        return head + u16(limit) + body

    all_keys = 1 | 8 | 16 | 32 | 64
    for obj in v["encode_s4_object"]["objects"]:
        body = blob(obj["body"])
        if body is None:
            continue
        m = obj["metadata"]
        size, crc = int(m["s4-original-size"]), int(m["s4-crc32c"])
        framed = 2 if m.get("s4-framed") == "true" else 0
        c.add("object_decode", obj_seed(all_keys | framed, m["s4-codec"], size, crc, body))
        c.add("object_decode", obj_seed(0, m["s4-codec"], size, crc, body))  # no metadata
        c.add("object_decode", obj_seed(1 | 4, m["s4-codec"], size, crc, body))  # multipart
        if 0 < size < 0xFFFF:  # a limit one byte short
            seed = obj_seed(all_keys | framed, m["s4-codec"], size, crc, body, 0, size)
            c.add("object_decode", seed)
    for codec, _, payload, size, crc in payloads:
        c.add("object_decode", obj_seed(all_keys, codec, size, crc, payload))  # manifest
        c.add("object_decode", obj_seed(all_keys, codec, size, crc, payload, -1))
    for _original, payload, size, crc in dict_payloads:
        body = frame(8, size, payload, crc)
        c.add("object_decode", obj_seed(0x80 | all_keys | 2, "cpu-zstd-dict", size, crc, body))
        c.add("object_decode", obj_seed(0x80 | all_keys, "cpu-zstd-dict", size, crc, payload))
    for body in bodies:
        c.add("object_decode", obj_seed(0, "cpu-zstd", 0, 0, body))
    c.add("object_decode", obj_seed(all_keys, "passthrough", 5, crc32c(b"plain"), b"plain"))
    c.add("object_decode", obj_seed(1, "passthrough", 0, 0, b"not managed"))
    c.add("object_decode", obj_seed(1, "passthrough", 0, 0, b"not managed", 0, 4))

    # --- ranged reads, forged: mode | start | end | off | len | sidecar_len | sidecar | body
    ranged: list[tuple[bytes, bytes, int]] = []
    for obj in v["encode_s4_object"]["objects"]:
        body, sc = blob(obj["body"]), obj.get("sidecar") and blob(obj["sidecar"])
        if body is not None and sc:
            ranged.append((body, sc, int(obj["metadata"]["s4-original-size"])))
    zstd_small = [(o, p) for codec, o, p, _, _ in payloads if codec == "cpu-zstd" and o]
    gzip_small = [(o, p) for codec, o, p, _, _ in payloads if codec == "cpu-gzip" and o]
    pieces = [(1, o, p) for o, p in zstd_small[:4]] + [(7, o, p) for o, p in gzip_small[:3]]
    pieces.append((0, b"passthrough piece", b"passthrough piece"))
    for pad in (0, 5):
        body, sc = multiframe(pieces, pad)
        ranged.append((body, sc, sum(len(o) for _, o, _ in pieces)))
    for body, sc, total in ranged:
        for start, end in ((0, 1), (0, total), (total // 3, total // 2 + 7), (total - 1, total)):
            for mode in (0, 2, 16):
                head = u8(mode) + u64(start) + u64(end)
                whole = head + u32(0) + u32(len(body)) + u16(len(sc)) + sc + body
                c.add("object_range", whole)
            head = u8(4) + u64(start) + u64(end)
            c.add("object_range", head + u32(0) + u32(len(body)) + u16(len(sc)) + sc + body)
    # valid: mode | start | end | chunk | level | slack | data
    for data in (b"", b"a", RECIPES["hello_len"](3000), RECIPES["text"](40), RECIPES["range"](3)):
        for mode in (1, 3, 0x81):
            c.add("object_range", u8(mode) + u64(5) + u64(2000) + u8(97) + u8(3) + u8(9) + data)

    # --- column decompress: mode | cells
    s4_cells = [b for b in bodies if len(b) < 4000][:10]
    zstd_cells = [p for codec, _, p, _, _ in payloads if codec == "cpu-zstd"][:8]
    gzip_cells = [p for codec, _, p, _, _ in payloads if codec == "cpu-gzip"][:8]
    c.add("column_decompress", u8(0) + cells(s4_cells + [None, b""]))
    c.add("column_decompress", u8(2) + cells(s4_cells + [None, b"garbage"]))
    c.add("column_decompress", u8(1) + cells(zstd_cells + [None]))
    c.add("column_decompress", u8(1 | 2 | 16) + cells(zstd_cells + [b"junk", None]))
    c.add("column_decompress", u8(1 | 4) + cells(gzip_cells + [None]))
    c.add("column_decompress", u8(1 | 2 | 4) + cells(gzip_cells + [zstd_cells[0]]))
    c.add("column_decompress", u8(1 | 8) + cells([b"raw", None, b"cells"]))
    dict_cells = [frame(8, s, p, crc) for _, p, s, crc in dict_payloads]
    c.add("column_decompress", u8(32) + cells(dict_cells + s4_cells[:2]))
    for body in s4_cells:
        c.add("column_decompress", u8(0) + cells([body]))

    # --- round trips: plain data from the vectors' inputs and recipes
    datas: list[bytes] = [b"", b"a", b"\0" * 64, bytes(range(256))]
    datas += [o for _, o, _, _, _ in payloads if o is not None and len(o) <= 4096][:10]
    datas += [RECIPES["text"](60), RECIPES["hello_len"](2048), RECIPES["splitmix64"](7, 1024)]
    datas += [RECIPES["json_event"](i) for i in range(3)]
    for i, data in enumerate(datas):
        for sel, level in ((0, 3), (1, 6), (2, 0), (0x80, 19), (0, 0xFF), (1, 0)):
            c.add("codec_roundtrip", u8(sel) + u8(level) + data)
        c.add("frame_roundtrip", u8(i % 16) + u8(3) + u8(i * 37 % 256) + u8(i % 3 * 9) + data)
        mode = (i * 29) % 256
        c.add("object_roundtrip", u8(i % 3) + u8(3) + u8(mode) + u64(i) + u64(i * 977) + data)
        split = [data[j : j + 50] for j in range(0, len(data), 50)] + [None, b""]
        c.add("column_roundtrip", u8(i % 16) + u8(3) + cells(split))

    # index round trip: flags | padded | source | etag_len | etag | sse | bases | entries
    entry = struct.Struct("<HIHI").pack
    for flags, etag, bases, entries in (
        (0, b"", (0, 0), []),
        (0, b'"abc-1"', (0, 0), [(0, 100, 0, 80), (0, 50, 4, 40)]),
        (1, b"etag", (10, 20), [(5, 10, 0, 30), (0, 0, 0, 0), (7, 1, 3, 29)]),
        (4, "é".encode(), ((1 << 64) - 200, 0), [(0, 100, 0, 10), (0, 100, 0, 10)]),
        (2, b"", (0, 0), [(0, 1, 0, 1)]),
        (5, b"x" * 40, (0, 0), [(i % 3, i * 7, i % 5, 28 + i) for i in range(20)]),
    ):
        sse = u32(1 << 20) + u32(3) + u16(7) + b"saltsalt" + u64(3 << 20) + u32(24)
        seed = u8(flags) + u64(1234) + u64(4321) + u8(len(etag)) + etag + sse
        seed += u64(bases[0]) + u64(bases[1]) + b"".join(entry(*e) for e in entries)
        c.add("index_roundtrip", seed)

    for target, n in sorted(c.count.items()):
        print(f"{target}: {n} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
