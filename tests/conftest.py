"""Shared fixtures: sample twins and the test-only faulty twin, built from source in this test run."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

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


def _load_builder():
    spec = importlib.util.spec_from_file_location("fmio_sample_build", ROOT / "fmus" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fmio_sample_build"] = module
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


@pytest.fixture(scope="session", autouse=True)
def _private_build_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
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
def faulty_fmu(fmu_dir: Path) -> Path:
    """The fault-injecting test twin (tests/twins/faulty), source-only."""
    return builder.build_sample("faulty", fmu_dir, TWINS / "faulty")


def build_binary_twin(twin_dir: Path, out_dir: Path, name: str | None = None) -> Path:
    """Compile a hand-written C test twin (``twin_dir``: modelDescription.xml and the C files of one model,
    against fmpy's FMI headers; FMI 1.0, 2.0 or 3.0) with the system C compiler into a binary FMU
    ``out_dir/<name>.fmu`` (``name`` defaults to the folder's). Unlike the sample twins (fmus/build.py) these
    may carry any names real tools export; nothing binary is committed."""
    import re
    import shutil
    import subprocess
    import zipfile

    import fmpy

    name = name or twin_dir.name
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None, "the test twins need a C compiler"
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
def strict_fmu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The strict test twin (tests/twins/strict): behaves like FMUs from real tools, binary FMU."""
    return build_binary_twin(TWINS / "strict", tmp_path_factory.mktemp("strict"))


@pytest.fixture(scope="session")
def lag1_fmu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FMI 1.0 co-simulation test twin (tests/twins/lag1), binary FMU."""
    return build_binary_twin(TWINS / "lag1", tmp_path_factory.mktemp("lag1"))
