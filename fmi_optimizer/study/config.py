"""Study files (TOML) and study dicts: parsed once into typed, frozen settings.

Every error names the file, the key, the value and what is accepted. The core's sections are parsed here;
a feature's section (``[inputs]``, ``[calibration]``, ``[uncertainty]``, a third party's) is parsed by the
plugin that registered it (``fmio_register_sections``) into its own spec, kept in ``StudyConfig.features``.
"""

from __future__ import annotations

import csv
import itertools
import math
import operator
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fmi_optimizer.errors import FmuError, PluginError, StudyError
from fmi_optimizer.fmu.simulator import STRATEGIES, SimSettings
from fmi_optimizer.host.loader import builtin_host
from fmi_optimizer.registry import SectionContext, SectionRegistry

INSTANCE_CHOICES = ("auto", *STRATEGIES)

SECTIONS = {"twin", "parameters", "kpis", "objective", "constraints", "method", "replications", "scenarios",
            "evaluation", "output", "plugins_dir", "name", "fixed"}
"""The core's sections and top-level keys; the features add theirs (``SectionRegistry``)."""


@dataclass(frozen=True)
class Budget:
    """When to stop: evaluations and/or seconds (whichever first), a target objective, patience."""

    evaluations: int | None = None
    seconds: float | None = None
    target: float | None = None
    patience: int | None = None

    def describe(self) -> str:
        parts = []
        if self.evaluations is not None:
            parts.append(f"{self.evaluations} evaluations")
        if self.seconds is not None:
            parts.append(f"{self.seconds:g} s")
        if self.target is not None:
            parts.append(f"target {self.target:g}")
        if self.patience is not None:
            parts.append(f"{self.patience} evaluations without improvement")
        return " or ".join(parts) or "unlimited"


@dataclass(frozen=True)
class ObjectiveTerm:
    kpi: str
    sense: str  # "minimize" | "maximize"
    weight: float = 1.0


def stated_objective(terms: Sequence[ObjectiveTerm], objective: float) -> tuple[str, float]:
    """The minimized objective as the user stated it: ``(kpi, value)`` for a single maximized KPI (the host
    minimizes ``-weight * kpi``), else ``("objective", objective)``."""
    if len(terms) == 1 and terms[0].sense == "maximize":
        return terms[0].kpi, -objective / terms[0].weight
    return "objective", objective


def minimized_target(terms: Sequence[ObjectiveTerm], target: float) -> float:
    """A ``budget.target`` stated as the user states the objective (a single maximized KPI's value to reach,
    else the objective to get at or below), in the host's minimized sense: the inverse of
    :func:`stated_objective`."""
    if len(terms) == 1 and terms[0].sense == "maximize":
        return -target * terms[0].weight
    return target


def target_text(terms: Sequence[ObjectiveTerm], target: float) -> str:
    """``flow >= 3.5`` for a single maximized KPI, ``objective <= 10`` otherwise."""
    what, _ = stated_objective(terms, minimized_target(terms, target))
    return f"{what} {'>=' if what != 'objective' else '<='} {target:g}"


@dataclass(frozen=True)
class ConstraintSpec:
    kpi: str
    op: str  # "<=" | ">="
    limit: float
    # chance constraint: P(kpi op limit) >= probability (needs a feature that samples, [uncertainty])
    probability: float | None = None

    def value(self, kpi_value: float) -> float:
        """<= 0 when satisfied, in KPI units."""
        return kpi_value - self.limit if self.op == "<=" else self.limit - kpi_value


@dataclass(frozen=True)
class StudyConfig:
    """A whole study, typed."""

    name: str
    fmu: Path
    base_dir: Path
    parameters: Mapping[str, Mapping[str, Any]]
    kpis: Mapping[str, str]
    objective: tuple[ObjectiveTerm, ...]
    pareto: bool = False
    constraints: tuple[ConstraintSpec, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    settings: SimSettings = SimSettings()  # [twin] times, output grid, solver, interface: parsed once here
    method: str = "auto"
    method_options: Mapping[str, Any] = field(default_factory=dict)
    budget: Budget = Budget(evaluations=100)
    seed: int = 0
    seed_parameter: str | None = None
    common_random_numbers: bool = True
    replications: int = 1
    scenarios: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    workers: int = 0
    timeout: float | None = 60.0
    recycle_every: int | None = 1000
    cluster: str = ""
    instances: str = "auto"  # instance strategy: "auto" proves one per FMU (see instance_strategy)
    check_share: float = 0.02  # share of runs on reused instances repeated on a fresh instance
    out_dir: Path | None = None
    plugins_dir: Path | None = None
    source: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    # the features' sections present in the file, by section name -> the spec its plugin parsed it into
    features: Mapping[str, Any] = field(default_factory=dict)
    runs_per_candidate: int = 1  # runs one asked candidate costs (a feature may expand it, e.g. a sample)
    # how to continue this study when it is not by 'resume' (a command that does more than the study, e.g. a
    # calibration's refinement after it): stored with the study, and resume refuses with this remedy
    resume_with: str = ""

    def existing_fmu(self) -> Path:
        """The FMU path, refused (FmuError, exit 3) with the study file's key when nothing is there."""
        if not self.fmu.exists():
            raise FmuError(f"{self.source or 'study'}: [twin] fmu: {self.fmu} does not exist; correct the "
                           "path (a relative one is read from the study file's folder) or put the FMU there")
        return self.fmu

    def with_overrides(self, **changes: Any) -> StudyConfig:
        """Apply CLI/API overrides (method, budget, seed, workers, out_dir) on top of the file, refused
        (StudyError) where the study file would refuse the same value."""
        clean = {k: v for k, v in changes.items() if v is not None}
        for key, least, what in (("budget_evaluations", 1, "an evaluation budget of at least 1"),
                                 ("seed", 0, "a seed >= 0"),
                                 ("workers", 0, "0 (one per core) or a number of worker processes")):
            if key not in clean:
                continue
            value = clean[key]
            try:
                number = operator.index(value)  # an int, a numpy integer; not a float, str or bool
            except TypeError:
                number = None
            if isinstance(value, bool) or number is None or number < least:
                name = "budget" if key == "budget_evaluations" else key
                raise StudyError(f"{name} = {value!r}: expected an integer, {what}")
            clean[key] = number
        if "budget_evaluations" in clean:
            clean["budget"] = replace(self.budget, evaluations=int(clean.pop("budget_evaluations")))
        if "method" in clean and clean["method"] != self.method:
            clean.setdefault("method_options", {})
        return replace(self, **clean)


def load_study(source: str | Path | Mapping[str, Any], base_dir: str | Path | None = None,
               sections: SectionRegistry | None = None) -> StudyConfig:
    """Parse a study file path or a dict (for scripts) into a :class:`StudyConfig`.

    ``sections`` are the features' sections the file may use: a host's (``Host.sections``), or by default
    those of the built-in features (see :func:`fmi_optimizer.host.loader.builtin_host`)."""
    return parse_study(*read_study(source, base_dir), sections)


def read_study(source: str | Path | Mapping[str, Any],
               base_dir: str | Path | None = None) -> tuple[Mapping[str, Any], Path, Path | None]:
    """The study file's table, the folder its paths are relative to and the file (None for a dict)."""
    if isinstance(source, Mapping):
        return source, Path(base_dir) if base_dir is not None else Path.cwd(), None
    path = Path(source)
    if not path.exists():
        raise StudyError(f"{path}: no such study file; create one with 'fmi-optimizer init FMU'")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        hint = _bare_key_hint(path.read_text(encoding="utf-8", errors="replace"), str(exc))
        raise StudyError(f"{path}: not valid TOML ({exc}); {hint or 'fix the syntax'}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: cannot read the study file ({exc})") from exc
    return data, path.parent, path


def plugins_dir_of(data: Mapping[str, Any], base_dir: Path) -> Path | None:
    """The study's ``plugins_dir`` before the file is parsed: the host that parses it needs the plugins in
    it (a wrong value is left to :func:`parse_study`, which names it)."""
    value = data.get("plugins_dir")
    return base_dir / value if isinstance(value, str) and value else None


_BARE_KEY_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def _bare_key_hint(text: str, error: str) -> str:
    """For a TOML syntax error on a line whose key is a variable name that needs quotes (``A[1] = {}``):
    say so and show the quoted key."""
    import re

    m = re.search(r"line (\d+)", error)
    lines = text.splitlines()
    if not m or not 0 < int(m.group(1)) <= len(lines):
        return ""
    line = lines[int(m.group(1)) - 1].strip()
    key, eq, _ = line.partition("=")
    key = key.strip()
    if not eq or not key or key[0] in "\"'[#" or set(key) <= _BARE_KEY_CHARS:
        return ""
    return f"the key {key} must be quoted: write \"{key}\" = ... (a TOML quoted key)"


def _dotted_key_error(where: str, label: str, name: str, value: Any, leaf: Any) -> None:
    """Refuse a bare dotted key: TOML reads ``room.T = {}`` as the nested table {"room": {"T": {}}}, so a
    variable name with dots must be a quoted key. ``leaf(v)`` says whether ``v`` is what the section holds."""
    if leaf(value) or not isinstance(value, dict):
        return
    path = [name]
    while isinstance(value, dict) and value and not leaf(value):
        key = next((k for k, v in value.items() if isinstance(v, dict)), next(iter(value)))
        path.append(key)
        value = value[key]
    shown = ".".join(path)
    raise StudyError(f"{where}: {label} {shown}: a bare dotted key is a nested TOML table, not the variable "
                     f"name {shown!r}; quote it: \"{shown}\" = ...")


def _is_spec(v: Any) -> bool:
    return isinstance(v, dict) and not any(isinstance(x, dict) for x in v.values())


class _Reader:
    """Typed access to one TOML table, with errors that name the file and the key."""

    def __init__(self, data: Mapping[str, Any], where: str, section: str):
        self.data, self.where, self.section = data, where, section
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.where}: [{self.section}] {k}" if self.section else f"{self.where}: {k}"

    def get(self, k: str, kinds: tuple[type, ...], default: Any = None, what: str = "") -> Any:
        self.used.add(k)
        if k not in self.data:
            return default
        v = self.data[k]
        if isinstance(v, bool) and bool not in kinds:
            raise StudyError(f"{self.key(k)} = {v!r}: expected {what or _names(kinds)}")
        if not isinstance(v, kinds):
            raise StudyError(f"{self.key(k)} = {v!r}: expected {what or _names(kinds)}")
        return v

    def number(self, k: str, default: float | None = None, positive: bool = False) -> float | None:
        v = self.get(k, (int, float), default, "a number")
        if v is None:
            return None
        x = float(v)
        if not math.isfinite(x) or (positive and x <= 0):
            raise StudyError(f"{self.key(k)} = {v!r}: expected a {'positive ' if positive else ''}finite "
                             "number")
        return x

    def integer(self, k: str, default: int | None = None, minimum: int | None = None) -> int | None:
        v = self.get(k, (int,), default, "an integer")
        if v is not None and minimum is not None and v < minimum:
            raise StudyError(f"{self.key(k)} = {v!r}: expected an integer >= {minimum}")
        return v

    def check_unknown(self, accepted: set[str]) -> None:
        unknown = sorted(set(self.data) - accepted)
        if unknown:
            raise StudyError(f"{self.key(unknown[0])}: unknown key; accepted in [{self.section}]: "
                             f"{', '.join(sorted(accepted))}")


def _names(kinds: tuple[type, ...]) -> str:
    table = {int: "an integer", float: "a number", str: "a string", bool: "true/false", dict: "a table",
             list: "a list"}
    return " or ".join(table.get(k, k.__name__) for k in kinds)


def parse_study(data: Mapping[str, Any], base_dir: Path, source: Path | None,
                sections: SectionRegistry | None = None) -> StudyConfig:
    where = str(source) if source else "study"
    sections = sections if sections is not None else builtin_host().sections
    clash = sorted(SECTIONS & set(sections.names()))
    if clash:
        raise PluginError(f"{sections.source(clash[0])}: registers the study-file section [{clash[0]}], "
                          "which is the core's own; choose another name")
    accepted = SECTIONS | set(sections.names())
    unknown = sorted(set(data) - accepted)
    if unknown:
        raise StudyError(f"{where}: unknown section or key {unknown[0]!r}; accepted: "
                         f"{', '.join(sorted(accepted))}")

    def table(name: str, required: bool = False) -> dict[str, Any]:
        v = data.get(name, {})
        if not isinstance(v, dict):
            raise StudyError(f"{where}: [{name}] must be a table, got {v!r}")
        if required and not v:
            raise StudyError(f"{where}: [{name}] is missing or empty; see docs/study-file.md")
        return v

    twin = _Reader(table("twin", required=True), where, "twin")
    fmu_raw = twin.get("fmu", (str,), None, "the FMU path (relative to the study file)")
    if not fmu_raw:
        raise StudyError(f"{where}: [twin] fmu is missing; give the FMU path relative to the study file")
    fmu = (base_dir / fmu_raw).resolve()
    interface = twin.get("interface", (str,), "auto")
    if interface not in ("auto", "cs", "me"):
        raise StudyError(f"{twin.key('interface')} = {interface!r}: accepted: auto, cs, me")
    settings = SimSettings(
        start_time=twin.number("start_time"), stop_time=twin.number("stop_time", positive=True),
        output_interval=twin.number("output_interval", positive=True),
        step_size=twin.number("step_size", positive=True), tolerance=twin.number("tolerance", positive=True),
        solver=twin.get("solver", (str,), "CVode"), interface=interface,
    )
    twin.check_unknown({"fmu", "start_time", "stop_time", "output_interval", "step_size", "tolerance",
                        "solver",
                        "interface"})
    _check_times(settings, twin)

    params = table("parameters")
    for name, spec in params.items():
        _dotted_key_error(where, "[parameters]", name, spec, _is_spec)
        if not isinstance(spec, dict):
            raise StudyError(f"{where}: [parameters] {name} = {spec!r}: expected a table such as {{}} or "
                             "{ min = 0.1, max = 2.0, levels = 8 }")
    kpis = table("kpis")
    for name, expr in kpis.items():
        _dotted_key_error(where, "[kpis]", name, expr, lambda v: isinstance(v, str))
        if not isinstance(expr, str):
            raise StudyError(f"{where}: [kpis] {name} = {expr!r}: expected a string such as "
                             "\"max(T_junction)\"")

    # a feature's section present in the file may bring a default objective (calibration: the training
    # loss), and then the study needs no [kpis] or [objective] of its own
    default = next((s.default_objective for s in sections
                    if s.default_objective is not None and data.get(s.name)), None)
    _template_problems(where, params, kpis, table("objective"), default is not None)
    if default is not None and not data.get("objective"):
        objective: tuple[ObjectiveTerm, ...] = (ObjectiveTerm(default, "minimize"),)
        pareto = False
    else:
        objective, pareto = _objective(table("objective"), where, kpis)
    constraints = _constraints(table("constraints"), where, kpis)
    context = SectionContext(where, base_dir, frozenset(params), constraints)
    features: dict[str, Any] = {}
    runs = 1
    for section in sections:  # in plugin load order; each feature parses (and cross-checks) its own table
        spec = section.parse(data.get(section.name), context)
        if spec is not None:
            features[section.name] = spec
            if section.runs_per_candidate is not None:
                runs *= section.runs_per_candidate(spec)

    meth = _Reader(table("method"), where, "method")
    name = meth.get("name", (str,), "auto")
    budget = _budget(meth.get("budget", (dict, int), {"evaluations": 100}), meth.key("budget"))
    seed = meth.integer("seed", 0, minimum=0)
    options = {k: v for k, v in meth.data.items() if k not in ("name", "budget", "seed")}

    rep = _Reader(table("replications"), where, "replications")
    seed_parameter = rep.get("seed_parameter", (str,))
    crn = rep.get("common_random_numbers", (bool,), True)
    n_rep = rep.integer("count", 1, minimum=1)
    rep.check_unknown({"seed_parameter", "common_random_numbers", "count"})

    scenarios = _scenarios(table("scenarios"), where, base_dir)

    ev = _Reader(table("evaluation"), where, "evaluation")
    workers = ev.integer("workers", 0, minimum=0)
    timeout = ev.number("timeout", 60.0, positive=True)
    recycle = ev.integer("recycle_every", 1000, minimum=1)
    cluster = ev.get("cluster", (str,), "")
    _check_cluster(cluster, ev.key("cluster"))
    instances = ev.get("instances", (str,), "auto")
    if instances not in INSTANCE_CHOICES:
        raise StudyError(f"{where}: [evaluation] instances = {instances!r}: use one of "
                         f"{', '.join(INSTANCE_CHOICES)}")
    check_share = ev.number("check_share", 0.02)
    if check_share is None or not 0.0 <= check_share <= 1.0:
        raise StudyError(f"{where}: [evaluation] check_share = {check_share!r}: use a share between 0 and 1")
    ev.check_unknown({"workers", "timeout", "recycle_every", "cluster", "instances", "check_share"})

    out = _Reader(table("output"), where, "output")
    out_dir = out.get("dir", (str,))
    out.check_unknown({"dir"})
    plugins_dir = data.get("plugins_dir")
    if plugins_dir is not None and not isinstance(plugins_dir, str):
        raise StudyError(f"{where}: plugins_dir = {plugins_dir!r}: expected a folder path string")
    fixed = table("fixed")
    for key, value in fixed.items():
        _dotted_key_error(where, "[fixed]", key, value, lambda v: not isinstance(v, dict))
    study_name = data.get("name") or (source.stem if source else fmu.stem)
    if not isinstance(study_name, str):
        raise StudyError(f"{where}: name = {study_name!r}: expected a string")

    return StudyConfig(
        name=study_name, fmu=fmu, base_dir=base_dir, parameters=params, kpis=kpis, objective=objective,
        pareto=pareto, constraints=constraints, fixed=fixed, method=name, method_options=options,
        budget=budget,
        seed=int(seed or 0), seed_parameter=seed_parameter, common_random_numbers=bool(crn),
        replications=int(n_rep or 1), scenarios=scenarios, workers=int(workers or 0), timeout=timeout,
        recycle_every=recycle, cluster=cluster, instances=instances, check_share=float(check_share),
        out_dir=(base_dir / out_dir) if out_dir else None,
        plugins_dir=(base_dir / plugins_dir) if plugins_dir else None, source=source, raw=dict(data),
        features=features, runs_per_candidate=runs, settings=settings,
    )


def _template_problems(where: str, params: Mapping[str, Any], kpis: Mapping[str, Any],
                       objective: Mapping[str, Any],
                       by_default: bool) -> None:
    """An unedited ``init`` template lacks parameters, KPIs and an objective: say all of them at once, not one
    per attempt (a single missing piece keeps its own, more specific message further on)."""
    problems = []
    if not params:
        problems.append("[parameters] is empty: remove the '# ' of at least one parameter to optimize")
    if not kpis and not by_default:
        problems.append("[kpis] is empty: remove the '# ' of a KPI (or define one, e.g. T_max = \"max(T)\")")
    if not objective and not by_default:
        problems.append("[objective] is missing: e.g. minimize = { T_max = 1.0 } naming a KPI")
    if len(problems) > 1:
        raise StudyError(f"{where}: {len(problems)} things to complete: "
                         + "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1)))


SOLVERS = ("CVode", "Euler")  # fmpy's model-exchange solvers
MAX_SAMPLES = 10_000_000  # output points per simulation: more is a mistake (memory), not a study
CLUSTER_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss", "inproc")


def _check_times(s: SimSettings, twin: _Reader) -> None:
    """Times that cannot describe a simulation are refused here, not found by every run failing."""
    if s.solver not in SOLVERS:
        raise StudyError(f"{twin.key('solver')} = {s.solver!r}: unknown solver; accepted: "
                         f"{', '.join(SOLVERS)}")
    if s.start_time is not None and s.stop_time is not None and s.start_time >= s.stop_time:
        raise StudyError(f"{twin.key('start_time')} = {s.start_time:g} is not before stop_time = "
                         f"{s.stop_time:g}; make start_time smaller than stop_time")
    if s.output_interval is not None and s.stop_time is not None:
        samples = (s.stop_time - (s.start_time or 0.0)) / s.output_interval
        if samples > MAX_SAMPLES:
            raise StudyError(f"{twin.key('output_interval')} = {s.output_interval:g} gives {samples:.3g} "
                             f"output points per simulation (at most {MAX_SAMPLES:,}); choose a larger "
                             "output_interval")
    if s.step_size is not None and s.stop_time is not None:
        steps = (s.stop_time - (s.start_time or 0.0)) / s.step_size
        if steps > MAX_SAMPLES * 10:
            raise StudyError(f"{twin.key('step_size')} = {s.step_size:g} gives {steps:.3g} steps per "
                             "simulation; choose a larger step_size")


def _check_cluster(cluster: str, key: str) -> None:
    """``""`` (local workers), ``"local"`` (a Dask LocalCluster) or a scheduler address
    ``tcp://host:port``."""
    if cluster in ("", "local"):
        return
    scheme, sep, rest = cluster.partition("://")
    if not sep:
        scheme, rest = "tcp", cluster
    host, colon, port = rest.rpartition(":")
    if scheme not in CLUSTER_SCHEMES or not rest or (scheme != "inproc" and (not colon or not host
                                                                             or not port.isdigit())):
        raise StudyError(f"{key} = {cluster!r}: not a Dask scheduler address; use \"local\" or an address "
                         f"such as \"tcp://host:8786\" (schemes: {', '.join(CLUSTER_SCHEMES)})")


def _objective(obj: dict[str, Any], where: str,
               kpis: Mapping[str, str]) -> tuple[tuple[ObjectiveTerm, ...], bool]:
    accepted = {"minimize", "maximize", "pareto"}
    unknown = sorted(set(obj) - accepted)
    if unknown:
        raise StudyError(f"{where}: [objective] {unknown[0]}: unknown key; accepted: minimize, maximize, "
                         "pareto")
    terms: list[ObjectiveTerm] = []
    for sense in ("minimize", "maximize"):
        spec = obj.get(sense)
        if spec is None:
            continue
        if isinstance(spec, str):
            spec = {spec: 1.0}
        elif isinstance(spec, list):
            spec = {k: 1.0 for k in spec}
        if not isinstance(spec, dict):
            raise StudyError(f"{where}: [objective] {sense} = {spec!r}: expected a KPI name, a list, or "
                             "a table of KPI = weight")
        for k, w in spec.items():
            _dotted_key_error(where, f"[objective] {sense}:", k, w, lambda v: not isinstance(v, dict))
            if k not in kpis:
                raise StudyError(f"{where}: [objective] {sense}: unknown KPI {k!r}; defined in [kpis]: "
                                 f"{', '.join(kpis) or 'none'}")
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
                raise StudyError(f"{where}: [objective] {sense}.{k} = {w!r}: expected a positive weight")
            terms.append(ObjectiveTerm(k, sense, float(w)))
    if not terms:
        raise StudyError(f"{where}: [objective] is missing; e.g. minimize = {{ mass = 1.0 }}")
    both = sorted({t.kpi for t in terms
                   if t.sense == "minimize"} & {t.kpi for t in terms if t.sense == "maximize"})
    if both:
        raise StudyError(f"{where}: [objective] KPI {both[0]!r} is both minimized and maximized; keep it "
                         "under one of minimize or maximize")
    pareto = obj.get("pareto", False)
    if not isinstance(pareto, bool):
        raise StudyError(f"{where}: [objective] pareto = {pareto!r}: expected true or false")
    return tuple(terms), pareto


def _constraints(raw: dict[str, Any], where: str, kpis: Mapping[str, str]) -> tuple[ConstraintSpec, ...]:
    out = []
    for k, text in raw.items():
        if k not in kpis:
            raise StudyError(f"{where}: [constraints] unknown KPI {k!r}; defined in [kpis]: "
                             f"{', '.join(kpis) or 'none'}")
        if isinstance(text, dict):
            out.append(_chance_constraint(k, text, where))
            continue
        if not isinstance(text, str):
            raise StudyError(f"{where}: [constraints] {k} = {text!r}: expected a string such as \"<= "
                             "358.15\"")
        s = text.strip()
        op = s[:2]
        if op not in ("<=", ">="):
            raise StudyError(f"{where}: [constraints] {k} = {text!r}: must start with <= or >=")
        try:
            limit = float(s[2:])
        except ValueError as exc:
            raise StudyError(f"{where}: [constraints] {k} = {text!r}: the limit must be a number") from exc
        out.append(ConstraintSpec(k, op, limit))
    return tuple(out)


def _chance_constraint(k: str, spec: dict[str, Any], where: str) -> ConstraintSpec:
    """``kpi = { op = "<=", limit = 378.15, probability = 0.95 }`` (probability optional)."""
    key = f"{where}: [constraints] {k}"
    unknown = sorted(set(spec) - {"op", "limit", "probability"})
    if unknown:
        raise StudyError(f"{key}: unknown key {unknown[0]!r}; accepted: op, limit, probability")
    op, limit, prob = spec.get("op"), spec.get("limit"), spec.get("probability")
    if op not in ("<=", ">="):
        raise StudyError(f"{key}: op = {op!r}; accepted: \"<=\", \">=\"")
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
        raise StudyError(f"{key}: limit = {limit!r}: expected a finite number")
    if prob is not None and (isinstance(prob, bool) or not isinstance(prob, int | float) or not 0 < prob < 1):
        raise StudyError(f"{key}: probability = {prob!r}: expected a number in (0, 1), e.g. 0.95")
    return ConstraintSpec(k, op, float(limit), None if prob is None else float(prob))


def _budget(raw: Any, where: str) -> Budget:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = {"evaluations": raw}
    accepted = {"evaluations", "seconds", "target", "patience"}
    unknown = sorted(set(raw) - accepted)
    if unknown:
        raise StudyError(f"{where}: unknown key {unknown[0]!r}; accepted: {', '.join(sorted(accepted))}")
    r = _Reader(raw, where, "")
    b = Budget(r.integer("evaluations", None, 1), r.number("seconds", None, True), r.number("target"),
               r.integer("patience", None, 1))
    if b.evaluations is None and b.seconds is None:
        raise StudyError(f"{where}: give evaluations and/or seconds, e.g. "
                         f"{{ evaluations = 200, seconds = 600 }}")
    return b


def _scenarios(raw: dict[str, Any], where: str, base_dir: Path) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    out: list[tuple[str, Mapping[str, Any]]] = []
    for name, spec in raw.items():
        if name == "scenarios_csv":
            out.extend(_scenarios_csv(base_dir / str(spec), where))
        elif name == "full_factorial":
            if not isinstance(spec, dict) or not all(isinstance(v, list) and v for v in spec.values()):
                raise StudyError(f"{where}: [scenarios] full_factorial = {spec!r}: expected a table of "
                                 "parameter = [values...]")
            keys = list(spec)
            for combo in itertools.product(*(spec[k] for k in keys)):
                values = dict(zip(keys, combo, strict=True))
                out.append(("_".join(f"{k}={v}" for k, v in values.items()), values))
        elif isinstance(spec, dict):
            for k, v in spec.items():
                _dotted_key_error(where, f"[scenarios] {name}:", k, v, lambda x: not isinstance(x, dict))
            out.append((name, dict(spec)))
        else:
            raise StudyError(f"{where}: [scenarios] {name} = {spec!r}: expected a table of parameter values, "
                             "scenarios_csv = \"file.csv\" or full_factorial = { param = [values] }")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise StudyError(f"{where}: [scenarios] names are not unique")
    return tuple(out)


def _scenarios_csv(path: Path, where: str) -> list[tuple[str, Mapping[str, Any]]]:
    if not path.exists():
        raise StudyError(f"{where}: [scenarios] scenarios_csv: {path} does not exist")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "name" not in rows[0]:
        raise StudyError(f"{path}: needs a header with a 'name' column and one column per parameter")
    out: list[tuple[str, Mapping[str, Any]]] = []
    for r in rows:
        name = r.pop("name")
        out.append((name, {k: _number_or_text(v) for k, v in r.items()}))
    return out


def _number_or_text(v: str) -> Any:
    s = v.strip()
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return s
