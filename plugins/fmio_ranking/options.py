"""The ``ranking`` method's options (a frozen dataclass; the host rejects unknown keys)."""

from __future__ import annotations

from dataclasses import dataclass

PROCEDURES = ("kn", "nsgs", "rinott", "subset", "ocba", "izfree")

#: procedures whose guarantee is stated for a given indifference zone delta
NEEDS_DELTA = frozenset({"kn", "nsgs", "rinott"})
#: procedures that assume independent sampling across scenarios (no common random numbers)
INDEPENDENT = frozenset({"rinott", "nsgs"})


@dataclass(frozen=True)
class RankingOptions:
    """Options of the ``ranking`` method.

    ``indifference_zone`` (delta, in KPI units) is the smallest difference worth detecting: required
    for kn, nsgs and rinott; optional for subset (0 = no delta) and unused by izfree and ocba.
    ``n0`` is the first-stage size in observations; an observation is the mean of ``batch``
    replications (batching makes non-normal outputs closer to normal).  ``increment`` observations
    per surviving scenario make one stage of the sequential procedures (kn, izfree): raise it so a
    stage keeps all workers busy.  ``budget`` is OCBA's total of observations; ``ocba_n0`` its
    first-stage size (default: a quarter of the budget spread evenly, at least n0) and ``ocba_step``
    the observations per OCBA round (default: number of scenarios x increment).  ``validation``
    fresh replications of the winner confirm its mean.  ``crn`` shares replication seeds across
    scenarios (default: on, except for rinott/nsgs whose guarantee needs independent sampling).
    A failed replication is re-asked ``retries`` times with a fresh seed; after that the scenario
    is dropped from contention (and reported).  Without ``procedure``, KN runs when
    ``indifference_zone`` is given and the indifference-zone-free procedure otherwise.
    """

    procedure: str | None = None
    alpha: float = 0.05
    indifference_zone: float | None = None
    n0: int = 10
    batch: int = 1
    increment: int = 1
    budget: int | None = None
    ocba_n0: int | None = None
    ocba_step: int | None = None
    validation: int = 10
    crn: bool | None = None
    max_observations: int = 10_000
    retries: int = 1
    normality_level: float = 0.05

    def __post_init__(self) -> None:
        if self.procedure is None:  # default: KN when delta is known, else the IZ-free procedure
            object.__setattr__(self, "procedure", "kn" if self.indifference_zone else "izfree")
        if self.procedure not in PROCEDURES:
            raise ValueError(f"procedure = {self.procedure!r} is unknown; accepted: {list(PROCEDURES)}")
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")
        if self.indifference_zone is not None and self.indifference_zone < 0:
            raise ValueError(f"indifference_zone must be >= 0, got {self.indifference_zone}")
        if self.procedure in NEEDS_DELTA and not self.indifference_zone:
            raise ValueError(
                f"procedure {self.procedure!r} needs indifference_zone > 0 (the smallest KPI difference that "
                "matters); or use procedure = 'izfree' or 'subset', which need none"
            )
        for name, low in (("n0", 2), ("batch", 1), ("increment", 1), ("validation", 0), ("max_observations", 2)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if not 0 <= self.retries <= 5:
            raise ValueError(f"retries must be in 0..5, got {self.retries}")
        if self.budget is not None and self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if self.ocba_n0 is not None and self.ocba_n0 < 2:
            raise ValueError(f"ocba_n0 must be >= 2, got {self.ocba_n0}")
        if self.ocba_step is not None and self.ocba_step < 1:
            raise ValueError(f"ocba_step must be >= 1, got {self.ocba_step}")

    @property
    def delta(self) -> float:
        return float(self.indifference_zone or 0.0)

    @property
    def common_random_numbers(self) -> bool:
        return self.crn if self.crn is not None else self.procedure not in INDEPENDENT
