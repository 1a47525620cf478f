"""The ``s4-codec`` command (also ``python -m s4_codec``).

    s4-codec compress IN [-o OUT] [--codec cpu-zstd] [--level 3] [--format s4|raw]
    s4-codec decompress IN [-o OUT]        # S4 body, zstd or gzip, detected
    s4-codec inspect IN                    # frames, metadata, sidecar as JSON
    s4-codec verify IN                     # decode and check every CRC

Objects in buckets (``s3://bucket/key``) and local files, as the gateway stores them:

    s4-codec get s3://bucket/key [-o OUT] [--range A-B]   # decoded bytes to a file
    s4-codec cat s3://bucket/key [--range A-B]            # decoded bytes to stdout
    s4-codec put IN s3://bucket/key [--codec] [--level]   # single PUT or streaming multipart
    s4-codec ls s3://bucket/prefix                        # keys with original sizes
    s4-codec inspect s3://bucket/key                      # layout, sizes, ETag, metadata

Endpoint, region and credentials come from the usual AWS environment variables
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ...) or
``--endpoint-url``/``--region``. ``-`` means standard input / output. ``compress``
writes an S4 object body (chunked into frames as the gateway does) and, for more
than one frame, its ``.s4index`` sidecar next to OUT. Exit status: 0 success,
1 invalid or corrupt data, 2 bad usage, 3 I/O failure (a missing object included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
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
    if not data or _internal.object_layout(None, data[:4]) == "framed":
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
    if _is_url(args.input):
        return cmd_inspect_object(args)
    data = _read(args.input)
    kind = _detect(data)
    report: dict[str, object] = {"kind": kind, "stored_size": len(data)}
    if kind == "s4":
        # Sizes and CRCs come from the frame headers: nothing is decompressed.
        frames = [header for header, _ in s4_codec.frame_iter(data)]
        codecs = {f["codec"] for f in frames}
        crc = 0
        for f in frames:
            crc = _internal.crc32c_combine(crc, f["crc32c"], f["original_size"])
        report["frames"] = frames
        report["metadata"] = {
            "s4-codec": codecs.pop() if len(codecs) == 1 else "mixed",
            "s4-original-size": str(sum(f["original_size"] for f in frames)),
            "s4-compressed-size": str(len(data)),
            "s4-crc32c": str(crc),
            "s4-framed": "true",
        }
        report["sidecar"] = _sidecar_of(args.input)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- objects in buckets and local stores -------------------------------------


def _is_url(target: str) -> bool:
    return "://" in target


@contextmanager
def _store_errors(target: str) -> Iterator[None]:
    """Store failures (a missing object included) exit with EXIT_IO; corrupt
    data keeps its S4 class (S4IoError is an OSError too, but means bad data)."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, s4_codec.S4IoError | BrokenPipeError):
            raise
        raise CliError(f"{target}: {exc.strerror or exc}", EXIT_IO) from exc


def _store(target: str, args: argparse.Namespace, *, prefix: bool = False) -> tuple[object, str]:
    """(store, key) for an s3:// URL or a local path (its directory as a LocalStore)."""
    if find_spec("obstore") is None:
        raise CliError("needs the io extra: pip install 's4-codec[io]'", EXIT_USAGE)
    from s4_codec.io._urls import locate

    try:
        where = locate(
            target,
            directory=None if prefix else False,
            endpoint=args.endpoint_url,
            region=args.region,
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if where.scheme == "file" and not prefix:
        Path(where.root).mkdir(parents=True, exist_ok=True)
    return where.store(), where.key


def _range(text: str | None) -> tuple[int | None, int | None]:
    """--range A-B: original bytes [A, B) (either side may be omitted)."""
    if not text:
        return None, None
    a, sep, b = text.partition("-")
    try:
        if not sep:
            raise ValueError
        return (int(a) if a else None), (int(b) if b else None)
    except ValueError:
        message = f"--range wants A-B (original bytes [A, B)), got {text!r}"
        raise CliError(message, EXIT_USAGE) from None


def _copy_out(args: argparse.Namespace, out: object) -> None:
    import s4_codec.io as s4io

    store, key = _store(args.source, args)
    start, end = _range(args.range)
    with s4io.open_reader(store, key) as f:
        a, b, _ = slice(start, end).indices(f.size)
        f.seek(a)
        left, done = max(b - a, 0), 0
        show = left > PROGRESS_MIN_BYTES and sys.stderr.isatty()
        while left:
            block = f.read(min(left, 8 << 20))
            if not block:  # the reader never reads short; a truncated copy must not look whole
                raise CliError(
                    f"{args.source}: ended at original byte {b - left} of {b}", EXIT_DATA
                )
            out.write(block)  # type: ignore[attr-defined]
            left -= len(block)
            done += len(block)
            if show:
                _progress(done, b - a)
        if show:
            sys.stderr.write("\n")


def cmd_get(args: argparse.Namespace) -> None:
    target = args.output or Path(args.source.rstrip("/").rsplit("/", 1)[-1]).name
    if target == "-":
        return cmd_cat(args)
    tmp = Path(target + ".part")
    try:
        with _store_errors(args.source), open(tmp, "wb") as out:
            _copy_out(args, out)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cmd_cat(args: argparse.Namespace) -> None:
    with _store_errors(args.source):
        _copy_out(args, sys.stdout.buffer)
        sys.stdout.buffer.flush()


def cmd_put(args: argparse.Namespace) -> None:
    import s4_codec.io as s4io

    store, key = _store(args.dest, args)
    codec = CODEC_ALIASES.get(args.codec, args.codec)
    level = 3 if args.level is None else args.level
    try:
        size = None if args.input == "-" else os.path.getsize(args.input)
        src = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {args.input}: {exc.strerror or exc}", EXIT_IO) from exc
    with _store_errors(args.dest):
        with src:
            result: dict[str, object] | None
            if size is not None and size < args.multipart_threshold:
                result = s4io.put(store, key, src.read(), codec, level)
            else:
                show = size is not None and size > PROGRESS_MIN_BYTES and sys.stderr.isatty()
                with s4io.S4Writer(
                    store, key, codec=codec, level=level, part_size=args.part_size
                ) as w:
                    while block := src.read(args.part_size):
                        w.write(block)
                        if show:
                            _progress(w.tell(), size or 0)
                if show:
                    sys.stderr.write("\n")
                result = w.result
    assert result is not None
    print(
        f"{args.dest}: {result['size']} bytes stored as {result['stored_size']}, "
        f"ETag {result['etag'] or result['stored_etag']}"
    )


def cmd_ls(args: argparse.Namespace) -> None:
    import s4_codec.io as s4io

    store, prefix = _store(args.target, args, prefix=True)
    from s4_codec.io._stores import is_auxiliary

    with _store_errors(args.target):
        for name, stored in s4io.backend_for(store).listing(prefix):
            if not is_auxiliary(name):
                info = s4io.stat(store, name)
                print(f"{info['size']:>14} {stored:>14} {info['kind']:<7} {name}")


def cmd_inspect_object(args: argparse.Namespace) -> None:
    import s4_codec.io as s4io

    store, key = _store(args.input, args)
    with _store_errors(args.input):
        info = s4io.stat(store, key)
    modified = info.pop("last_modified")
    info["last_modified"] = modified.isoformat() if modified else None
    json.dump(info, sys.stdout, indent=2)
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
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument("--endpoint-url", help="S3 endpoint (default: $AWS_ENDPOINT_URL)")
    remote.add_argument("--region", help="S3 region (default: $AWS_REGION)")
    p = sub.add_parser("get", parents=[remote], help="download an object, decoded")
    p.add_argument("source", help="s3://bucket/key or a local S4 body")
    p.add_argument("-o", "--output", help="output file (default: the key's name; - for stdout)")
    p.add_argument("--range", help="original bytes A-B ([A, B), either side optional)")
    p.set_defaults(run=cmd_get, input=None)
    p = sub.add_parser("cat", parents=[remote], help="write an object, decoded, to stdout")
    p.add_argument("source", help="s3://bucket/key or a local S4 body")
    p.add_argument("--range", help="original bytes A-B ([A, B), either side optional)")
    p.set_defaults(run=cmd_cat, input=None)
    p = sub.add_parser("put", parents=[remote], help="upload a file as an S4 object")
    p.add_argument("input", help="local file, or - for standard input")
    p.add_argument("dest", help="s3://bucket/key or a local path")
    p.add_argument("--codec", default="cpu-zstd", choices=["cpu-zstd", "zstd", "passthrough"])
    p.add_argument("--level", type=int, default=None)
    p.add_argument(
        "--part-size",
        type=int,
        default=8 << 20,
        help="original bytes per part of a multipart upload (default 8 MiB)",
    )
    p.add_argument(
        "--multipart-threshold",
        type=int,
        default=64 << 20,
        help="files of at least this many bytes, and stdin, go multipart (default 64 MiB)",
    )
    p.set_defaults(run=cmd_put)
    p = sub.add_parser("ls", parents=[remote], help="list objects with original sizes")
    p.add_argument("target", help="s3://bucket/prefix or a local directory")
    p.set_defaults(run=cmd_ls, input=None)
    inspect = sub.choices["inspect"]
    for action in inspect._actions:
        if action.dest == "input":
            action.help = "input file, - for standard input, or s3://bucket/key"
    inspect.add_argument("--endpoint-url", help="S3 endpoint (default: $AWS_ENDPOINT_URL)")
    inspect.add_argument("--region", help="S3 region (default: $AWS_REGION)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except CliError as exc:
        print(f"s4-codec: {exc}", file=sys.stderr)
        return exc.status
    except (s4_codec.S4Error, s4_codec.S4IoError, s4_codec.S4BackendError) as exc:
        where = args.input or getattr(args, "source", None) or getattr(args, "target", "")
        print(f"s4-codec: {where}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_DATA
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
