"""The package's layers, read from the imports of every module (``ast``, nothing is imported).

The folders of ``fmi_optimizer/`` are its architecture (docs/architecture.md); these rules keep it so:
imports point one way, down the layers; no module imports another module's private name; the core
(``study/``, ``report/``, ``cli/`` and everything below them) names no feature; a method plugin imports
only the contract modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "fmi_optimizer"
PLUGINS = ROOT / "plugins"

CONTRACT = {"errors", "method", "space", "records", "hookspecs", "registry", "reporting"}
"""Top-level modules a plugin may import: the plugin contract."""

LAYERS = ["contract", "fmu", "engine", "host", "writeback", "study", "report", "runner", "cli", "feature"]
"""Bottom to top: a module may import its own folder and the folders below it, never one above."""

FEATURES = {"calibration", "uncertainty"}

FACES = {"fmi_optimizer", "fmi_optimizer.testing"}
"""The public face (lazy ``__init__``) and the conformance suite: they sit above everything."""

KNOWN_FEATURE_WIRING = {
    ("fmi_optimizer.study.config", "fmi_optimizer.calibration.settings"),
    ("fmi_optimizer.study.config", "fmi_optimizer.uncertainty.spec"),
    ("fmi_optimizer.study.problem", "fmi_optimizer.calibration.binding"),
    ("fmi_optimizer.study.problem", "fmi_optimizer.uncertainty.layer"),
}
"""Core modules that still reach into a feature: the study file's [inputs]/[calibration]/[uncertainty]
sections and the problem's robust layer and data binding are not hooks yet. This list may only shrink:
a pair that no longer occurs fails :func:`test_known_feature_wiring_is_still_needed`."""


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (``from X import name`` -> X.name when X.name is a module)
    names: tuple[str, ...]
    line: int
    type_checking: bool  # inside ``if TYPE_CHECKING:``: no run-time import


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path, top: Path) -> dict[str, Path]:
    return {module_name(p, top): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


KNOWN = modules(PACKAGE, ROOT)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def imports_of(name: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, (), node.lineno, node.lineno in guarded)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = tuple(a.name for a in node.names)
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in KNOWN]
            for t in submodules or [target]:
                yield Import(name, t, names, node.lineno, node.lineno in guarded)


def all_imports() -> list[Import]:
    return [i for name, path in KNOWN.items() for i in imports_of(name, path)
            if i.target.split(".")[0] == "fmi_optimizer"]


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or module in FACES:
        return "face"
    if parts[1] in FEATURES:
        return "feature"
    if len(parts) == 2 and parts[1] in CONTRACT:
        return "contract"
    assert parts[1] in LAYERS, f"{module} is in no layer; add its folder to LAYERS (and to docs/architecture.md)"
    return parts[1]


def test_every_module_belongs_to_a_layer() -> None:
    for name in KNOWN:
        layer(name)


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for i in all_imports():
        if i.type_checking or i.target == "fmi_optimizer":  # __version__, or the lazy face for a script
            continue
        src, dst = layer(i.source), layer(i.target)
        if src == "face":
            continue
        if dst == "face":
            wrong.append(f"{i.source}:{i.line} imports the public face {i.target}; import the defining module")
        elif LAYERS.index(dst) > LAYERS.index(src) and (i.source, i.target) not in KNOWN_FEATURE_WIRING:
            wrong.append(f"{i.source}:{i.line} ({src}) imports {i.target} ({dst}), a layer above it")
    assert not wrong, "\n".join(wrong)


def test_features_do_not_import_each_other() -> None:
    wrong = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
             if layer(i.source) == layer(i.target) == "feature"
             and i.source.split(".")[1] != i.target.split(".")[1]]
    assert not wrong, "\n".join(wrong)


def test_core_names_no_feature() -> None:
    wrong = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
             if layer(i.target) == "feature" and layer(i.source) not in ("feature", "face")
             and not i.type_checking and (i.source, i.target) not in KNOWN_FEATURE_WIRING]
    assert not wrong, "\n".join(wrong)


def test_known_feature_wiring_is_still_needed() -> None:
    found = {(i.source, i.target) for i in all_imports()}
    stale = KNOWN_FEATURE_WIRING - found
    assert not stale, f"no longer imported, remove from KNOWN_FEATURE_WIRING: {sorted(stale)}"


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in KNOWN}
    for i in all_imports():
        if not i.type_checking and i.target in KNOWN and i.target != i.source:
            graph[i.source].add(i.target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles() -> None:
    """Package ``__init__`` files are left out: importing ``a.b`` runs ``a/__init__`` first, which is no
    arrow between two modules (and every ``__init__`` here imports nothing at run time)."""
    graph = {k: {t for t in v if not KNOWN[t].name == "__init__.py"} for k, v in _graph().items()
             if KNOWN[k].name != "__init__.py"}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_package_inits_import_nothing_at_run_time() -> None:
    """A sub-package's ``__init__`` that imported its modules would make every import of one of them
    load all of them (and the worker would load more than the engine)."""
    wrong = [f"{i.source}:{i.line} imports {i.target}" for name, path in KNOWN.items()
             if path.name == "__init__.py" and name.split(".")[-1] not in FEATURES
             for i in imports_of(name, path)
             if i.target.startswith("fmi_optimizer") and not i.type_checking
             and not _inside_function(path, i.line)]
    assert not wrong, "\n".join(wrong)


def _inside_function(path: Path, line: int) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef) and n.lineno <= line <= (n.end_lineno or n.lineno)
               for n in ast.walk(tree))


def test_no_module_imports_a_private_name_of_another() -> None:
    wrong = [f"{i.source}:{i.line} imports {n} from {i.target}" for i in all_imports()
             for n in i.names if n.startswith("_") and not n.startswith("__") and i.target != i.source]
    wrong += [f"{i.source}:{i.line} imports the private module {i.target}" for i in all_imports()
              if any(p.startswith("_") and not p.startswith("__") for p in i.target.split("."))]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("plugin", sorted(p.name for p in PLUGINS.iterdir() if p.name.startswith("fmio_")))
def test_a_plugin_imports_only_the_contract(plugin: str) -> None:
    allowed = {"fmi_optimizer"} | {f"fmi_optimizer.{m}" for m in CONTRACT}
    wrong = []
    for name, path in modules(PLUGINS / plugin, PLUGINS).items():
        for i in imports_of(name, path):
            if i.target.split(".")[0] == "fmi_optimizer" and i.target not in allowed:
                wrong.append(f"{name}:{i.line} imports {i.target}")
    assert not wrong, "a plugin may import only " + ", ".join(sorted(allowed)) + ":\n" + "\n".join(wrong)


def test_the_rules_see_an_upward_import(tmp_path: Path) -> None:
    """The reader itself: a lower module importing a higher one is found (so a passing run means something)."""
    bad = tmp_path / "fmi_optimizer" / "fmu" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from fmi_optimizer.study.loop import Study\nfrom fmi_optimizer.cli.main import _Parser\n")
    found = list(imports_of("fmi_optimizer.fmu.bad", bad))
    assert [(i.target, LAYERS.index(layer(i.target)) > LAYERS.index(layer(i.source))) for i in found] == [
        ("fmi_optimizer.study.loop", True), ("fmi_optimizer.cli.main", True)]
    assert found[1].names == ("_Parser",)


def test_the_public_face_resolves_every_name_lazily() -> None:
    """Every name of ``fmi_optimizer.__all__`` (the README's and docs' ``fmi_optimizer.X``) resolves on use;
    an unknown name is an AttributeError, as for any module."""
    import fmi_optimizer

    for name in fmi_optimizer.__all__:
        assert getattr(fmi_optimizer, name) is not None, name
    assert fmi_optimizer.optimize.__module__ == "fmi_optimizer.runner.run"
    with pytest.raises(AttributeError):
        fmi_optimizer.no_such_name  # noqa: B018
