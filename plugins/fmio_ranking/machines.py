"""Stage machines: each procedure as a sequence of stages over per-system observation arrays.

A machine says how many observations every system needs (``need``, cumulative), and is stepped
with the observations once they are all in.  Sampling is in equal increments per surviving system
per stage (except Rinott's second stage and OCBA, whose sizes differ by design), so a host can run
a whole stage in parallel and the decisions depend only on the observations, never on timing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import constants, procedures


@dataclass(frozen=True)
class Config:
    """What the machines need from the method's options (already validated)."""

    alpha: float
    delta: float
    n0: int
    increment: int = 1
    paired: bool = True
    max_observations: int = 10_000
    budget: int = 0
    ocba_n0: int = 10
    ocba_step: int = 0


class Machine(ABC):
    """Common state: who is alive, how many observations each needs, what was decided and why."""

    guarantee_kind = "none"
    simultaneous_mcb = False

    def __init__(self, k: int, cfg: Config):
        self.k = k
        self.cfg = cfg
        self.alive = np.ones(k, dtype=bool)
        self.need = np.full(k, cfg.n0, dtype=np.int64)
        self.done = False
        self.selected: int | None = None
        self.capped = False
        self.stage = 0
        self.history: list[dict[str, Any]] = []
        self.first_stage: np.ndarray | None = None

    # -- protocol ------------------------------------------------------------------------
    @abstractmethod
    def step(self, data: list[np.ndarray]) -> None:
        """Decide with the observations (``data[i]`` holds at least ``need[i]`` values of alive i)."""

    def drop(self, i: int, reason: str) -> None:
        """Take system ``i`` out of contention for a reason other than its observations (e.g. failures)."""
        if not self.alive[i]:
            return
        self.alive[i] = False
        self.history.append({"stage": self.stage, "observations": None, "eliminated": [i], "reason": reason})
        if self.alive.sum() <= 1:
            self._finish(None)

    def possibly_best(self) -> list[int]:
        """Systems still in contention (the subset that may contain the best)."""
        return [int(i) for i in np.flatnonzero(self.alive)]

    # -- helpers -------------------------------------------------------------------------
    def _means(self, data: list[np.ndarray], upto: np.ndarray | int) -> np.ndarray:
        n = np.broadcast_to(np.asarray(upto), (self.k,))
        return np.array([float(np.mean(d[: n[i]])) if min(n[i], d.size) > 0 else np.nan for i, d in enumerate(data)])

    def _first(self, data: list[np.ndarray]) -> np.ndarray:
        n0 = self.cfg.n0
        obs = np.stack([d[:n0] if len(d) >= n0 else np.full(n0, np.nan) for d in data], axis=1)
        self.first_stage = obs
        return obs

    def _apply(self, keep: np.ndarray, observations: int, reason: str) -> None:
        gone = np.flatnonzero(self.alive & ~keep)
        if gone.size:
            self.history.append(
                {"stage": self.stage, "observations": observations, "eliminated": gone.tolist(), "reason": reason}
            )
        self.alive &= keep

    def _finished_after_look(self, means: np.ndarray, observations: int) -> bool:
        """Sequential procedures end when one scenario is left or the observation cap is reached."""
        if self.alive.sum() <= 1:
            self._finish(means)
            return True
        if observations >= self.cfg.max_observations:
            self.capped = True
            self._finish(means)
            return True
        return False

    def _finish(self, means: np.ndarray | None) -> None:
        self.done = True
        live = np.flatnonzero(self.alive)
        if live.size == 0:
            self.selected = None
        elif live.size == 1 or means is None:
            self.selected = int(live[0]) if live.size == 1 else None
        else:
            self.selected = int(live[np.argmin(means[live])])


class KN(Machine):
    """Kim & Nelson (2001) fully sequential selection with paired first-stage variances."""

    guarantee_kind = "iz"

    def __init__(self, k: int, cfg: Config):
        super().__init__(k, cfg)
        self.h2 = constants.kn_h2(k, cfg.alpha, cfg.n0)
        self.s2: np.ndarray | None = None
        self.last = 0.0
        self.r = 0

    def step(self, data: list[np.ndarray]) -> None:
        cfg = self.cfg
        if self.s2 is None:
            self.r = cfg.n0
            live = self.alive.copy()
            obs = self._first(data)
            self.s2 = procedures.paired_variances(np.where(np.isnan(obs), 0.0, obs))
            self.last = float(procedures.kn_last_stage(self.s2, live, self.h2, cfg.delta))
        means = self._means(data, self.r)
        keep = procedures.kn_keep(np.nan_to_num(means), self.r, self.s2, self.alive, self.h2, cfg.delta)
        self._apply(keep, self.r, "KN screening")
        if self.alive.sum() > 1 and self.r >= self.last:
            best = np.flatnonzero(self.alive)[np.argmin(means[self.alive])]
            self._apply(np.arange(self.k) == best, self.r, "KN last stage: continuation region empty")
        self.stage += 1
        if not self._finished_after_look(means, self.r):
            # never step past the apex of the continuation region: the guarantee is for a look there
            self.r = min(self.r + cfg.increment, cfg.max_observations, max(int(self.last), self.r + 1))
            self.need = np.where(self.alive, self.r, self.need)


class IZFree(Machine):
    """Indifference-zone-free sequential elimination (Fan, Hong & Nelson 2016 style boundary with the
    constant from Robbins' crossing probability); paired variances re-estimated at every stage."""

    guarantee_kind = "izfree"

    def __init__(self, k: int, cfg: Config):
        super().__init__(k, cfg)
        self.c = constants.izf_c(k, cfg.alpha)
        self.r = cfg.n0
        self.seen = 0
        self.sums = np.zeros(k)
        self.cross = np.zeros((k, k))

    def step(self, data: list[np.ndarray]) -> None:
        cfg = self.cfg
        if self.stage == 0:
            self._first(data)
        live = self.alive.copy()
        new = np.zeros((self.r - self.seen, self.k))
        for i in np.flatnonzero(live):
            new[:, i] = data[i][self.seen : self.r]
        self.sums += new.sum(axis=0)
        self.cross += new.T @ new
        self.seen = self.r
        s2 = procedures.paired_variances_from_moments(self.r, self.sums, self.cross)
        means = np.where(live, self.sums / self.r, 0.0)
        keep = procedures.izf_keep(means, self.r, s2, live, self.c)
        self._apply(keep, self.r, "IZ-free boundary crossed")
        self.stage += 1
        if not self._finished_after_look(means, self.r):
            self.r = min(self.r + cfg.increment, cfg.max_observations)
            self.need = np.where(self.alive, self.r, self.need)


class Rinott(Machine):
    """Rinott (1978) two-stage selection; with ``screen`` it is NSGS (Nelson et al. 2001)."""

    guarantee_kind = "iz"
    simultaneous_mcb = True
    screen = False

    def __init__(self, k: int, cfg: Config):
        super().__init__(k, cfg)
        pcs = 1.0 - (cfg.alpha / 2.0 if self.screen else cfg.alpha)
        self.h = constants.rinott_h(k, pcs, cfg.n0 - 1)

    def step(self, data: list[np.ndarray]) -> None:
        cfg = self.cfg
        if self.stage == 0:
            obs = self._first(data)
            if self.screen:
                keep = _screen(obs, self.alive, cfg.alpha / 2.0, cfg.delta, cfg.paired)
                self._apply(keep, cfg.n0, "NSGS first-stage screen")
            var = procedures.variances(np.where(np.isnan(obs), 0.0, obs))
            sizes = procedures.rinott_sizes(var, cfg.n0, self.h, cfg.delta)
            capped = sizes > cfg.max_observations
            self.capped = bool(np.any(capped & self.alive))
            self.need = np.where(self.alive, np.minimum(sizes, cfg.max_observations), self.need)
            self.stage = 1
            if self.alive.sum() <= 1:
                self._finish(self._means(data, cfg.n0))
            return
        means = self._means(data, self.need)
        self.stage = 2
        self._finish(means)


class NSGS(Rinott):
    """Nelson, Swann, Goldsman & Song (2001): subset screen at alpha/2, then Rinott at alpha/2."""

    screen = True


class Subset(Machine):
    """Subset selection on its own: one screen of the first stage; the best survives w.p. >= 1 - alpha."""

    guarantee_kind = "subset"
    simultaneous_mcb = False

    def step(self, data: list[np.ndarray]) -> None:
        obs = self._first(data)
        keep = _screen(obs, self.alive, self.cfg.alpha, self.cfg.delta, self.cfg.paired)
        self._apply(keep, self.cfg.n0, "subset screen")
        self.stage = 1
        self._finish(self._means(data, self.cfg.n0))


class OCBA(Machine):
    """Optimal computing budget allocation (Chen et al. 2000) of a fixed total of observations."""

    def __init__(self, k: int, cfg: Config):
        super().__init__(k, cfg)
        self.need = np.full(k, cfg.ocba_n0, dtype=np.int64)

    def step(self, data: list[np.ndarray]) -> None:
        cfg = self.cfg
        if self.stage == 0:
            self._first(data)
        self.stage += 1
        means = self._means(data, self.need)
        var = np.array(
            [np.var(d[:n], ddof=1) if a and n > 1 else 0.0 for d, n, a in zip(data, self.need, self.alive, strict=True)]
        )
        used = int(self.need[self.alive].sum())
        if used >= cfg.budget:
            self._finish(means)
            return
        add = min(cfg.ocba_step, cfg.budget - used)
        ratios = procedures.ocba_ratios(np.nan_to_num(means), var, self.alive)
        inc = procedures.ocba_increments(ratios, np.where(self.alive, self.need, 0), add)
        self.need = self.need + np.where(self.alive, inc, 0)


def _screen(obs: np.ndarray, alive: np.ndarray, alpha: float, delta: float, paired: bool) -> np.ndarray:
    """The subset screen on first-stage ``obs[n0, k]`` among ``alive`` systems."""
    n0, k = obs.shape
    clean = np.where(np.isnan(obs), 0.0, obs)
    t = constants.screening_t(k, alpha, n0 - 1, paired=paired)
    spread = procedures.paired_variances(clean) if paired else procedures.variances(clean)
    return procedures.screen_keep(clean.mean(axis=0), spread, n0, t, delta, alive)


MACHINES: dict[str, type[Machine]] = {
    "kn": KN,
    "izfree": IZFree,
    "rinott": Rinott,
    "nsgs": NSGS,
    "subset": Subset,
    "ocba": OCBA,
}
