"""DuckDB door (s4_codec.duckdb): SQL functions over the Arrow column kernels, on a real
DuckDB with SET threads=2."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import json_event, require

import s4_codec
from s4_codec.duckdb import _decompress_udf, register

pa = require("pyarrow")
pq = require("pyarrow.parquet")
duckdb = require("duckdb")
s4a = require("s4_codec.arrow")

# Over one DuckDB row group (122 880 rows), so that both threads get work.
N = 150_000


def random_blobs(n: int, seed: int) -> list[bytes | None]:
    rng = random.Random(seed)
    blobs: list[bytes | None] = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.05:
            blobs.append(None)
        elif kind < 0.10:
            blobs.append(b"")
        elif kind < 0.20:
            blobs.append(rng.randbytes(rng.randrange(1, 600)))  # incompressible
        else:
            blobs.append(json_event(i)[: rng.randrange(1, 250)])
    return blobs


BLOBS = random_blobs(N, seed=12)
TEXTS = [None if b is None else json_event(i).decode() for i, b in enumerate(BLOBS[:5000])]


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads=2")
    return register(con)


@pytest.fixture(scope="module")
def con():
    con = connect()
    con.register("source", pa.table({"id": range(N), "payload": pa.array(BLOBS, pa.binary())}))
    con.execute("CREATE TABLE blobs AS SELECT * FROM source")
    con.unregister("source")
    texts = pa.table({"id": range(len(TEXTS)), "body": pa.array(TEXTS, pa.string())})
    con.register("texts_source", texts)
    con.execute("CREATE TABLE texts AS SELECT * FROM texts_source")
    con.unregister("texts_source")
    yield con
    con.close()


def column(con, sql: str) -> list:
    return [row[0] for row in con.execute(sql).fetchall()]


@pytest.mark.parametrize(
    ("compress", "decompress"),
    [
        ("s4_compress(payload)", "s4_decompress"),
        ("s4_compress(payload, 'gzip')", "s4_decompress"),
        ("s4_compress(payload, 'passthrough')", "s4_decompress"),
        ("s4_compress(payload, 'zstd', 19)", "try_s4_decompress"),
        ("s4_compress_raw(payload, 'zstd')", "s4_decompress_raw({}, 'zstd')"),
        ("s4_compress_raw(payload, 'gzip', 1)", "try_s4_decompress_raw({}, 'gzip')"),
    ],
)
def test_round_trip_with_nulls_and_empties(con, compress, decompress):
    call = decompress.format("cell") if "{}" in decompress else f"{decompress}(cell)"
    rows = con.execute(
        f"WITH packed AS (SELECT id, {compress} AS cell FROM blobs) "
        f"SELECT id, {call} FROM packed ORDER BY id"
    ).fetchall()
    assert [r[0] for r in rows] == list(range(N))
    assert [r[1] for r in rows] == BLOBS


@pytest.mark.parametrize(
    ("sql", "kwargs"),
    [
        ("s4_compress(payload)", {}),
        ("s4_compress(payload, 'gzip', 9)", {"codec": "gzip", "level": 9}),
        ("s4_compress(payload, 'zstd', NULL)", {}),
        ("s4_compress_raw(payload, 'zstd', 1)", {"level": 1, "format": "raw"}),
    ],
)
def test_cells_are_byte_identical_to_arrow(con, sql, kwargs):
    expected = s4a.compress(pa.array(BLOBS[:20_000], pa.binary()), **kwargs).to_pylist()
    assert column(con, f"SELECT {sql} FROM blobs WHERE id < 20000 ORDER BY id") == expected


def test_varchar_is_accepted_wherever_blob_is(con):
    strings = pa.array(TEXTS, pa.string())
    assert column(con, "SELECT s4_compress(body) FROM texts ORDER BY id") == (
        s4a.compress(strings).to_pylist()
    )
    assert (
        column(con, "SELECT s4_decompress_text(s4_compress(body, 'gzip')) FROM texts ORDER BY id")
        == TEXTS
    )
    assert column(con, "SELECT s4_crc32c(body) FROM texts ORDER BY id") == (
        s4a.crc32c(strings).to_pylist()
    )
    # Cells typed VARCHAR reach the decoder too (and fail there, as these are no cells).
    with pytest.raises(duckdb.InvalidInputException, match="S4FrameError"):
        con.execute("SELECT s4_decompress(body) FROM texts").fetchall()


def test_result_types(con):
    row = con.execute(
        "SELECT typeof(s4_compress('a')), typeof(s4_decompress(s4_compress('a'))), "
        "typeof(s4_decompress_text(s4_compress('a'))), typeof(s4_crc32c('a')), "
        "typeof(s4_frame_info(s4_compress('a')))"
    ).fetchone()
    assert row == (
        "BLOB",
        "BLOB",
        "VARCHAR",
        "UINTEGER",
        "STRUCT(codec VARCHAR, original_size UBIGINT, compressed_size UBIGINT, crc32c UINTEGER)",
    )


def test_crc32c_and_frame_info(con):
    sample = pa.array(BLOBS[:20_000], pa.binary())
    assert column(con, "SELECT s4_crc32c(payload) FROM blobs WHERE id < 20000 ORDER BY id") == (
        s4a.crc32c(sample).to_pylist()
    )
    info = column(
        con,
        "SELECT s4_frame_info(s4_compress(payload, 'gzip')) FROM blobs WHERE id < 20000 "
        "ORDER BY id",
    )
    assert info == s4a.frame_info(s4a.compress(sample, codec="gzip")).to_pylist()
    assert column(con, "SELECT s4_crc32c('123456789')") == [0xE3069283]


def test_nulls_stay_null(con):
    assert (
        con.execute(
            "SELECT s4_compress(NULL), s4_compress(NULL::VARCHAR, 'gzip', 1), "
            "s4_decompress(NULL), try_s4_decompress(NULL), s4_decompress_text(NULL), "
            "s4_crc32c(NULL), s4_frame_info(NULL)"
        ).fetchone()
        == (None,) * 7
    )
    assert column(con, "SELECT count(*) FROM blobs WHERE s4_compress(payload) IS NULL") == [
        BLOBS.count(None)
    ]


def test_parquet_written_by_duckdb_decodes_everywhere(con, tmp_path):
    pl = require("polars")
    require("s4_codec.polars")  # registers pl.col(...).s4
    path = tmp_path / "x.parquet"
    con.execute(
        "COPY (SELECT id, s4_compress(payload) AS payload FROM blobs WHERE id < 20000 "
        f"ORDER BY id) TO '{path}' (FORMAT parquet)"
    )
    expected = BLOBS[:20_000]
    cells = pq.read_table(path).column("payload")
    assert s4a.decompress(cells).to_pylist() == expected
    restored = pl.read_parquet(path).select(pl.col("payload").s4.decompress())
    assert restored["payload"].to_list() == expected
    scalar = [None if c is None else s4_codec.decode_s4_object(c) for c in cells.to_pylist()]
    assert scalar == expected


def test_cells_written_elsewhere_decode_in_duckdb(tmp_path):
    pl = require("polars")
    require("s4_codec.polars")  # registers pl.col(...).s4
    con = connect()
    expected = BLOBS[:20_000]
    df = pl.DataFrame({"id": range(len(expected)), "payload": pl.Series(expected, dtype=pl.Binary)})
    df.with_columns(pl.col("payload").s4.compress(codec="gzip")).write_parquet(
        tmp_path / "p.parquet"
    )
    scalar = [None if b is None else s4_codec.encode_s4_object(b)["body"] for b in expected]
    pq.write_table(
        pa.table({"id": range(len(expected)), "payload": scalar}), tmp_path / "s.parquet"
    )
    for name in ("p.parquet", "s.parquet"):
        assert (
            column(con, f"SELECT s4_decompress(payload) FROM '{tmp_path / name}' ORDER BY id")
            == expected
        )


def test_query_over_multi_row_group_parquet(con, tmp_path):
    path = tmp_path / "groups.parquet"
    con.execute(
        "COPY (SELECT id, s4_compress(payload, 'zstd', 1) AS cell FROM blobs ORDER BY id) "
        f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 10000)"
    )
    assert pq.ParquetFile(path).metadata.num_row_groups >= 10
    wanted = [i for i in range(N) if i % 7 == 3]
    got = con.execute(
        "SELECT count(*), sum(octet_length(s4_decompress(cell))), "
        "count(*) FILTER (WHERE s4_decompress(cell) IS NULL) "
        f"FROM '{path}' WHERE id % 7 = 3"
    ).fetchone()
    blobs = [BLOBS[i] for i in wanted]
    assert got == (len(wanted), sum(len(b) for b in blobs if b is not None), blobs.count(None))


def test_corrupt_cell_in_a_100k_row_table():
    con = connect()
    values = pa.array([json_event(i) for i in range(100_000)])
    cells = s4a.compress(values).to_pylist()
    bad = bytearray(cells[77_777])
    bad[24] ^= 0xFF  # the S4F2 header's CRC32C
    cells[77_777] = bytes(bad)
    con.register("source", pa.table({"id": range(100_000), "cell": pa.array(cells, pa.binary())}))
    con.execute("CREATE TABLE cells AS SELECT * FROM source")
    with pytest.raises(duckdb.InvalidInputException) as caught:
        con.execute("SELECT sum(octet_length(s4_decompress(cell))) FROM cells").fetchall()
    # DuckDB does not tell a UDF where its batch lies, so the row is the batch's, not the table's.
    found = re.search(
        r"S4CrcMismatchError: s4_decompress\(\): row (\d+) of a (\d+)-row batch "
        r"\(a (\d+)-byte cell\): crc32c mismatch",
        str(caught.value),
    )
    assert found, caught.value
    row, rows, size = (int(g) for g in found.groups())
    assert row < rows <= 2048 and size == len(bad)
    assert column(con, "SELECT id FROM cells WHERE try_s4_decompress(cell) IS NULL") == [77_777]
    assert column(con, "SELECT sum(octet_length(try_s4_decompress(cell))) FROM cells") == [
        sum(len(json_event(i)) for i in range(100_000) if i != 77_777)
    ]


@pytest.mark.parametrize(
    ("as_string", "cell", "error", "message"),
    [
        (False, b"garbage", s4_codec.S4FrameError, "frame 0 at stored byte 0: frame too short"),
        (True, s4a.compress(pa.array([b"\xff"]))[0].as_py(), ValueError, "decompressed value is"),
    ],
)
def test_the_udf_error_keeps_its_row(as_string, cell, error, message):
    # DuckDB's own exception keeps only the message; the UDF's still has `row`.
    udf = _decompress_udf("f", "s4", "raise", as_string, None, None, None)
    cells = pa.array([*s4a.compress(pa.array([b"a", b"b"])).to_pylist(), cell])
    batch = re.escape(f"f(): row 2 of a 3-row batch (a {len(cell)}-byte cell): {message}")
    with pytest.raises(error, match=f"^{batch}") as caught:
        udf(cells)
    assert caught.value.row == 2


def test_try_variants_null_only_what_fails(con):
    row = con.execute(
        "SELECT try_s4_decompress('garbage'), try_s4_decompress_text(s4_compress('\\xff'::BLOB)), "
        "try_s4_decompress_raw(s4_compress_raw('abc', 'zstd'), 'gzip'), "
        "try_s4_decompress_raw_text(s4_compress_raw('abc', 'gzip'), 'gzip')"
    ).fetchone()
    assert row == (None, None, None, "abc")


@pytest.mark.parametrize(
    ("sql", "error", "match"),
    [
        (
            "s4_decompress('garbage')",
            "InvalidInputException",
            r"S4FrameError: s4_decompress\(\): row 0 of a 1-row batch \(a 7-byte cell\)",
        ),
        (
            "s4_decompress_text(s4_compress('\\xff'::BLOB))",
            "InvalidInputException",
            "not valid UTF-8",
        ),
        (
            "s4_decompress_raw(s4_compress_raw('abc', 'zstd'), 'gzip')",
            "InvalidInputException",
            "S4IoError",
        ),
        (
            "s4_compress(42)",
            "BinderException",
            r"s4_compress\(value BLOB, codec VARCHAR, level BIGINT\)",
        ),
        ("s4_compress('a', 'gzip', 6.5)", "BinderException", "Candidate macros"),
        (
            "s4_compress('a', 'lz4')",
            "InvalidInputException",
            r"s4_compress\(\): codec must be one of .* got 'lz4'",
        ),
        ("s4_compress('a', NULL)", "InvalidInputException", "codec must be one of"),
        ("s4_compress('a', 'gzip', 12)", "InvalidInputException", "gzip level must be in 0..=9"),
        (
            "s4_decompress_raw(s4_compress_raw('a', 'zstd'), 'lz4')",
            "InvalidInputException",
            "codec must be one of",
        ),
    ],
)
def test_bad_input_fails_the_query_clearly(con, sql, error, match):
    with pytest.raises(getattr(duckdb, error), match=match):
        con.execute(f"SELECT {sql}").fetchall()


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        (
            "s4_compress(payload, CASE WHEN id % 2 = 0 THEN 'zstd' ELSE 'gzip' END)",
            "codec must be a constant, got 2 different values in one batch",
        ),
        ("s4_compress(payload, 'gzip', (id % 9)::INTEGER)", "level must be a constant"),
        (
            "s4_decompress_raw(payload, CASE WHEN id % 2 = 0 THEN 'zstd' ELSE 'gzip' END)",
            "codec must be a constant",
        ),
    ],
)
def test_varying_constants_are_refused(con, sql, match):
    with pytest.raises(duckdb.InvalidInputException, match=match):
        con.execute(f"SELECT sum(octet_length({sql})) FROM blobs").fetchall()


def test_dictionary_bound_at_registration(con):
    samples = [json_event(i) for i in range(2000)]
    dictionary = s4_codec.train_dictionary(samples, size=4096)
    register(con, prefix="d4_", dictionary=dictionary)
    values = pa.array(TEXTS[:500], pa.string())
    cells = column(con, "SELECT d4_compress(body) FROM texts WHERE id < 500 ORDER BY id")
    assert cells == s4a.compress(values, dictionary=dictionary).to_pylist()
    info = column(
        con,
        "SELECT DISTINCT (s4_frame_info(d4_compress(body))).codec FROM texts "
        "WHERE body IS NOT NULL",
    )
    assert info == ["cpu-zstd-dict"]
    assert (
        column(con, "SELECT d4_decompress_text(d4_compress(body)) FROM texts ORDER BY id") == TEXTS
    )
    with pytest.raises(
        duckdb.InvalidInputException, match=r"d4_compress\(\): dictionary= needs codec='zstd'"
    ):
        con.execute("SELECT d4_compress('x', 'gzip')").fetchall()
    # The plain functions have no dictionary: such cells are refused, never misdecoded.
    assert column(
        con,
        "SELECT count(*) FILTER (WHERE try_s4_decompress(d4_compress(body)) IS NULL) = count(*) "
        "FROM texts WHERE body IS NOT NULL",
    ) == [True]


def test_register_replaces_and_checks_arguments():
    con = connect()
    register(con)  # again: replaces, no duplicate-function error
    assert con.execute("SELECT s4_decompress_text(s4_compress('ok'))").fetchone() == ("ok",)
    with pytest.raises(ValueError, match="prefix"):
        register(con, prefix="x; DROP TABLE t; --")
    with pytest.raises(ValueError, match="threads"):
        register(con, threads=0)
    with pytest.raises(s4_codec.S4BackendError, match="corrupt structured zstd dictionary"):
        register(con, dictionary=b"\x37\xa4\x30\xec" + b"\x00" * 64)


def test_max_output_size_bounds_each_cell():
    con = register(duckdb.connect(), max_output_size=100)
    with pytest.raises(duckdb.InvalidInputException, match="S4ManifestSizeExceedsLimitError"):
        con.execute("SELECT s4_decompress(s4_compress(repeat('x', 101)))").fetchall()
    assert con.execute("SELECT s4_decompress_text(s4_compress(repeat('x', 100)))").fetchone() == (
        "x" * 100,
    )


def test_default_connection():
    register()
    assert duckdb.sql("SELECT s4_decompress_text(s4_compress('default'))").fetchall() == [
        ("default",)
    ]


def test_typed_usage_passes_mypy():
    if not (Path(duckdb.__file__).parent / "py.typed").exists():
        pytest.skip(f"duckdb {duckdb.__version__} ships no type information")
    require("mypy")
    usage = Path(__file__).parent / "typing" / "duckdb_usage.py"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(usage)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
