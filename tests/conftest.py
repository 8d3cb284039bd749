"""Shared fixtures: every twin a test runs, built from source in this test run, each at most once per session.

The sample twins (fmus/) are packaged by fmus/build.py into source-only FMUs; the host compiles them into a
cache private to this run, and ``compiled_sample`` compiles each one once more with fmpy alone, as the truth
the product is checked against. The test-only twins are C sources in tests/twins/ (data, not tests): some are
source-only FMUs like the samples (faulty, quirky, echo), the rest are compiled by the system C compiler into
binary FMUs like the ones real tools export (``binary_twin``).

Scripts outside the package that tests need (fmus/build.py, benchmark scripts) are loaded here, from their
path, under one module name each (``load_script``); nothing is put on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run by default, so a verdict belongs to the code, not
# to the draw: CI stays green or red for a reason. `HYPOTHESIS_PROFILE=explore pytest` draws fresh
# examples each run (and keeps failures in .hypothesis/ for replay) - the way to hunt for new cases,
# which then get pinned with @example.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

ROOT = Path(__file__).resolve().parents[1]
TWINS = Path(__file__).resolve().parent / "twins"


@contextlib.contextmanager
def _import_side_effects_undone() -> Iterator[None]:
    """What a script or benchmark module does to ``sys.path`` and ``os.environ`` while it is imported is
    undone afterwards: a benchmark's settings for its own runs (thread counts, its folder on the path) stay
    out of the tests."""
    saved_path, saved_env = list(sys.path), dict(os.environ)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)


def load_script(path: Path, name: str) -> ModuleType:
    """The script at ``path`` as module ``name``, executed once per session (later calls return the same
    module), with its import-time side effects undone."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with _import_side_effects_undone():
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_benchmark(stem: str) -> ModuleType:
    """``benchmarks/<stem>.py`` as module ``<stem>`` (the name a sibling script imports it by)."""
    return load_script(ROOT / "benchmarks" / f"{stem}.py", stem)


def import_benchmark(module: str) -> ModuleType:
    """``benchmarks.<module>`` (a module of a benchmark package run as ``python -m benchmarks.X`` from the
    repository root); the root is on ``sys.path`` only while it is imported."""
    with _import_side_effects_undone():
        sys.path.insert(0, str(ROOT))
        return importlib.import_module(f"benchmarks.{module}")


builder = load_script(ROOT / "fmus" / "build.py", "fmus_build")


@pytest.fixture(scope="session", autouse=True)
def _private_build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compile source FMUs into a cache private to this test run (never reuse a developer's cache)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FMI_OPTIMIZER_CACHE", str(tmp_path_factory.mktemp("fmio-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def fmu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fmus")


@pytest.fixture(scope="session")
def sample_fmu(fmu_dir: Path) -> Callable[[str], Path]:
    """``sample_fmu("heat_sink")`` -> path of the source-only FMU built from fmus/heat_sink."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = builder.build_sample(name, fmu_dir)
        return built[name]

    return get


@pytest.fixture(scope="session")
def compiled_sample(sample_fmu: Callable[[str], Path],
                    tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``compiled_sample("heat_sink")`` -> the extracted sample twin with its binary compiled by fmpy's
    ``build_platform_binary`` (cmake), once per session. Plain fmpy simulates the folder: the reference the
    host's own compilation and every stored number are compared with. Tests only read it."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is needed to compile the source FMUs of the sample twins")
    root = tmp_path_factory.mktemp("compiled")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = builder.compile_fmu(sample_fmu(name), root / f"{name}_unzipped")
        return built[name]

    return get


@pytest.fixture(scope="session")
def faulty_fmu(fmu_dir: Path) -> Path:
    """The fault-injecting test twin (tests/twins/faulty), source-only."""
    return builder.build_sample("faulty", fmu_dir, TWINS / "faulty")


def faulty_study(path: Path, fmu: Path | str, *, method: str = "random", budget: int = 6, seed: int = 1,
                 stop_time: float = 2.0, output_interval: float = 0.1, workers: int = 1, constrained: bool = False,
                 method_lines: str = "", evaluation_lines: str = "", extra: str = "") -> Path:
    """Write the study file most tests run on the faulty twin: parameters ``x`` and ``n``, minimize
    ``final(z)``; with ``constrained`` also ``y_max = max(y) <= 20``. ``method_lines`` and
    ``evaluation_lines`` are TOML lines added to those sections, ``extra`` whole sections appended."""
    kpis = 'z_end = "final(z)"' + ('\ny_max = "max(y)"' if constrained else "")
    constraints = '[constraints]\ny_max = "<= 20"\n' if constrained else ""
    path.write_text(f"""[twin]
fmu = "{fmu}"
stop_time = {stop_time}
output_interval = {output_interval}
[parameters]
x = {{}}
n = {{}}
[kpis]
{kpis}
[objective]
minimize = {{ z_end = 1.0 }}
{constraints}[method]
name = "{method}"
budget = {{ evaluations = {budget} }}
seed = {seed}
{method_lines}[evaluation]
workers = {workers}
{evaluation_lines}""" + extra)
    return path


@pytest.fixture(scope="session")
def quirky_fmu(fmu_dir: Path) -> Path:
    """The test twin whose instance life cycle misbehaves like real tools' FMUs (tests/twins/quirky)."""
    return builder.build_sample("quirky", fmu_dir, TWINS / "quirky")


@pytest.fixture(scope="session")
def echo_fmu(fmu_dir: Path) -> Path:
    """The instant test twin with inputs (tests/twins/echo): y = k u + b, v = s, w = h, source-only."""
    return builder.build_sample("echo", fmu_dir, TWINS / "echo")


def build_binary_twin(twin_dir: Path, out_dir: Path, name: str | None = None) -> Path:
    """Compile a hand-written C test twin (``twin_dir``: modelDescription.xml and the C files of one model,
    against fmpy's FMI headers; FMI 1.0, 2.0 or 3.0) with the system C compiler into a binary FMU
    ``out_dir/<name>.fmu`` (``name`` defaults to the folder's). Unlike the sample twins (fmus/build.py) these
    may carry any names real tools export; nothing binary is committed."""
    import fmpy

    name = name or twin_dir.name
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("the binary test twins need a C compiler")
    xml = (twin_dir / "modelDescription.xml").read_text(encoding="utf-8")
    identifier = re.search(r'modelIdentifier="([^"]+)"', xml)
    assert identifier is not None, f"{twin_dir}: modelDescription.xml has no modelIdentifier"
    platform = fmpy.platform_tuple if 'fmiVersion="3.0"' in xml else fmpy.platform
    unzipped = out_dir / f"{name}_unzipped"
    (unzipped / "binaries" / platform).mkdir(parents=True, exist_ok=True)
    shutil.copy(twin_dir / "modelDescription.xml", unzipped)
    library = unzipped / "binaries" / platform / f"{identifier.group(1)}{fmpy.sharedLibraryExtension}"
    sources = sorted(str(p) for p in twin_dir.glob("*.c"))
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-I", str(Path(fmpy.__file__).parent / "c-code"), *sources,
                    "-o", str(library), "-lm"], check=True)
    fmu = out_dir / f"{name}.fmu"
    with zipfile.ZipFile(fmu, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(unzipped.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(unzipped).as_posix())
    return fmu


@pytest.fixture(scope="session")
def binary_twin(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``binary_twin("strict")`` -> the binary FMU of tests/twins/strict, compiled once per session;
    ``binary_twin("writeback_model", "wbmodel")`` names the FMU file ``wbmodel.fmu``."""
    built: dict[tuple[str, str], Path] = {}

    def get(source: str, name: str | None = None) -> Path:
        key = (source, name or source)
        if key not in built:
            built[key] = build_binary_twin(TWINS / source, tmp_path_factory.mktemp(key[1]), key[1])
        return built[key]

    return get


@pytest.fixture(scope="session")
def strict_fmu(binary_twin: Callable[..., Path]) -> Path:
    """The strict test twin (tests/twins/strict): behaves like FMUs from real tools, binary FMU."""
    return binary_twin("strict")


@pytest.fixture(scope="session")
def lag1_fmu(binary_twin: Callable[..., Path]) -> Path:
    """The FMI 1.0 co-simulation test twin (tests/twins/lag1), binary FMU."""
    return binary_twin("lag1")
