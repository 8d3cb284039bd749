"""The proxy runtime of written FMUs (``fmi_optimizer/writeback/proxy/fmio_proxy.c``) as a shared library for
this machine.

Where the library comes from, in this order:

1. built when the package is built or installed (``setup.py`` compiles it next to its source, also for
   ``pip install -e .``), used when it was built from the current source (the library carries the
   source's id, see :func:`source_id`);
2. otherwise compiled on first use with the system C compiler into the cache folder
   (``$FMI_OPTIMIZER_CACHE/proxy/<id>/``, the folder source FMUs are compiled into);
3. otherwise :class:`FmuUnsupportedError` naming the remedy.

This module imports only the standard library at module level: ``setup.py`` loads it by path to compute
the source id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent / "proxy"
SOURCE = SOURCE_DIR / "fmio_proxy.c"
INCLUDE = SOURCE_DIR / "include"
MODEL_IDENTIFIER = "fmio_proxy"
"""The model identifier of every written FMU (FMI 1.0 function prefix, binary file name)."""

_MARKER = b"FMIO_PROXY_SOURCE_ID="


def library_suffix() -> str:
    return ".dylib" if sys.platform == "darwin" else ".dll" if os.name == "nt" else ".so"


def source_id() -> str:
    """A short hash of the proxy's C source and headers: a library built from other sources is not used."""
    h = hashlib.sha256()
    for path in [SOURCE, *sorted(INCLUDE.glob("*.h"))]:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:20]


def compile_command(cc: str, out: Path) -> list[str]:
    """The compiler call that builds the proxy library (setup.py passes the same flags)."""
    return [cc, "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-I", str(INCLUDE),
            f'-DFMIO_PROXY_SOURCE_ID="{source_id()}"', str(SOURCE), "-o", str(out), "-ldl"]


def _matches(library: Path) -> bool:
    try:
        return _MARKER + source_id().encode() in library.read_bytes()
    except OSError:
        return False


def packaged_library() -> Path:
    """Where setup.py puts the library built with the package."""
    return SOURCE_DIR / f"{MODEL_IDENTIFIER}{library_suffix()}"


def find_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def proxy_library() -> Path:
    """The proxy library for this machine (built with the package, else compiled once into the cache)."""
    from fmi_optimizer.errors import FmuUnsupportedError
    from fmi_optimizer.fmu.archive import cache_root

    if os.name == "nt":
        raise FmuUnsupportedError("write-back's proxy runtime is POSIX only (Linux, macOS); write back on "
                                  "Linux or macOS, or use the .ssv with the original FMU")
    packaged = packaged_library()
    if packaged.is_file() and _matches(packaged):
        return packaged
    target = cache_root() / "proxy" / source_id() / f"{MODEL_IDENTIFIER}{library_suffix()}"
    if target.is_file() and _matches(target):
        return target
    cc = find_compiler()
    if cc is None:
        raise FmuUnsupportedError(
            "write-back needs its proxy runtime, which was not built with the package and there is no C "
            "compiler to build it; install a C compiler (e.g. apt install gcc) or reinstall fmi-optimizer "
            "(pip install .) on a machine with one")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fmio-proxy-", dir=target.parent) as tmp:
        staged = Path(tmp) / target.name
        done = subprocess.run(compile_command(cc, staged), capture_output=True, text=True)
        if done.returncode != 0 or not staged.is_file():
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])[:300]
            raise FmuUnsupportedError(f"write-back's proxy runtime did not compile with {cc} ({tail}); "
                                      "install a working C compiler (gcc or clang)")
        os.replace(staged, target)  # atomic: a concurrent writer never sees half a library
    return target
