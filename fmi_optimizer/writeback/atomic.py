"""Writing output files safely: atomic writes, names that stay inside their folder, one writer per folder."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fmi_optimizer.errors import OutputError

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_name(name: str, fallback: str = "study") -> str:
    """``name`` as a single path component that stays inside its folder: every character other than letters,
    digits and ``._+=-`` becomes ``_`` (so ``/``, ``\\`` and ``..`` parts cannot climb out), leading dots are
    dropped (no hidden files, no ``..``), and an empty result is ``fallback``. Used wherever a study or FMU
    name becomes a file or folder name."""
    text = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", str(name))).strip("._")[:120].rstrip("._")
    return text or fallback


def inside(folder: Path, name: str) -> Path:
    """``folder / safe_name(name)``: a deliverable path that cannot leave ``folder``."""
    return folder / safe_name(name)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success it replaces ``path`` in one step.

    The rename replaces whatever ``path`` is, a symlink included (never the file it points to). An OSError
    while writing removes the temporary file and becomes a one-line OutputError naming ``path``.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # a planted file or symlink under the temporary name is not written through
        tmp.unlink(missing_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc}); choose a writable "
                          "output folder") from None


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


LOCK_NAME = ".fmi_optimizer.lock"


_HELD: dict[Path, int] = {}  # lock files this process holds -> nesting depth


class OutputLock:
    """One writer per output folder: ``<folder>/.fmi_optimizer.lock`` holds the holder's pid, host and
    command.

    The lock is an ``fcntl.flock`` on that file (taken atomically by the kernel, released by the kernel when
    the holder dies, so the stale lock of a killed process is taken over at once, with no pid guessing and
    no file to delete by hand), and the file's content says who holds it. Worker processes are started with
    exec and the descriptor is close-on-exec, so they never inherit the lock.
    """

    def __init__(self, folder: Path, command: str | None = None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        self._fd: int | None = None
        self._nested = False

    def holder(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text(encoding="utf-8") or "{}"))
        except (OSError, ValueError, TypeError):
            return {}

    def _describe(self, info: dict[str, Any]) -> str:
        if not info:
            return "another fmi-optimizer process"
        return (f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')!r}, "
                f"since {info.get('since')})")

    def _try(self) -> bool:
        import fcntl

        # a waiting process may find the folder gone: a study refused before it wrote anything removes the
        # (then empty) folder it created when it lets go of the lock
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        try:  # the file we locked may have been removed by its previous holder after we opened it: retry
            same = os.fstat(fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return self._try()
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return True

    def acquire(self, wait: float | None = None, log: Callable[[str], None] = lambda s: None) -> OutputLock:
        """Take the lock; if another process holds it, wait up to ``wait`` seconds (None or 0: do not wait),
        then raise OutputError (exit 8) naming the holder."""
        key = self.path.absolute()
        if key in _HELD:  # this process holds it already (optimize --pick around run_study): nested, no-op
            _HELD[key] += 1
            self._nested = True
            return self
        deadline = time.monotonic() + (wait or 0.0)
        said = False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            while not self._try():
                info = self.holder()
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait:g} s" if wait else ""
                    raise OutputError(
                        f"{self.folder}: output folder is in use by {self._describe(info)}{waited}; wait for "
                        "it to finish (--wait SECONDS), or choose another --out")
                if not said:
                    log(f"{self.folder}: in use by {self._describe(info)}; waiting up to {wait:g} s")
                    said = True
                time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot take the output folder's lock ({exc.strerror or exc}); "
                              "choose a writable --out") from None
        _HELD[key] = 1
        return self

    def release(self) -> None:
        key = self.path.absolute()
        if self._nested:
            self._nested = False
            _HELD[key] -= 1
            return
        if self._fd is None:
            return
        _HELD.pop(key, None)
        with contextlib.suppress(OSError):
            # while still holding it: a waiter that opened this file retries on the new one
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
