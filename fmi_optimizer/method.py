"""The Method contract: what every optimization method (built-in or third-party) implements.

A method sees a :class:`Problem` (the design space and what is being minimized), is
asked for candidates with :meth:`Method.ask`, is told every finished evaluation —
failed ones included — with :meth:`Method.tell`, and names its best with
:meth:`Method.recommend`.  The host never invents objective values for failures: a
method decides what a crash means.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from fmi_optimizer.errors import PluginError, StudyError
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import DesignSpace, Value

ALL_KINDS = frozenset({"continuous", "discrete", "integer", "categorical", "boolean"})


@dataclass(frozen=True)
class Capabilities:
    """What a method can handle; the host checks these before a study starts.

    ``kinds`` are dimension kinds ("continuous", "discrete" = thresholded continuous,
    "integer", "categorical", "boolean").
    """

    kinds: frozenset[str] = ALL_KINDS
    noisy: bool = False
    batch: bool = True
    multi_objective: bool = False
    constraints: bool = True
    needs_scenarios: bool = False
    max_dimensions: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["kinds"] = sorted(self.kinds)
        return d


@dataclass(frozen=True)
class Problem:
    """What a method optimizes: always minimization of ``objective`` (directions applied)."""

    space: DesignSpace
    objective_names: tuple[str, ...] = ("objective",)
    constraint_names: tuple[str, ...] = ()
    noisy: bool = False
    scenarios: tuple[tuple[str, dict[str, Value]], ...] = ()
    budget_evaluations: int | None = None
    batch_size: int = 1
    budget_seconds: float | None = None
    seconds_per_evaluation: float | None = None  # one candidate's simulation time, measured before routing

    @property
    def n_objectives(self) -> int:
        return len(self.objective_names)

    def affordable_evaluations(self, seconds_per_point: float, startup_seconds: float = 0.0) -> float | None:
        """How many evaluations a method whose own work costs ``seconds_per_point`` per proposed point (plus
        ``startup_seconds`` once) gets through before the time budget ends, at the measured simulation cost of
        an evaluation spread over ``batch_size`` workers; None when there is no time budget or no measurement
        yet."""
        if self.budget_seconds is None or self.seconds_per_evaluation is None:
            return None
        per_point = seconds_per_point + self.seconds_per_evaluation / max(1, self.batch_size)
        n = max(0.0, self.budget_seconds - startup_seconds) / max(per_point, 1e-9)
        return n if self.budget_evaluations is None else min(float(self.budget_evaluations), n)

    def model_cost_fit(self, seconds_per_point: float, startup_seconds: float = 0.0) -> Fit | None:
        """For model-based methods: a low fit when their own cost per point would leave less than half of the
        evaluations a model-free method gets in the same time budget (a fast twin: spend the time simulating);
        None when that is not the case or cannot be told."""
        mine = self.affordable_evaluations(seconds_per_point, startup_seconds)
        free = self.affordable_evaluations(0.0)
        if mine is None or free is None or mine >= 0.5 * free:
            return None
        assert self.seconds_per_evaluation is not None and self.budget_seconds is not None
        return Fit(0.09,
                   f"an evaluation takes {self.seconds_per_evaluation * 1e3:.3g} ms but this method's model "
                   "costs "
                         f"~{seconds_per_point:g} s per point: in {self.budget_seconds:g} s it would "
                         f"evaluate ~{mine:.0f} points where a model-free method evaluates {free:.0f}")


@dataclass(frozen=True)
class Fit:
    """How well a method suits a problem (0 = cannot run it) and why, in one line."""

    score: float
    reason: str


@dataclass(frozen=True)
class NoOptions:
    """A method without options."""


class Method(ABC):
    """Base class of every method. Subclasses set the class attributes and ask/tell."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[type] = NoOptions
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init__(self, problem: Problem, options: Mapping[str, Any] | None = None, seed: int = 0):
        self.problem = problem
        self.options = parse_options(type(self).Options, options or {}, self.name)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.history: list[Evaluation] = []

    # -- the protocol ---------------------------------------------------------------------
    @abstractmethod
    def ask(self, n: int) -> list[Candidate]:
        """Up to ``n`` candidates to evaluate next (fewer, or none, when the method is done)."""

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        """Receive finished evaluations (every status). Subclasses extend and call super()."""
        self.history.extend(evaluations)

    def recommend(self) -> Candidate | None:
        """The best candidate so far: feasible first, then lowest mean objective over its replications."""
        return best_candidate(self.history)

    @property
    def finished(self) -> bool:
        """True when the method has nothing more to ask (e.g. a selection procedure has ended)."""
        return False

    def diagnostics(self) -> dict[str, Any]:
        """JSON-able facts for the report (encoding, surrogate fit, eliminations, ...)."""
        return {}

    # -- routing --------------------------------------------------------------------------
    @classmethod
    def fit(cls, problem: Problem) -> Fit:
        """Score how well this method suits ``problem``; subclasses refine the default."""
        why = unsupported_reason(cls.capabilities, problem)
        if why:
            return Fit(0.0, why)
        return Fit(0.1, "generic method")


def unsupported_reason(caps: Capabilities, problem: Problem) -> str:
    """Why a method with ``caps`` cannot run ``problem`` ('' when it can)."""
    for d in problem.space:
        kind = "discrete" if d.kind == "continuous" and d.discrete else d.kind
        if kind not in caps.kinds and not (kind == "discrete" and "continuous" in caps.kinds):
            return f"dimension {d.name!r} is {kind}, the method handles {sorted(caps.kinds)}"
    if problem.n_objectives > 1 and not caps.multi_objective:
        return f"{problem.n_objectives} objectives, the method optimizes one"
    if problem.constraint_names and not caps.constraints:
        return "the study has constraints, the method does not handle them"
    if caps.needs_scenarios and not problem.scenarios:
        return "the method selects among [scenarios], the study lists none"
    if caps.max_dimensions is not None and len(problem.space) > caps.max_dimensions:
        return f"{len(problem.space)} dimensions, the method handles at most {caps.max_dimensions}"
    return ""


def _rankable(e: Evaluation) -> bool:
    """A successful evaluation with a finite objective: one that can be compared with others."""
    return e.ok and e.objective is not None and math.isfinite(e.objective)


def best_candidate(history: Sequence[Evaluation]) -> Candidate | None:
    """Best of ``history``: a feasible one with the lowest mean objective over replications,
    else the least-violating one; ``None`` if nothing succeeded."""
    groups: dict[tuple[Any, ...], list[Evaluation]] = {}
    for e in history:
        if _rankable(e):
            groups.setdefault(tuple(sorted(e.candidate.values.items())), []).append(e)
    if not groups:
        return None

    def rank(evs: list[Evaluation]) -> tuple[float, float]:
        violation = float(np.mean([ev.violation() for ev in evs]))
        return (violation, float(np.mean([ev.objective for ev in evs if ev.objective is not None])))

    best = min(groups.values(), key=rank)
    return Candidate(dict(best[0].candidate.values), 0, best[0].candidate.tag)


# -- fresh searches ----------------------------------------------------------------------------
def _restart_rank(e: Evaluation) -> tuple[float, float] | None:
    """Feasibility first (the violation), then the objective; ``None`` for what cannot rank."""
    if not _rankable(e) or e.candidate.replication != 0 or e.objective is None:  # None: for mypy
        return None
    return (float(e.violation()), float(e.objective))


class Restarts:
    """Fresh searches for a method whose run has stalled: counts evaluations without improvement and holds the
    current fresh search, if any (used by ``qio``; any method may use it).

    A stalled model-based run sits at a design every draw of its model ranks best, often a local optimum,
    with most of its data around it, so the model is confidently wrong away from it. After ``after``
    evaluations without a better incumbent a *fresh search* starts: the method proposes a new space-filling
    design, then model steps whose surrogates learn only from the fresh search's own designs and that work
    around the fresh search's own best. It ends when it finds a design better than the run's incumbent (the
    method learns from everything again) or when it stalls in turn (another fresh search starts). The run
    still recommends its overall best. The method tells this object what it asked (:meth:`asked`) and what it
    was told (:meth:`told`), and reads :attr:`keys` (the fresh search's designs, ``None`` outside one) and
    :meth:`incumbent`."""

    def __init__(self, after: int):
        self.after = after
        self.keys: set[Hashable] | None = None  # designs asked by the current fresh search (None: none)
        self.history: list[Evaluation] = []  # the current fresh search's evaluations
        self.best: tuple[float, float] | None = None  # the run's incumbent
        self.own_best: tuple[float, float] | None = None  # the fresh search's incumbent
        self.stall = 0
        self.started = 0  # fresh searches started
        self.won = 0  # fresh searches that found a better incumbent

    @property
    def active(self) -> bool:
        return self.keys is not None

    def asked(self, key: Hashable) -> None:
        if self.keys is not None:
            self.keys.add(key)

    def told(self, evaluations: Sequence[Evaluation], keys: Sequence[Hashable]) -> None:
        for e, key in zip(evaluations, keys, strict=True):
            r = _restart_rank(e)
            better = r is not None and (self.best is None or r < self.best)
            if better:
                self.best = r
            if self.keys is None:
                if r is not None:
                    self.stall = 0 if better else self.stall + 1
                if self.after and self.stall >= self.after:
                    self._start()
                continue
            if key not in self.keys or r is None:
                continue
            self.history.append(e)
            if better:  # the fresh search beat the run's incumbent: learn from everything again
                self.keys, self.history, self.stall = None, [], 0
                self.won += 1
                continue
            own_better = self.own_best is None or r < self.own_best
            self.own_best = r if own_better else self.own_best
            self.stall = 0 if own_better else self.stall + 1
            if self.stall >= self.after:
                self._start()

    def _start(self) -> None:
        self.keys, self.history, self.own_best, self.stall = set(), [], None, 0
        self.started += 1

    def incumbent(self) -> Candidate | None:
        """The fresh search's best design (``None`` outside one or before it has a result)."""
        return best_candidate(self.history) if self.keys is not None else None

    def report(self) -> dict[str, int | bool]:
        return {"after": self.after, "started": self.started, "won": self.won, "active": self.active}


# -- options ---------------------------------------------------------------------------------
def parse_options(options_cls: type, raw: Mapping[str, Any], method_name: str) -> Any:
    """Build the method's frozen options dataclass, rejecting unknown keys and wrong types."""
    if not dataclasses.is_dataclass(options_cls):
        raise PluginError(f"method {method_name!r}: Options must be a dataclass, got {options_cls!r}")
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        accepted = ", ".join(sorted(fields)) or "none"
        raise StudyError(f"method {method_name!r}: unknown option(s) {unknown}; accepted: {accepted}")
    hints = typing.get_type_hints(options_cls)
    kwargs = {k: _coerce(method_name, k, v, hints.get(k, Any)) for k, v in raw.items()}
    try:
        return options_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise StudyError(f"method {method_name!r}: invalid options: {exc}") from exc


def _coerce(method_name: str, key: str, value: Any, hint: Any) -> Any:
    """Accept a TOML/JSON value for an option typed ``hint`` (ints for floats, lists for tuples)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            if a is type(None) and value is None:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(method_name, key, value, a)
            except StudyError as exc:
                errors.append(str(exc))
        raise StudyError(f"method {method_name!r}: option {key!r} = {value!r} has the wrong type (expected "
                         f"{hint})")
    if origin is typing.Literal:
        if value in args:
            return value
        raise StudyError(f"method {method_name!r}: option {key!r} = {value!r}; accepted: {list(args)}")
    if origin in (tuple, list) and isinstance(value, list | tuple):
        inner = args[0] if args else Any
        seq = [_coerce(method_name, key, v, inner) for v in value]
        return tuple(seq) if origin is tuple else seq
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    if origin is dict and isinstance(value, dict):
        return dict(value)
    raise StudyError(f"method {method_name!r}: option {key!r} = {value!r} has the wrong type (expected "
                     f"{getattr(hint, '__name__', hint)})")
