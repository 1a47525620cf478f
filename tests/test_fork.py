"""Every door keeps working in a child process, however the child starts.

A process uses each parallel path first (the Rust pool, zstd's worker context,
the I/O pool), then starts children by ``os.fork``, a fork ``Pool``,
``ProcessPoolExecutor`` and ``forkserver``/``spawn`` (pickled codecs,
dictionaries and open files). Each scenario runs in its own interpreter with a
timeout (subproc.py), so a hang fails its test instead of stalling the run.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time

import pytest
from subproc import assert_clean, emit, run_function

# The child's own deadline: a hang shows as a failed check, not a stalled run.
CHILD_SECONDS = 60


def _payload(seed: int, size: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).hexdigest().encode() * 2048
    return (block * (size // len(block) + 1))[:size]


def parallel_work(seed: int, root: str) -> str:
    """Every parallel path once, checked; returns a digest of what came back."""
    import pyarrow as pa
    from fsspec.implementations.local import LocalFileSystem
    from obstore.store import MemoryStore

    import s4_codec
    import s4_codec.io as s4io
    from s4_codec import arrow

    digest = hashlib.sha256()
    cells = pa.array([_payload(seed + i, 3000 + i) for i in range(400)], pa.binary())
    back = arrow.decompress(arrow.compress(cells, threads=2), threads=2)
    assert back.equals(cells)
    digest.update(b"".join(c.as_py() for c in back))
    big = _payload(seed, 6 << 20)  # over PARALLEL_MIN_BYTES: zstd's worker context
    zstd = s4_codec.CpuZstd(1)
    assert zstd.decompress(*zstd.compress(big)) == big
    obj = s4_codec.encode_s4_object(_payload(seed, 9 << 20), "cpu-zstd", 1, threads=2)
    whole = s4_codec.decode_s4_object(obj["body"], obj["metadata"], threads=2)
    digest.update(whole)
    # Stores that work in forked children: obstore's MemoryStore and fsspec's
    # local filesystem (obstore's other stores do not survive fork; see below).
    for store, key in ((MemoryStore(), "fork.bin"), (LocalFileSystem(), f"{root}/{seed}.bin")):
        s4io.put(store, key, whole, level=1)
        assert s4io.get(store, key) == whole  # several requests: the I/O pool
        with s4io.open(store, key) as f:
            f.seek(5 << 20)
            assert f.read(1 << 20) == whole[5 << 20 : 6 << 20]
    return digest.hexdigest()


def _obstore_refuses_in_forked_child(root: str) -> bool:
    """obstore's runtime, started by the parent's requests, is not in a forked
    child: its stores answer with ObjectStoreError at once instead of hanging."""
    from obstore.store import LocalStore

    import s4_codec.io as s4io

    try:
        s4io.get(LocalStore(root), "anything")
    except s4io.ObjectStoreError as exc:
        return "does not survive fork" in str(exc)
    return False


def _wait(pid: int, seconds: float) -> int:
    """The child's exit status, killing it after `seconds` (then -9)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -9


def fork_after_parallel_work() -> None:
    with tempfile.TemporaryDirectory() as root:
        expected = parallel_work(1, root)
        from obstore.store import LocalStore

        import s4_codec.io as s4io

        s4io.put(LocalStore(root), "started.bin", b"obstore's runtime is running")
        start = time.monotonic()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.write(write, parallel_work(1, root).encode())
                code = 0 if _obstore_refuses_in_forked_child(root) else 2
            except BaseException:
                code = 1
            os._exit(code)
        os.close(write)
        status = _wait(pid, CHILD_SECONDS)
        got = os.read(read, 100).decode()
        emit(status=status, same=got == expected, seconds=time.monotonic() - start)
        # The parent's pools still work after the fork.
        assert parallel_work(1, root) == expected


def pool_children(method: str) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with tempfile.TemporaryDirectory() as root:
        expected = [parallel_work(seed, root) for seed in (1, 2, 3)]
        start = time.monotonic()
        if method == "executor":
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(2, mp_context=context) as executor:
                got = list(
                    executor.map(parallel_work, (1, 2, 3), [root] * 3, timeout=CHILD_SECONDS)
                )
        else:
            with multiprocessing.get_context(method).Pool(2) as pool:
                result = pool.starmap_async(parallel_work, [(s, root) for s in (1, 2, 3)])
                got = result.get(CHILD_SECONDS)
        emit(same=got == expected, seconds=time.monotonic() - start)


@pytest.mark.parametrize("method", ["fork", "executor", "forkserver", "spawn"])
def test_children_work_after_the_parent_used_every_pool(method):
    child = run_function(pool_children, method, timeout=3 * CHILD_SECONDS)
    assert_clean(child)
    (report,) = child.json_lines()
    assert report["same"], report


def test_os_fork_child_works_and_parent_too():
    child = run_function(fork_after_parallel_work, timeout=3 * CHILD_SECONDS)
    assert_clean(child)
    (report,) = child.json_lines()
    assert report["status"] == 0, report
    assert report["same"], report


def _round_trip_pickled(things: bytes) -> bytes:
    """In the child: unpickles codecs, a dictionary and open files, uses them,
    and pickles back what they produced."""
    import pickle

    import s4_codec

    codec, gzip, dictionary, reader, position_reader, sample = pickle.loads(things)
    out = {
        "zstd": codec.decompress(*codec.compress(sample)),
        "gzip": gzip.decompress(*gzip.compress(sample)),
        "dict": dictionary.decompress(*dictionary.compress(sample)),
        "dict_id": dictionary.s4_dict_id,
        "read": reader.read(),
        "position": position_reader.tell(),
        "rest": position_reader.read(100),
        "levels": (codec.level, gzip.level),
        "version": s4_codec.__version__,
    }
    return pickle.dumps(out)


def pickled_objects(method: str) -> None:
    import multiprocessing
    import pickle

    from obstore.store import LocalStore

    import s4_codec
    import s4_codec.io as s4io

    samples = [b"row %d of pickled things\n" % i for i in range(300)]
    dictionary = s4_codec.CpuZstdDict(s4_codec.train_dictionary(samples, 4096), 5)
    sample = b"".join(samples)
    with tempfile.TemporaryDirectory() as root:
        store = LocalStore(root)
        data = _payload(7, 6 << 20)
        s4io.put(store, "a.bin", data, level=1)
        reader = s4io.open(store, "a.bin")
        positioned = s4io.open(store, "a.bin")
        positioned.seek(5 << 20)
        things = pickle.dumps(
            (s4_codec.CpuZstd(7), s4_codec.CpuGzip(4), dictionary, reader, positioned, sample)
        )
        with multiprocessing.get_context(method).Pool(1) as pool:
            out = pickle.loads(pool.apply_async(_round_trip_pickled, (things,)).get(CHILD_SECONDS))
        emit(
            codecs=out["zstd"] == sample and out["gzip"] == sample and out["dict"] == sample,
            dict_id=out["dict_id"] == dictionary.s4_dict_id,
            read=out["read"] == data,
            position=out["position"] == 5 << 20,
            rest=out["rest"] == data[5 << 20 : (5 << 20) + 100],
            levels=out["levels"] == (7, 4),
        )
        # A file whose object changed since it was pickled refuses to reopen.
        s4io.put(store, "a.bin", data[::-1], level=1)
        try:
            pickle.loads(pickle.dumps(s4io.open(store, "a.bin")))
            stale = pickle.loads(pickle.dumps(reader))
            changed = f"reopened {stale!r}"
        except s4_codec.S4IoError as exc:
            changed = "refused" if "changed since" in str(exc) else str(exc)
        writer = s4io.open(store, "b.bin", "wb")
        try:
            pickle.dumps(writer)
            writer_pickles = "pickled"
        except TypeError as exc:
            writer_pickles = "refused" if "cannot be pickled" in str(exc) else str(exc)
        writer.abort()
        emit(changed=changed, writer=writer_pickles)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_codecs_dictionaries_and_files_pickle_to_fresh_interpreters(method):
    child = run_function(pickled_objects, method, timeout=3 * CHILD_SECONDS)
    assert_clean(child)
    used, refused = child.json_lines()
    assert all(used.values()), used
    assert refused == {"changed": "refused", "writer": "refused"}
