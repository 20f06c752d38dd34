"""The same memory-allocator behaviour in every benchmark process (glibc only).

Why: whether glibc's ``malloc`` serves a large block from the heap or maps fresh pages for it
depends on the process's history (its dynamic mmap threshold, and the free space at the top of
the heap). asyncio reads every response into a 256 KiB buffer, so one process can pay three
allocator system calls per request (``mmap``, ``mremap``, ``munmap``) where another running the
very same code pays none. Seen here: the raw aiohttp baseline made 10 system calls per request in
one venv and 7 in another, which moves a same-run ratio by a few hundredths. Fixing the thresholds
makes every process take the heap for these blocks, so ratios compare across commits and venvs.

Usage: ``print(pin_allocator())`` first in a benchmark's ``main()``; it runs the script again with
``GLIBC_TUNABLES`` set (unless the environment sets it already, or ``DSRS_BENCH_MALLOC=native``
asks for the allocator as it comes), then returns the report line saying which settings the figures
were taken with. Subprocesses (workers, the loopback server) inherit it.
"""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["TUNABLES", "pin_allocator"]

#: mmap only blocks over 1 MiB; give memory back to the system only past 4 MiB free at the top.
TUNABLES = "glibc.malloc.mmap_threshold=1048576:glibc.malloc.trim_threshold=4194304"


def pin_allocator() -> str:
    """Re-run this process with :data:`TUNABLES` (no-op off glibc, or when already decided); return
    one line for the benchmark's report: which allocator settings the figures were taken with."""
    undecided = "GLIBC_TUNABLES" not in os.environ and os.environ.get("DSRS_BENCH_MALLOC") != "native"
    if undecided and platform.libc_ver()[0] == "glibc":
        sys.stdout.flush()
        os.execve(sys.executable, list(sys.orig_argv), {**os.environ, "GLIBC_TUNABLES": TUNABLES})
    tunables = os.environ.get("GLIBC_TUNABLES")
    if tunables:
        return f"allocator: GLIBC_TUNABLES={tunables} (DSRS_BENCH_MALLOC=native to run without)"
    return "allocator: as it comes (no GLIBC_TUNABLES)"
