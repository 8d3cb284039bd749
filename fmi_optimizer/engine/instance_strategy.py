"""Prove, per FMU, how a worker may start each run from the state of a fresh instance.

A worker that reused one instance with ``fmi2Reset`` between runs was fast and, on FMUs from real tools,
wrong: some FMUs continue from the previous run's state after a reset, some ignore new parameter values, some
crash on a second run.  So the engine trusts no strategy it has not seen reproduce the truth, plain fmpy's
``simulate_fmu`` per run (a fresh extraction, a fresh copy of the library, a fresh instance), on distinct
value sets:

1. a fresh worker process runs the value sets that way (strategy ``reload``) in the order A B C A: the
   reference.  If the second A differs from the first, the process itself carries state from run to run (a
   file, the environment, a shared runtime library); then only a new process per run is the truth, and the
   reference is taken again from fresh processes (an FMU that does not even reproduce itself there cannot be
   proven anything);
2. each faster strategy (``reset``, ``snapshot`` where the FMU declares it can get and set its state,
   ``reinstantiate``) runs the value sets in one new worker in the same order, with the production checks
   on (the first reused run is repeated on a new instance, as every production worker does); it is proven
   when every run agrees with the reference, trajectories and all
   (:func:`fmi_optimizer.engine.protocol.disagreement`), and no check differed or crashed (some FMUs reset
   well but crash when their loaded library makes a second instance);
3. the first proven strategy is used; if none is, ``reload`` (or ``process`` after step 1's fallback).

The verdict is cached by the FMU's content hash, the parameters probed and the values the probe's runs shared,
so the proof is paid once per FMU and design space.  Workers keep checking in production
(:mod:`fmi_optimizer.engine.worker`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fmi_optimizer.engine.pool import EngineOptions, LocalPool
from fmi_optimizer.engine.protocol import RunReply, RunRequest, disagreement
from fmi_optimizer.errors import FmuError
from fmi_optimizer.fmu.archive import cache_root, content_hash

CANDIDATES = ("reset", "snapshot", "reinstantiate")
PROVEN = "reproduces the fresh runs"
CACHE_VERSION = 3


@dataclass(frozen=True)
class StrategyVerdict:
    """Which instance strategy an FMU honours, why, and what each tried strategy did."""

    strategy: str
    reason: str
    trials: dict[str, str]  # strategy -> "reproduces the fresh runs" or how it failed
    fmu_sha256: str
    seconds: float
    cached: bool = False
    parameters: tuple[str, ...] = ()  # the parameters the probe set (the design space it was proven for)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, limit: int = 200) -> str:
        """One line for the terminal: the reason, cut at ``limit`` characters where the failed trials are
        detailed (a Dymola FMU's crash messages made it 600 characters, printed for every study); the whole is
        in the JSON and the report's Simulation instances section."""
        reason = self.reason
        if len(reason) > limit:  # the headline comes before the first ": ", the trials' details after it
            failed = [s for s, outcome in self.trials.items() if outcome != PROVEN]
            head = reason.split(": ")[0][:limit]
            reason = (f"{head} (tried {', '.join(failed)}; the report's 'Simulation instances' says why each "
                      "failed)")
        return f"instance strategy {self.strategy}: {reason}" + (" (cached proof)" if self.cached else "")


def fixed_verdict(strategy: str, why: str, fmu: str | Path) -> StrategyVerdict:
    """A verdict the user chose instead of a proof (``[engine] instances = ...``)."""
    return StrategyVerdict(strategy, why, {}, content_hash(Path(fmu)), 0.0)


def _cache_file(sha: str, interface: str, requests: Sequence[RunRequest]) -> Path:
    """Where the verdict for this FMU is cached: by its content hash, the interface, which parameters the
    probe set, the values every probe run shared (a study's fixed values can change how an FMU behaves), the
    simulation settings, the outputs compared and the input signals; not by the probed design values
    themselves, so every study of the same design space and settings reuses the proof."""
    names = sorted({k for r in requests for k in r.start_values})
    shared = {k: v for k, v in requests[0].start_values.items()
              if all(r.start_values.get(k, object()) == v for r in requests[1:])}
    first = requests[0]
    inputs = hashlib.sha256(first.inputs.tobytes()).hexdigest() if first.inputs is not None else None
    probe = json.dumps([CACHE_VERSION, sha, interface, names, shared, first.settings.to_dict(),
                        sorted(first.outputs), inputs], sort_keys=True, default=str)
    key = hashlib.sha256(probe.encode()).hexdigest()[:32]
    return cache_root() / "instance-strategies" / f"{key}.json"


def _read_cache(path: Path) -> StrategyVerdict | None:
    try:
        data = json.loads(path.read_text())
        data["parameters"] = tuple(data.get("parameters") or ())
        return replace(StrategyVerdict(**data), cached=True)
    except (OSError, ValueError, TypeError):
        return None


def cached_verdicts(fmu: str | Path) -> list[StrategyVerdict]:
    """Every cached verdict for this FMU's content (one per design space probed), for ``inspect``."""
    sha = content_hash(Path(fmu))
    found = []
    for path in sorted((cache_root() / "instance-strategies").glob("*.json")):
        verdict = _read_cache(path)
        if verdict is not None and verdict.fmu_sha256 == sha:
            found.append(verdict)
    return found


def _write_cache(path: Path, verdict: StrategyVerdict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdict.to_json()))
        os.replace(tmp, path)
    except OSError:  # a read-only cache costs a proof per study, nothing else
        pass


def _run(fmu: str | Path, options: EngineOptions,
         requests: Sequence[RunRequest]) -> tuple[dict[int, RunReply], str]:
    """The replies by task id, and why the pool gave up the strategy on its own ('' when it kept it)."""
    with LocalPool(fmu, options) as pool:
        replies = {r.task_id: r for r in pool.run(list(requests)) if not r.rerun}
        return replies, "; ".join(pool.switches)


def _renumber(requests: Sequence[RunRequest], order: Sequence[int]) -> list[RunRequest]:
    return [replace(requests[k], task_id=i) for i, k in enumerate(order)]


def _state_declared(fmu: str | Path) -> bool:
    """Whether the model description says the FMU can get and set its state (FMI 2 and 3 spellings)."""
    from fmpy import read_model_description

    md = read_model_description(str(fmu), validate=False)
    parts = [p for p in (md.coSimulation, md.modelExchange) if p is not None]
    return any(getattr(p, "canGetAndSetFMUstate", False) or getattr(p, "canGetAndSetFMUState", False)
               for p in parts)


def prove(fmu: str | Path, requests: Sequence[RunRequest], *, interface: str = "auto",
          timeout: float | None = 60.0, use_cache: bool = True,
          log: Callable[[str], None] = lambda s: None) -> StrategyVerdict:
    """The fastest instance strategy that reproduces plain fmpy's fresh runs of ``requests`` (at least two
    value sets, ideally three that move the outputs). ``log`` hears what a proof not in the cache is about to
    spend, so a slow FMU's silent minutes are explained."""
    if len(requests) < 2:
        raise ValueError("proving an instance strategy needs at least two distinct value sets")
    sha = content_hash(Path(fmu))
    cache = _cache_file(sha, interface, requests)
    if use_cache:
        hit = _read_cache(cache)
        if hit is not None:
            return hit
    started = time.monotonic()
    n = len(requests)
    names = tuple(sorted({k for r in requests for k in r.start_values}))
    order = [*range(n), 0]
    log(f"proving how runs of {Path(fmu).name} may reuse an instance (once per FMU, then cached): {n + 1} "
        f"fresh runs, then {n + 1} runs per reuse strategy tried ({len(CANDIDATES)} at most)")
    base = EngineOptions(workers=1, timeout=timeout, interface=interface, recycle_every=None)  # checks on
    trials: dict[str, str] = {}

    def verdict(strategy: str, reason: str, cache_it: bool = True) -> StrategyVerdict:
        found = StrategyVerdict(strategy, reason, trials, sha, time.monotonic() - started, parameters=names)
        if cache_it:
            _write_cache(cache, found)
        return found

    reference, _ = _run(fmu, replace(base, strategy="reload"), _renumber(requests, order))
    log(f"  fresh runs done in {time.monotonic() - started:.1f} s; trying reuse strategies")
    again = disagreement(reference[0], reference[n])
    if again:
        trials["reload"] = f"a fresh library copy in a process that ran before differs ({again})"
        fresh, _ = _run(fmu, replace(base, workers=min(2, os.cpu_count() or 1), strategy="process"),
                        _renumber(requests, order))
        again = disagreement(fresh[0], fresh[n])
        if again:
            return verdict("reload", "two fresh processes gave different numbers for the same values "
                           f"({again}): the FMU does not reproduce itself, so no strategy can be proven; "
                           "runs are made the way plain fmpy makes them")
        return verdict("process", "only a new process per run reproduces fresh runs: " + trials["reload"])
    if not any(r.status == "ok" for r in reference.values()):
        first = reference[0]
        return verdict("reload", f"no fresh run succeeded ({first.status}: {first.error[:200]}), so nothing "
                       "faster can be proven", cache_it=False)  # the next study may give values that run
    state = _state_declared(fmu)
    for strategy in CANDIDATES:
        if strategy == "snapshot" and not state:
            trials[strategy] = "not tried: the FMU does not declare canGetAndSetFMUstate"
            continue
        try:
            replies, gave_up = _run(fmu, replace(base, strategy=strategy), _renumber(requests, order))
        except FmuError as exc:  # e.g. the state cannot be captured right after instantiation
            trials[strategy] = f"a worker could not start: {exc}"
            continue
        trials[strategy] = gave_up or _compare(replies, reference, order)
        if trials[strategy] == PROVEN:
            break
    chosen = next((s for s, t in trials.items() if t == PROVEN), "reload")
    reason = (f"{chosen} reproduces plain fmpy's fresh runs of {n} value sets" if chosen != "reload"
              else "only a fresh copy of the library per run (as plain fmpy loads it) reproduces fresh runs: "
                   + "; ".join(f"{s}: {t}" for s, t in trials.items()))
    if not any(disagreement(reference[0], reference[k]) for k in range(1, n)):
        reason += (" (the probe's value sets gave identical outputs, so ignoring new values could not be "
                   "ruled out)")
    return verdict(chosen, reason)


def _compare(replies: dict[int, RunReply], reference: dict[int, RunReply], order: Sequence[int]) -> str:
    for i, k in enumerate(order):
        got = replies.get(i)
        if got is None:
            return f"run {i + 1} gave no reply"
        differs = disagreement(got, reference[k])
        if differs:
            return f"run {i + 1} of {len(order)} differs from a fresh run: {differs}"
    return PROVEN
