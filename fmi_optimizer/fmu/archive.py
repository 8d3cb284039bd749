"""Open an FMU file safely: check the archive, parse and validate the model description,
find a binary for this platform or compile the FMU's sources (cached by content hash).

This module turns every way an FMU file can be broken into an :class:`FmuError` /
:class:`FmuUnsupportedError` with one line naming the file and the remedy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmi_optimizer.errors import FmuError, FmuUnsupportedError


def cache_root() -> Path:
    """Where compiled source FMUs are kept (``$FMI_OPTIMIZER_CACHE`` or ``~/.cache/fmi_optimizer``)."""
    env = os.environ.get("FMI_OPTIMIZER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fmi_optimizer"


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes: identifies an FMU (caching, storage) or a data file (calibration)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class FmuFile:
    """A checked FMU: its model description and a path that can be simulated on this machine."""

    path: Path
    sha256: str
    model_description: Any
    runnable: Path
    compiled_from_sources: bool
    without_binary: tuple[str, ...] = ()  # declared interfaces ("CS", "ME") whose binary this platform lacks


def open_fmu(path: str | os.PathLike[str]) -> FmuFile:
    """Check ``path`` and return an :class:`FmuFile` ready to simulate (compiling sources if needed)."""
    fmu = Path(path)
    if not fmu.exists():
        raise FmuError(f"{fmu}: no such file; give the path of an .fmu file")
    if fmu.is_dir():
        raise FmuError(f"{fmu}: is a folder; give the path of an .fmu file (a zip archive)")
    names = _zip_names(fmu)
    if "modelDescription.xml" not in names:
        raise FmuError(f"{fmu}: has no modelDescription.xml at the top of the archive; re-export the FMU")
    md = _read_model_description(fmu)
    identifiers = interface_identifiers(md, fmu)
    sha = content_hash(fmu)
    folder = f"binaries/{_platform_dir(md)}/"
    present = sorted(n for n in names if n.startswith(folder) and not n.endswith("/"))
    missing = tuple(k for k, ident in identifiers.items() if _library(folder, ident) not in names)
    if len(missing) < len(identifiers):
        return FmuFile(fmu, sha, md, fmu, False, missing)
    if present:  # a binary for this platform under another name: the archive contradicts its description
        ident = next(iter(identifiers.values()))
        found = ", ".join(Path(n).name for n in present)
        raise FmuUnsupportedError(
            f"{fmu}: its binary for this platform is {found}, but its modelIdentifier {ident!r} needs "
            f"{_library(folder, ident)}; the FMU was exported inconsistently: re-export it (or rename the "
            f"binary inside the archive to {Path(_library(folder, ident)).name})")
    if any(n.startswith("sources/") and n.endswith((".c", ".cpp", ".cc")) for n in names):
        return FmuFile(fmu, sha, md, compile_sources(fmu, sha), True)
    have = sorted({n.split("/")[1] for n in names if n.startswith("binaries/") and n.count("/") >= 2})
    raise FmuUnsupportedError(
        f"{fmu}: no binary for this platform ({_platform_dir(md)}) and no sources to compile "
        f"(binaries for: {', '.join(have) or 'none'}); export the FMU for this platform or with sources"
    )


def interface_identifiers(md: Any, fmu: Path | str = "FMU") -> dict[str, str]:
    """``{"CS": id, "ME": id}`` for the interfaces the FMU declares; refuses FMUs that declare neither
    (scheduled execution only is valid FMI 3 but not supported here)."""
    out = {k: str(i.modelIdentifier) for k,
           i in (("CS", md.coSimulation), ("ME", md.modelExchange)) if i is not None}
    if out:
        return out
    if getattr(md, "scheduledExecution", None) is not None:
        raise FmuUnsupportedError(
            f"{fmu}: declares only FMI 3 scheduled execution, which fmi_optimizer does not support (it runs "
            "co-simulation and model exchange); export the FMU with a co-simulation or model-exchange "
            "interface")
    raise FmuError(f"{fmu}: the model description declares neither co-simulation nor model exchange; "
                   "re-export the FMU")


def model_identifier(md: Any) -> str:
    """The model identifier of the co-simulation interface, else of model exchange."""
    return next(iter(interface_identifiers(md).values()))


def _library(folder: str, identifier: str) -> str:
    import fmpy

    return folder + identifier + fmpy.sharedLibraryExtension


def _zip_names(fmu: Path) -> set[str]:
    if not zipfile.is_zipfile(fmu):
        raise FmuError(f"{fmu}: is not a zip archive, so not an FMU; re-export it or check the download")
    try:
        with zipfile.ZipFile(fmu) as z:
            bad = z.testzip()
            if bad is not None:
                raise FmuError(f"{fmu}: archive member {bad!r} is corrupt; re-export the FMU")
            return set(z.namelist())
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise FmuError(f"{fmu}: the zip archive is truncated or corrupt ({exc}); re-export or re-copy the "
                       "FMU") from exc


def _read_model_description(fmu: Path) -> Any:
    from fmpy import read_model_description

    try:
        return read_model_description(str(fmu), validate=True)
    except Exception as exc:  # fmpy raises lxml errors and bare Exceptions; we classify them here
        text = " ".join(str(exc).split())
        kind = type(exc).__name__
        if "XMLSyntaxError" in kind or "syntax" in text.lower():
            raise FmuError(f"{fmu}: modelDescription.xml is not well-formed XML ({text}); fix or re-export "
                           "the FMU") from exc
        raise FmuError(f"{fmu}: modelDescription.xml is not valid FMI ({text}); fix or re-export the "
                       "FMU") from exc


def _platform_dir(md: Any) -> str:
    import fmpy

    return str(fmpy.platform if str(md.fmiVersion).startswith(("1.", "2.")) else fmpy.platform_tuple)


def compile_sources(fmu: Path, sha: str) -> Path:
    """Compile a source FMU for this platform once; later calls return the cached runnable FMU."""
    target = cache_root() / "builds" / sha[:32] / (fmu.stem + ".fmu")
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fmio-build-") as tmp:
        unzipdir = Path(tmp) / "fmu"
        with zipfile.ZipFile(fmu) as z:
            z.extractall(unzipdir)
        build_dir = Path(tmp) / "build"
        build_dir.mkdir()
        _build(fmu, unzipdir, build_dir)
        staged = Path(tmp) / "runnable.zip"
        _zip_dir(unzipdir, staged)
        partial = target.with_suffix(f".{os.getpid()}.part")
        shutil.copyfile(staged, partial)
        os.replace(partial, target)  # atomic: a concurrent reader never sees half a file
    return target


def _build(fmu: Path, unzipdir: Path, build_dir: Path) -> None:
    import subprocess

    from fmpy.build import build_platform_binary

    if shutil.which("cmake") is None:
        raise FmuUnsupportedError(f"{fmu}: carries sources but cmake is not installed; install cmake and a C "
                                  "compiler")
    log_path = build_dir.parent / "build.log"
    try:
        with _redirect_fds(log_path):
            build_platform_binary(unzipdir, build_dir,
                                  cmake_options={"CMAKE_C_FLAGS:STRING": "-DFMI3_OVERRIDE_FUNCTION_PREFIX"})
    except (subprocess.CalledProcessError, Exception) as exc:  # compiler/cmake errors of any kind
        tail = (" | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
                if log_path.exists() else "")
        raise FmuUnsupportedError(f"{fmu}: compiling its sources failed ({' '.join(str(exc).split())[:200]}; "
                                  f"{tail[:300]}); check the sources or export a binary FMU") from exc


@contextlib.contextmanager
def _redirect_fds(log_path: Path) -> Iterator[None]:
    """Send the compiler's output (written by child processes to fds 1/2) to a log file."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _zip_dir(src: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(src).as_posix())
