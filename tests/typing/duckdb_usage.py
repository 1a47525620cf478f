"""Checked by mypy in tests/test_duckdb.py: the typed DuckDB surface."""

import duckdb

from s4_codec.duckdb import register

con: duckdb.DuckDBPyConnection = register(duckdb.connect(), prefix="s4_", threads=2)
default: duckdb.DuckDBPyConnection = register(dictionary=b"raw content dictionary")
rows = con.execute("SELECT s4_decompress_text(s4_compress('x'))").fetchall()
viewed: duckdb.DuckDBPyConnection = register(
    duckdb.connect(), dictionary=memoryview(b"raw dictionary")
)
