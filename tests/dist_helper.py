"""Make a plugin distribution *installed* for a subprocess without pip: a ``.dist-info`` (METADATA and
``entry_points.txt``) in a site folder put on PYTHONPATH next to the package's own folder. importlib.metadata
finds it exactly like a pip-installed distribution, so the host sees a real entry point of a real
distribution, with its name and version; nothing in the test venv changes and nothing is built."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


def install_dist(site: Path, name: str, version: str, entry_points: dict[str, str],
                 modules: dict[str, str] | None = None) -> dict[str, str]:
    """Write ``<name>-<version>.dist-info`` (and, if given, module sources ``{"pkg/__init__.py": text}``) into
    ``site``; return the environment (PYTHONPATH) that makes it visible to a subprocess."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        "[fmi_optimizer]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    for rel, text in (modules or {}).items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def install_project(project: Path, site: Path) -> dict[str, str]:
    """``install_dist`` from a project folder's pyproject.toml (name, version, fmi_optimizer entry points); the
    project folder itself holds the package (flat layout) and goes on PYTHONPATH too."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    env = install_dist(site, meta["name"], meta["version"], meta["entry-points"]["fmi_optimizer"])
    env["PYTHONPATH"] = os.pathsep.join([str(project), env["PYTHONPATH"]])
    return env
