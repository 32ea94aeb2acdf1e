"""``jaxdl.keep_freed_memory()`` keeps freed host memory for reuse: large blocks come from the
heap, not from fresh mappings that fault in new pages on every allocation. It is opt-in:
``import jaxdl`` leaves the process's malloc as it was."""

import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
import numpy as np
import jaxdl
if sys.argv[1] == "opt-in":
    jaxdl.keep_freed_memory()

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
mallinfo2.restype = MallInfo2
mapped = []
for _ in range(3):
    block = np.ones(1 << 24, np.float32)   # 64 MiB, above glibc's largest default threshold
    mapped.append(mallinfo2().hblkhd)      # bytes in blocks that have a mapping of their own
    del block
print(jaxdl.host_memory._state["applied"] is True, min(mapped), mallinfo2().arena)
"""


def probe(mode="opt-in", **env) -> tuple[str, int, int]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environment.update(env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    applied, mapped, heap = out.stdout.split()
    return applied, int(mapped), int(heap)


def glibc_with_mallinfo2() -> bool:
    name, version = platform.libc_ver()
    return name == "glibc" and tuple(map(int, version.split("."))) >= (2, 33)


@pytest.mark.skipif(not glibc_with_mallinfo2(), reason="glibc's malloc, 2.33 or newer")
def test_freed_blocks_stay_in_the_heap_unless_switched_off():
    block = 1 << 26
    applied, mapped, _ = probe("import-only")  # a library leaves its host's malloc alone
    assert applied == "False" and mapped >= block
    applied, mapped, heap = probe()
    assert applied == "True" and mapped < block and heap >= block  # kept after its free
    applied, mapped, heap = probe(JAXDL_KEEP_FREED_MEMORY="0")
    assert applied == "False" and mapped >= block  # mapped anew for each block
    applied, _, _ = probe(MALLOC_ARENA_MAX="4")  # the user's own setting wins
    assert applied == "False"
