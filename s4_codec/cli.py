"""The ``s4-codec`` command (also ``python -m s4_codec``).

    s4-codec compress IN [-o OUT] [--codec cpu-zstd] [--level 3] [--format s4|raw]
    s4-codec decompress IN [-o OUT]        # S4 body, zstd or gzip, detected
    s4-codec inspect IN                    # frames, metadata, sidecar as JSON
    s4-codec verify IN                     # decode and check every CRC

``-`` means standard input / output. ``compress`` writes an S4 object body
(chunked into frames as the gateway does) and, for more than one frame, its
``.s4index`` sidecar next to OUT. Exit status: 0 success, 1 invalid or corrupt
data, 2 bad usage, 3 I/O failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import s4_codec
from s4_codec import _internal

EXIT_DATA, EXIT_USAGE, EXIT_IO = 1, 2, 3
PROGRESS_MIN_BYTES = 64 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
CODEC_ALIASES = {"zstd": "cpu-zstd", "gzip": "cpu-gzip"}


class CliError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done >> 20}/{total >> 20} MiB")
    sys.stderr.flush()


def _read(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        size = os.path.getsize(path)
        show = size > PROGRESS_MIN_BYTES and sys.stderr.isatty()
        chunks, done = [], 0
        with open(path, "rb") as f:
            while block := f.read(8 << 20):
                chunks.append(block)
                done += len(block)
                if show:
                    _progress(done, size)
        if show:
            sys.stderr.write("\n")
        return b"".join(chunks)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", EXIT_IO) from exc


def _write(path: str | None, data: bytes) -> None:
    try:
        if path in (None, "-"):
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            Path(path).write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_IO) from exc


def _codec(name: str, level: int | None) -> object:
    name = CODEC_ALIASES.get(name, name)
    if name == "cpu-zstd":
        return s4_codec.CpuZstd(3 if level is None else level)
    if name == "cpu-gzip":
        return s4_codec.CpuGzip(6 if level is None else level)
    raise CliError(f"--format raw supports zstd and gzip, not {name}", EXIT_USAGE)


def cmd_compress(args: argparse.Namespace) -> None:
    data = _read(args.input)
    codec = CODEC_ALIASES.get(args.codec, args.codec)
    if args.format == "raw":
        payload, _, _ = _codec(codec, args.level).compress(data)  # type: ignore[attr-defined]
        _write(args.output, payload)
        return
    level = 3 if args.level is None else args.level
    try:
        obj = s4_codec.encode_s4_object(data, codec, level, threads=args.threads)
    except NotImplementedError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    _write(args.output, obj["body"])
    if obj["sidecar"] is not None:
        if args.output in (None, "-"):
            print("note: sidecar not written (output is stdout)", file=sys.stderr)
        else:
            _write(args.output + s4_codec.SIDECAR_SUFFIX, obj["sidecar"])


def _detect(data: bytes) -> str:
    if data[:4] in (s4_codec.FRAME_MAGIC, s4_codec.PADDING_MAGIC) or not data:
        return "s4"
    if data[:4] == ZSTD_MAGIC:
        return "zstd"
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    raise CliError("input is not an S4 object body, a zstd frame or a gzip member", EXIT_DATA)


def _decode(data: bytes, threads: int | None) -> bytes:
    kind = _detect(data)
    if kind == "s4":
        return s4_codec.decode_s4_object(data, threads=threads)
    return _internal.decompress_raw(data, "cpu-" + kind)


def cmd_decompress(args: argparse.Namespace) -> None:
    _write(args.output, _decode(_read(args.input), args.threads))


def _sidecar_of(path: str) -> dict[str, object] | None:
    """The sidecar stored next to `path`, decoded and JSON-ready."""
    if path == "-":
        return None
    sidecar = Path(path + s4_codec.SIDECAR_SUFFIX)
    if not sidecar.exists():
        return None
    index: dict[str, object] = dict(s4_codec.decode_index(sidecar.read_bytes()))
    sse = index["sse"]
    if isinstance(sse, dict):
        index["sse"] = {k: v.hex() if isinstance(v, bytes) else v for k, v in sse.items()}
    return index


def cmd_inspect(args: argparse.Namespace) -> None:
    data = _read(args.input)
    kind = _detect(data)
    report: dict[str, object] = {"kind": kind, "stored_size": len(data)}
    if kind == "s4":
        frames = [header for header, _ in s4_codec.frame_iter(data)]
        codecs = {f["codec"] for f in frames}
        report["frames"] = frames
        report["metadata"] = {
            "s4-codec": codecs.pop() if len(codecs) == 1 else "mixed",
            "s4-original-size": str(sum(f["original_size"] for f in frames)),
            "s4-compressed-size": str(len(data)),
            "s4-crc32c": str(s4_codec.crc32c(_decode(data, None))),
            "s4-framed": "true",
        }
        report["sidecar"] = _sidecar_of(args.input)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


def cmd_verify(args: argparse.Namespace) -> None:
    data = _read(args.input)
    out = _decode(data, args.threads)
    frames = sum(1 for _ in s4_codec.frame_iter(data)) if _detect(data) == "s4" else 1
    print(f"OK: {frames} frame(s), {len(out)} bytes, crc32c 0x{s4_codec.crc32c(out):08x}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="s4-codec", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=s4_codec.__version__)
    sub = top.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("input", help="input file, or - for standard input")
    common.add_argument("--threads", type=int, default=None, help="threads (default: all)")
    p = sub.add_parser("compress", parents=[common], help="write an S4 body or raw payload")
    p.add_argument("-o", "--output", help="output file (default: standard output)")
    p.add_argument(
        "--codec",
        default="cpu-zstd",
        choices=["cpu-zstd", "zstd", "cpu-gzip", "gzip", "passthrough"],
    )
    p.add_argument("--level", type=int, default=None)
    p.add_argument("--format", default="s4", choices=["s4", "raw"])
    p.set_defaults(run=cmd_compress)
    p = sub.add_parser("decompress", parents=[common], help="decode an S4 body, zstd or gzip")
    p.add_argument("-o", "--output", help="output file (default: standard output)")
    p.set_defaults(run=cmd_decompress)
    p = sub.add_parser("inspect", parents=[common], help="print frames, metadata, sidecar")
    p.set_defaults(run=cmd_inspect)
    p = sub.add_parser("verify", parents=[common], help="decode and check every CRC")
    p.set_defaults(run=cmd_verify)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except CliError as exc:
        print(f"s4-codec: {exc}", file=sys.stderr)
        return exc.status
    except (s4_codec.S4Error, s4_codec.S4IoError, s4_codec.S4BackendError) as exc:
        print(f"s4-codec: {args.input}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_DATA
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
