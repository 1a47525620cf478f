from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, TypedDict, final

from typing_extensions import Buffer, disjoint_base

__version__: str
__all__ = [
    "__version__",
    "S4Error",
    "S4CrcMismatchError",
    "S4SizeMismatchError",
    "S4CodecMismatchError",
    "S4UnregisteredCodecError",
    "S4ManifestSizeExceedsLimitError",
    "S4ManifestSizeMismatchError",
    "S4FrameError",
    "S4IndexError",
    "S4BackendError",
    "S4IoError",
    "_Codec",
    "CpuZstd",
    "CpuGzip",
    "crc32c",
    "crc32c_combine",
    "gpu_available",
    "arrow_compress",
    "arrow_decompress",
    "arrow_crc32c",
    "arrow_frame_info",
    "split_lines",
    "check_compress_args",
    "check_decompress_args",
    "FRAME_MAGIC",
    "PADDING_MAGIC",
    "FRAME_HEADER_BYTES",
    "SIDECAR_SUFFIX",
    "CpuZstdDict",
    "FrameIter",
    "read_frame",
    "frame_iter",
    "pick_chunk_size",
    "encode_s4_object",
    "encode_s4_part",
    "frame_header",
    "decode_frame_prefix",
    "object_layout",
    "open_layout",
    "object_codec",
    "MultipartLedger",
    "Sidecar",
    "RangeDecoder",
    "decode_s4_object",
    "plan_range",
    "decode_index",
    "encode_index",
    "bind_index",
    "decompress_raw",
    "train_dictionary",
]

FRAME_MAGIC: bytes
PADDING_MAGIC: bytes
FRAME_HEADER_BYTES: int
SIDECAR_SUFFIX: str

class S4Error(ValueError):
    # Where the error happened, None where unknown: the row of a column
    # (counted from the start of the column given), or an object's frame and
    # its [start, end) stored (body) and original bytes.
    row: int | None
    frame: int | None
    stored_range: tuple[int, int] | None
    original_range: tuple[int, int] | None

class S4CrcMismatchError(S4Error): ...
class S4SizeMismatchError(S4Error): ...
class S4CodecMismatchError(S4Error): ...
class S4UnregisteredCodecError(S4Error): ...
class S4ManifestSizeExceedsLimitError(S4Error): ...
class S4ManifestSizeMismatchError(S4Error): ...
class S4FrameError(S4Error): ...
class S4IndexError(S4Error): ...

class S4BackendError(RuntimeError):
    row: int | None
    frame: int | None
    stored_range: tuple[int, int] | None
    original_range: tuple[int, int] | None

class S4IoError(OSError):
    row: int | None
    frame: int | None
    stored_range: tuple[int, int] | None
    original_range: tuple[int, int] | None

@disjoint_base
class _Codec:
    """What every codec class shares."""

    def compress(self, data: Buffer) -> tuple[bytes, int, int]: ...
    def decompress(self, data: Buffer, original_size: int, crc32c: int) -> bytes: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class CpuZstd(_Codec):
    """zstd codec (FORMAT.md §4). Levels are clamped to 1..=22."""

    def __new__(cls, level: int = 3) -> CpuZstd: ...
    @property
    def level(self) -> int: ...
    def __reduce__(self) -> tuple[type[CpuZstd], tuple[int]]: ...

@final
class CpuGzip(_Codec):
    """gzip codec (FORMAT.md §5). Levels 0..=9; larger values mean 9."""

    def __new__(cls, level: int = 6) -> CpuGzip: ...
    @property
    def level(self) -> int: ...
    def __reduce__(self) -> tuple[type[CpuGzip], tuple[int]]: ...

def crc32c(data: Buffer) -> int: ...
def crc32c_combine(crc1: int, crc2: int, len2: int) -> int: ...
def gpu_available() -> bool: ...

# Column kernels behind s4_codec.arrow; they check their own arguments.
def arrow_compress(
    values: Any,
    codec: str = "zstd",
    level: int | None = None,
    format: str = "s4",
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> Any: ...
def arrow_decompress(
    values: Any,
    codec: str | None = None,
    format: str = "s4",
    max_output_size: int | None = None,
    on_error: str = "raise",
    as_string: bool = False,
    threads: int | None = None,
    dictionary: Buffer | None = None,
) -> Any: ...
def arrow_crc32c(values: Any, threads: int | None = None) -> Any: ...
def arrow_frame_info(values: Any, on_error: str = "raise") -> Any: ...
def split_lines(
    data: Buffer,
    carry: Buffer | None = None,
    *,
    last: bool = False,
    binary: bool = False,
    origin: int = 0,
    name: str | None = None,
) -> tuple[Any, bytes]: ...

# The kernels' argument checks (src/spec.rs), for doors that build work to run
# later: a ValueError (S4BackendError for a corrupt dictionary) with the
# kernel's message, or None.
def check_compress_args(
    codec: str = "zstd",
    level: int | None = None,
    format: str = "s4",
    dictionary: Buffer | None = None,
    threads: int | None = None,
) -> None: ...
def check_decompress_args(
    codec: str | None = None,
    format: str = "s4",
    dictionary: Buffer | None = None,
    max_output_size: int | None = None,
    on_error: str = "raise",
    threads: int | None = None,
) -> None: ...

class FrameHeader(TypedDict):
    codec: str
    original_size: int
    compressed_size: int
    crc32c: int

class IndexEntry(TypedDict):
    original_offset: int
    original_size: int
    compressed_offset: int
    compressed_size: int

class SseBinding(TypedDict):
    enc_chunk_size: int
    enc_chunk_count: int
    enc_key_id: int
    enc_salt: bytes
    enc_plaintext_len: int
    enc_header_bytes: int

class FrameIndex(TypedDict):
    total_padded_size: int
    total_original_size: int
    source_etag: str | None
    source_compressed_size: int | None
    entries: list[IndexEntry]
    sse: SseBinding | None

class EncodedObject(TypedDict):
    body: bytes
    sidecar: bytes | None
    metadata: dict[str, str]

@final
class CpuZstdDict(_Codec):
    """zstd with a structured or raw-content dictionary (FORMAT.md §6)."""

    def __new__(cls, dict_bytes: Buffer, level: int = 3) -> CpuZstdDict: ...
    @property
    def level(self) -> int: ...
    @property
    def dict_bytes(self) -> bytes: ...
    @property
    def dict_id(self) -> int | None: ...
    @property
    def s4_dict_id(self) -> str: ...
    def __reduce__(self) -> tuple[type[CpuZstdDict], tuple[bytes, int]]: ...

@final
class FrameIter(Iterator[tuple[FrameHeader, bytes]]):
    def __iter__(self) -> FrameIter: ...
    def __next__(self) -> tuple[FrameHeader, bytes]: ...

def read_frame(data: Buffer) -> tuple[FrameHeader, bytes, bytes]: ...
def frame_iter(data: Buffer) -> FrameIter: ...
def pick_chunk_size(content_length: int) -> int: ...
def encode_s4_object(
    data: Buffer,
    codec: str = "cpu-zstd",
    level: int = 3,
    *,
    dictionary: Buffer | None = None,
    threads: int | None = None,
) -> EncodedObject: ...
def encode_s4_part(
    data: Buffer, codec: str = "cpu-zstd", level: int = 3, *, dictionary: Buffer | None = None
) -> bytes: ...

class StoredHeader(TypedDict, total=False):
    padding: bool
    stored_size: int
    codec: str
    original_size: int
    compressed_size: int
    crc32c: int

def frame_header(data: Buffer) -> StoredHeader: ...
def decode_frame_prefix(
    stored: Buffer,
    *,
    dictionary: Buffer | None = None,
    name: str | None = None,
    frame: tuple[int, tuple[int, int], tuple[int, int]] | None = None,
) -> bytes: ...
def object_layout(
    metadata: Mapping[str, str] | None = None, head: Buffer | None = None
) -> Literal["framed", "whole", "plain"]: ...
def open_layout(
    metadata: Mapping[str, str] | None = None, head: Buffer | None = None
) -> tuple[Literal["framed", "whole", "plain"], int | None]: ...
def object_codec(codec: str, *, store: str = "this store", keeps_metadata: bool = True) -> str: ...

@final
class MultipartLedger:
    def __new__(
        cls, codec: str = "cpu-zstd", level: int = 3, *, dictionary: Buffer | None = None
    ) -> MultipartLedger: ...
    def encode_part(self, data: Buffer) -> bytes: ...
    @property
    def parts(self) -> int: ...
    @property
    def original_size(self) -> int: ...
    @property
    def stored_size(self) -> int: ...
    def upload_metadata(self) -> dict[str, str]: ...
    def complete_metadata(self) -> dict[str, str]: ...
    def sidecar(self, stored_etag: str | None = None) -> bytes: ...

@final
class Sidecar:
    def __new__(
        cls,
        data: Buffer,
        *,
        metadata: Mapping[str, str] | None = None,
        source_size: int | None = None,
        source_etag: str | None = None,
        name: str | None = None,
    ) -> Sidecar: ...
    @property
    def size(self) -> int: ...
    @property
    def frames(self) -> list[tuple[int, int]]: ...
    @property
    def tail(self) -> tuple[int, int] | None: ...
    def check_tail(self, head: Buffer) -> None: ...

@final
class RangeDecoder:
    def __new__(
        cls,
        sidecar: Sidecar | Buffer,
        start: int | None = None,
        end: int | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        dictionary: Buffer | None = None,
        max_output_size: int = ...,
        source_size: int | None = None,
        source_etag: str | None = None,
    ) -> RangeDecoder: ...
    @property
    def pending(self) -> list[tuple[int, int]]: ...
    def decode(self, fetched: Buffer, body_offset: int, threads: int | None = None) -> int: ...
    def finish(self) -> bytes: ...

def decode_s4_object(
    body: Buffer,
    metadata: Mapping[str, str] | None = None,
    *,
    dictionary: Buffer | None = None,
    threads: int | None = None,
    sidecar: Buffer | None = None,
    start: int | None = None,
    end: int | None = None,
    max_output_size: int = ...,
    body_offset: int | None = None,
    source_size: int | None = None,
    source_etag: str | None = None,
) -> bytes: ...
def plan_range(sidecar: Buffer, start: int, end: int) -> tuple[int, int, int]: ...
def decode_index(data: Buffer) -> FrameIndex: ...
def encode_index(
    entries: Sequence[IndexEntry],
    total_padded_size: int,
    source_compressed_size: int | None = None,
    source_etag: str | None = None,
    sse: SseBinding | None = None,
) -> bytes: ...
def bind_index(
    sidecar: Buffer, source_compressed_size: int, source_etag: str | None = None
) -> bytes: ...
def decompress_raw(data: Buffer, codec: str, max_output_size: int = ...) -> bytes: ...
def train_dictionary(samples: Any, size: int = 112640) -> bytes: ...
