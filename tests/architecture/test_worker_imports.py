"""A real evaluation worker imports only the engine, the FMU layer, ``errors``, numpy and fmpy.

The worker is a fresh interpreter started by the pool; importing ``fmi_optimizer.engine.worker`` must not
run a heavy package ``__init__`` (the study loop, pluggy, SQLite, a method plugin). The test starts a real
pool on a real FMU, runs it once and reads, from the worker itself, every module it imported: a
``sitecustomize`` on the worker's ``PYTHONPATH`` installs an audit hook that appends each imported
module's name to a file as the import happens (a worker is killed on close, so nothing is written at exit).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

from fmi_optimizer.engine.pool import EngineOptions, LocalPool
from fmi_optimizer.engine.protocol import RunRequest
from fmi_optimizer.fmu.simulator import SimSettings
from fmi_optimizer.fmu.twin import Twin

ALLOWED_OWN = re.compile(r"^fmi_optimizer(\.engine(\..+)?|\.fmu(\..+)?|\.errors)?$")

SITECUSTOMIZE = '''
import os, sys
_out = open(os.environ["FMIO_TEST_IMPORT_LOG"], "a", buffering=1)
for _name in list(sys.modules):
    _out.write(_name + "\\n")
def _hook(event, args):
    if event == "import":
        _out.write(str(args[0]) + "\\n")
sys.addaudithook(_hook)
'''


def _requirement_names(dist: str) -> set[str]:
    names = set()
    for req in requires(dist) or []:
        if "extra ==" in req:
            continue
        names.add(re.split(r"[ <>=!~;\[(]", req, maxsplit=1)[0].lower().replace("-", "_"))
    return names


def worker_modules(fmu: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "imports.txt"
    monkeypatch.setenv("FMIO_TEST_IMPORT_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    settings = SimSettings(stop_time=1.0, output_interval=0.1)
    with LocalPool(fmu, EngineOptions(workers=1)) as pool:
        (reply,) = list(pool.run([RunRequest(1, {"x": 1.0}, settings, ("y",))]))
    assert reply.status == "ok", reply.error
    return set(log.read_text().split())


def test_a_worker_imports_only_engine_fmu_errors_numpy_fmpy(faulty_fmu: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    seen = worker_modules(Twin.open(faulty_fmu).fmu.runnable, tmp_path, monkeypatch)
    assert "fmi_optimizer.engine.worker" in seen and "fmpy" in seen  # the log saw the worker's imports
    own = sorted(m for m in seen if m.split(".")[0] == "fmi_optimizer" and not ALLOWED_OWN.match(m))
    assert not own, f"a worker imported modules outside engine/, fmu/ and errors: {own}"
    allowed = {"numpy", "fmpy"} | _requirement_names("fmpy") | _requirement_names("numpy")
    tops = {m.split(".")[0] for m in seen} - set(sys.stdlib_module_names) - {"fmi_optimizer", "sitecustomize"}
    found = {m for m in tops if not m.startswith("_") and importlib.util.find_spec(m) is not None}  # not: a
    # failed optional import (an audit event is raised for every attempt)
    dists = packages_distributions()
    third = sorted(m for m in found
                   if not {d.lower().replace("-", "_") for d in dists.get(m, [m])} & allowed)
    assert not third, f"a worker imported third-party packages beyond numpy, fmpy and fmpy's own: {third}"
    assert not {"pluggy", "sqlite3", "scipy", "matplotlib", "dask", "tensorflow"} & {m.split(".")[0] for m in seen}
