"""``fontus serve`` keeps large frame buffers in its heap (``remote/server/_heap.py``).

glibc's malloc maps every multi-MB block afresh and trims it when freed, which
cost a server thousands of page faults per video frame; the server raises the
thresholds at start unless told not to or the operator set malloc's own
variables. What it did is in its log (``-v``).
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time

import pytest

from fontus.testing import LoopbackServer

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
        reason="heap tuning applies to glibc only",
    ),
]

LOG_WAIT_S = 5.0


def heap_line(args: list[str], env: dict[str, str] | None = None) -> str:
    with LoopbackServer(["-v", "--allow", "identity", *args], env=env) as server:
        deadline = time.monotonic() + LOG_WAIT_S
        while time.monotonic() < deadline:
            lines = [line for line in list(server.output) if " heap " in line]
            if lines:
                return lines[0]
            time.sleep(0.02)
    raise AssertionError("the server logged nothing about its heap")


def test_serve_tunes_the_heap_by_default() -> None:
    line = heap_line([])
    assert "heap tuned for large frames: mmap threshold 32 MiB, trim threshold 256 MiB" in line


def test_no_heap_tuning_leaves_malloc_alone() -> None:
    assert "heap tuning off (--no-heap-tuning)" in heap_line(["--no-heap-tuning"])


def test_malloc_variables_of_the_operator_win() -> None:
    line = heap_line([], env={"MALLOC_ARENA_MAX": "2"})
    assert "heap tuning skipped: MALLOC_ARENA_MAX set in the environment" in line


PROBE = """
import ctypes, resource, sys
from fontus.remote.server._heap import tune_heap
if sys.argv[1] == "tuned":
    print(tune_heap(), file=sys.stderr)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
N = 6 << 20  # about a 1080p frame

def frame_pair():
    # What a server does per frame: the request arrives, the output is built, both freed.
    a = libc.malloc(N); ctypes.memset(a, 1, N)
    b = libc.malloc(N + 4096); ctypes.memset(b, 1, N + 4096)
    libc.free(a); libc.free(b)

frame_pair()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    frame_pair()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_tuning_lets_freed_frames_be_reused_without_page_faults() -> None:
    # mallopt's settings cannot be read back: what they are for is measured instead.
    faults = {}
    for mode in ("tuned", "untuned"):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        faults[mode] = int(done.stdout.strip())
    # 20 pairs of 6 MB blocks are 61,440 pages: untuned, glibc maps them afresh every time.
    assert faults["tuned"] < 1000 and faults["untuned"] > 20_000, faults
