"""Capture what native code writes to stdout/stderr, at the file-descriptor level.

FMUs print with ``printf``/``std::cout`` straight to file descriptors 1 and 2, past Python's
``sys.stdout``. A process that talks to its parent over stdout (``simulate_once``, a worker) must
therefore move fds 1 and 2 away while an FMU is loaded or simulated, and keep the text as the run's log:

    with capture_fds(limit=64 * 1024) as captured:
        simulate(...)
    captured.text      # what was written to fd 1 and 2 (interleaved, bounded: head and tail kept)
    captured.truncated # True when more than ``limit`` bytes were written

While the block runs, fds 1 and 2 point at one temporary file; ``sys.stdout``/``sys.stderr`` are flushed
before and after so Python's own buffered output lands where it was meant to. A reply channel the FMU
cannot write to is a descriptor duplicated from fd 1 before the block (``os.dup(1)``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Captured", "capture_fds", "flush_all", "flush_c"]


@dataclass
class Captured:
    """The text written to fds 1 and 2 inside :func:`capture_fds` (filled when the block ends)."""

    text: str = ""
    truncated: bool = False
    bytes_written: int = 0


def flush_all() -> None:
    """Flush Python's and C stdio's buffers, so what was printed so far reaches the descriptors now (an FMU's
    ``printf`` to a file is fully buffered and would otherwise land after the descriptors were moved back)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    flush_c()


def flush_c() -> None:
    """Flush C stdio's buffers only (what native code printed); cheap enough to call around every run."""
    with contextlib.suppress(Exception):
        _libc().fflush(None)


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library this process runs on (loaded once: a worker flushes around every run)."""
    return ctypes.CDLL(None)


@contextlib.contextmanager
def capture_fds(limit: int = 64 * 1024) -> Iterator[Captured]:
    """Redirect fds 1 and 2 into a temporary file for the block; the text (at most ``limit`` bytes, head
    and tail) is in the yielded :class:`Captured` afterwards. Restores both fds even on error."""
    captured = Captured()
    flush_all()
    with tempfile.TemporaryFile() as sink:
        saved: list[int] = []
        try:
            saved.append(os.dup(1))
            saved.append(os.dup(2))
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            flush_all()
            for fd, original in zip((1, 2), saved, strict=False):  # restore what was saved, close each copy
                with contextlib.suppress(OSError):
                    os.dup2(original, fd)
                os.close(original)
            sink.seek(0, os.SEEK_END)
            captured.bytes_written = size = sink.tell()
            sink.seek(0)
            if size <= limit:
                captured.text = sink.read().decode("utf-8", "replace")
            else:
                half = max(limit // 2, 1)
                head = sink.read(half)
                sink.seek(size - half)
                tail = sink.read()
                captured.text = (head.decode("utf-8", "replace")
                                 + f"\n[... {size - 2 * half} bytes of output skipped ...]\n"
                                 + tail.decode("utf-8", "replace"))
                captured.truncated = True


