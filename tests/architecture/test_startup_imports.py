"""Starting the command imports no heavy numerical package: each is imported where it is first needed.

Every ``fmi-optimizer`` call loads the host, which imports every built-in feature and method plugin; the
command then lists methods, prints help, or runs one study with one method. SciPy's statistics,
optimizers and special functions, dimod and the D-Wave samplers, TensorFlow and GPflow together cost seconds
of CPU to import, so a module imports them inside the function that uses them, not at the top of the module.
The test starts a fresh interpreter, loads the host exactly as the command does (and runs the real console
entry), and reads ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("scipy.stats", "scipy.optimize", "scipy.sparse", "scipy.special", "dimod", "dwave", "networkx",
         "tensorflow", "gpflow", "optuna", "sklearn")
"""Packages whose import alone costs a noticeable part of a second or more."""

LOAD_HOST = """
import json, sys
from fmi_optimizer.host.loader import load_host
host = load_host()
assert not host.errors, [p.error for p in host.errors]
json.dump(sorted(sys.modules), open(sys.argv[1], "w"))
"""

CONSOLE = """
import json, sys
from fmi_optimizer.cli import main
out, argv = sys.argv[1], sys.argv[2:]
try:
    code = main(argv)
except SystemExit as exc:  # argparse's --help exits
    code = exc.code
json.dump({"code": code, "modules": sorted(sys.modules)}, open(out, "w"))
"""


def heavy_of(modules: list[str]) -> list[str]:
    """The heavy packages (as named in :data:`HEAVY`) among ``modules``."""
    return sorted({h for h in HEAVY for m in modules if m == h or m.startswith(h + ".")})


def _run(script: str, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-c", script, str(out), *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_loading_the_host_imports_no_heavy_package(tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    _run(LOAD_HOST, out)
    modules = json.loads(out.read_text())
    assert "fmio_qio.method" in modules and "fmi_optimizer.uncertainty.plugin" in modules  # all loaded
    heavy = heavy_of(modules)
    assert not heavy, f"loading the host imported heavy packages: {heavy}"


@pytest.mark.parametrize("argv", [["--help"], ["methods"]], ids=["help", "methods"])
def test_the_console_entry_imports_no_heavy_package(argv: list[str], tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = _run(CONSOLE, out, *argv)
    result = json.loads(out.read_text())
    assert result["code"] == 0, proc.stderr
    assert "fmi_optimizer.host.loader" in result["modules"]
    if argv == ["methods"]:
        assert "qio" in proc.stdout and "bayes" in proc.stdout, proc.stdout
    heavy = heavy_of(result["modules"])
    assert not heavy, f"fmi-optimizer {' '.join(argv)} imported heavy packages: {heavy}"
