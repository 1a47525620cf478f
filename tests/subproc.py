"""Run test code in a fresh interpreter, so that an abort (a Rust panic across FFI,
an allocation failure) fails one test instead of killing pytest.

``run_function(fn, *args)`` runs a module-level function of a test module in a
child and returns its :class:`Child`; ``check_function`` also asserts that the
child exited 0 and returns its stdout. In the child, ``cap_address_space(extra)``
sets RLIMIT_AS to the current VmSize plus ``extra`` bytes and ``peak_rss_kib()``
reads the peak RSS.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Where the s4_codec this pytest imports lives: children import the same one, even
# when PYTHONPATH puts another copy before the checkout (a mutant, an installed wheel).
PACKAGE_ROOT = Path(importlib.util.find_spec("s4_codec").origin).parent.parent


@dataclass
class Child:
    rc: int
    stdout: str
    stderr: str

    @property
    def signal(self) -> str | None:
        """The signal's name when the child was killed by one."""
        return signal.Signals(-self.rc).name if self.rc < 0 else None

    def describe(self) -> str:
        how = f"killed by {self.signal}" if self.signal else f"exit status {self.rc}"
        return f"child {how}\n--- stdout (tail) ---\n{self.stdout[-3000:]}\n" + (
            f"--- stderr (tail) ---\n{self.stderr[-6000:]}"
        )

    def json_lines(self) -> list:
        """Every stdout line that parses as JSON, in order."""
        out = []
        for line in self.stdout.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def assert_clean(child: Child) -> None:
    """The child died by no signal, printed no Rust panic and exited 0."""
    assert child.signal is None, child.describe()
    assert "panicked" not in child.stderr, child.describe()
    assert child.rc == 0, child.describe()


def run_code(code: str, *args: str, timeout: float = 240) -> Child:
    """Runs ``python -c code args`` with the tests folder and this pytest's s4_codec
    importable (``-P``: the working directory, ROOT, does not come first)."""
    env = dict(os.environ)
    paths = [str(TESTS), str(PACKAGE_ROOT), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    # Few malloc arenas, so RLIMIT_AS measures the heap rather than per-thread reservations.
    env["MALLOC_ARENA_MAX"] = "2"
    env.setdefault("RUST_BACKTRACE", "0")
    done = subprocess.run(
        [sys.executable, "-P", "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    return Child(done.returncode, done.stdout, done.stderr)


_CALL = """
import importlib, json, sys
module, name, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
getattr(importlib.import_module(module), name)(*args)
"""


def run_function(fn: Callable[..., object], *args: object, timeout: float = 240) -> Child:
    """Calls ``fn(*args)`` (a module-level function; JSON arguments) in a child."""
    return run_code(_CALL, fn.__module__, fn.__name__, json.dumps(args), timeout=timeout)


def check_function(fn: Callable[..., object], *args: object, timeout: float = 240) -> str:
    """``run_function`` that must exit cleanly; returns the child's stdout."""
    child = run_function(fn, *args, timeout=timeout)
    assert_clean(child)
    return child.stdout


# ---- helpers for the child side ----


def vm_size() -> int:
    """This process's current virtual size in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def cap_address_space(extra: int) -> None:
    """Sets RLIMIT_AS to the current VmSize + ``extra`` bytes."""
    limit = vm_size() + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def emit(**fields: object) -> None:
    """Prints one JSON line (flushed, so it survives a later abort)."""
    print(json.dumps(fields), flush=True)
