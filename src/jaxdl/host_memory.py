"""Keep freed host memory in the process, so compiled CPU steps reuse their buffers.

XLA on CPU allocates a step's temporary buffers afresh on every call, often as blocks of
tens of megabytes, from its worker threads. glibc's ``malloc`` serves such a block with new
pages from the kernel whenever it lies above the mmap threshold (32 MiB at most unless set)
or comes from a thread's own arena (whose heaps hold at most 64 MiB), and unmaps it on
``free``; every page then faults on first touch, on every step, and the benchmarks' LSTM and
LM steps run markedly faster without those faults (the figures are in README.md's
performance notes).

:func:`keep_freed_memory` sets the largest mmap and trim thresholds, and one arena for all
threads, so freed blocks stay in the heap and are reused. It changes the whole process's
``malloc`` settings, so a library does not make that choice for its host: it is opt-in.
The ``jaxdl`` command line and the benchmarks call it; a script of yours calls
``jaxdl.keep_freed_memory()`` first thing. It takes full effect only when it runs before
JAX's CPU backend starts its threads (before the first computation); memory freed after a
peak then stays with the process until it ends. It does nothing when
``JAXDL_KEEP_FREED_MEMORY=0``, when the environment already sets one of glibc's
``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``, or where
``malloc`` is not glibc's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_LARGEST = 2**31 - 1  # mallopt takes an int
_USER_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_state = {"applied": None}


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep and reuse freed blocks (once per process).

    Returns whether the settings are in force (from this call or an earlier one).
    """
    if _state["applied"] is not None:
        return _state["applied"]
    _state["applied"] = False
    if not sys.platform.startswith("linux") or os.environ.get("JAXDL_KEEP_FREED_MEMORY") == "0":
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False  # the user chose; leave it
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, for one, has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, _LARGEST), (_M_TRIM_THRESHOLD, _LARGEST), (_M_ARENA_MAX, 1))
    _state["applied"] = all([mallopt(option, value) == 1 for option, value in settings])
    return _state["applied"]
