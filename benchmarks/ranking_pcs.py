"""PCS and cost of the ranking procedures on normal outputs, against the issue's reference figures.

Vectorized across macro-replications: each procedure's decisions are made by the plugin's own kernels
(``fmio_ranking.procedures`` and ``fmio_ranking.constants``) on thousands of independent selections at
once; observations are drawn as sufficient statistics where that is exact in distribution (Rinott's
second stage, OCBA's batches) and replication by replication for the sequential procedures.

Minimization: in the slippage configuration the best mean is 0 and the others delta; with
monotone means system i has mean i*delta (the issue's maximization configurations, mirrored).

    python benchmarks/ranking_pcs.py                 # 2000 macro-replications, every cell
    python benchmarks/ranking_pcs.py --macro 200     # quick run
    python benchmarks/ranking_pcs.py --procedures kn # only KN (independent and common random numbers)

For KN with common random numbers the table also shows what CRN cannot reduce: the first stage of n0
observations per system.  ``bound`` = n0·k / (independent total) is the smallest ratio any KN run with
that first stage could reach; ``seq`` = (CRN total − n0·k) / (independent total − n0·k) is the ratio on
the part after the first stage, the only part the paired variances act on; ``out@n0`` is the share of the
k − 1 inferior systems eliminated at the first look (r = n0, paired first-stage variances).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from fmio_ranking import constants, procedures

ALPHA = 0.05
N0 = 10
DELTA = 1.0 / math.sqrt(10.0)
KS = (10, 25, 100)

#: the issue's reference figures (PCS, mean total replications) measured with a separate implementation
REFERENCE: dict[tuple[str, str, int], tuple[float, float]] = {
    ("rinott", "slippage", 10): (0.97, 1850),
    ("rinott", "slippage", 25): (0.97, 6247),
    ("rinott", "slippage", 100): (0.97, 36201),
    ("kn", "slippage", 10): (0.97, 972),
    ("kn", "slippage", 25): (0.97, 2869),
    ("kn", "slippage", 100): (0.97, 13604),
    ("kn", "decreasing", 10): (0.995, 429),
    ("kn", "decreasing", 25): (0.995, 755),
    ("kn", "decreasing", 100): (0.995, 1846),
}


@dataclass
class Cell:
    procedure: str
    config: str
    k: int
    pcs: float
    pcs_se: float
    total: float
    total_se: float
    macro: int
    seconds: float
    note: str = ""
    first_out: float = math.nan  # share of the k-1 inferior systems eliminated at the first look (KN)


def means_of(config: str, k: int) -> np.ndarray:
    if config == "slippage":
        return np.r_[0.0, np.full(k - 1, DELTA)]
    return np.arange(k) * DELTA


def first_stage(rng: np.random.Generator, mu: np.ndarray, m: int, n: int, rho: float) -> np.ndarray:
    common = rng.standard_normal((m, n, 1))
    own = rng.standard_normal((m, n, mu.size))
    return np.asarray(mu + math.sqrt(rho) * common + math.sqrt(1.0 - rho) * own)


# -- sequential procedures (KN, IZ-free): replication by replication, survivors compacted ----------
CAP = 10_000  # the method's default max_observations: IZ-free never ends between tied systems
CAPPED = {"count": 0}
FIRST_OUT: list[np.ndarray] = []  # per macro-replication: share of the k-1 others out at the first look


def sequential(rng: np.random.Generator, mu: np.ndarray, m: int, rho: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Run ``m`` KN (``kind='kn'``) or IZ-free selections; returns (selected index, total replications).

    At ``CAP`` observations per system a selection stops with the best mean among its survivors (counted
    in ``CAPPED``), as the method does at ``max_observations``."""
    k = mu.size
    x = first_stage(rng, mu, m, N0, rho)
    sums = x.sum(axis=1)
    cross = np.einsum("mnk,mnl->mkl", x, x)
    s2 = procedures.paired_variances_from_moments(N0, sums, cross)
    idx = np.broadcast_to(np.arange(k), (m, k)).copy()
    alive = np.ones((m, k), dtype=bool)
    total = np.full(m, N0 * k, dtype=np.int64)
    chosen = np.full(m, -1)
    rows = np.arange(m)
    h2 = constants.kn_h2(k, ALPHA, N0)
    c = constants.izf_c(k, ALPHA)
    last = procedures.kn_last_stage(s2, alive, h2, DELTA) if kind == "kn" else None
    r = N0
    while rows.size:
        means = sums / r
        if kind == "kn":
            # the first look is at r = n0 with the paired first-stage variances (as the method's KN machine)
            alive = procedures.kn_keep(means, r, s2, alive, h2, DELTA)
            assert last is not None
            over = (r >= last) & (alive.sum(axis=1) > 1)
            if over.any():
                best = np.argmin(np.where(alive, means, np.inf), axis=1)
                alive[over] = np.arange(alive.shape[1])[None, :] == best[over, None]
            if r == N0:
                FIRST_OUT.append((k - alive.sum(axis=1)) / (k - 1))
        else:
            s2 = procedures.paired_variances_from_moments(r, sums, cross)
            alive = procedures.izf_keep(means, r, s2, alive, c)
            if r >= CAP:
                CAPPED["count"] += int(np.sum(alive.sum(axis=1) > 1))
                best = np.argmin(np.where(alive, means, np.inf), axis=1)
                alive = np.arange(alive.shape[1])[None, :] == best[:, None]
        done = alive.sum(axis=1) <= 1
        if done.any():
            pick = np.argmax(alive[done], axis=1)
            chosen[rows[done]] = idx[done, pick]
            keep = ~done
            rows, sums, alive, idx = rows[keep], sums[keep], alive[keep], idx[keep]
            s2, cross = s2[keep], cross[keep]
            if last is not None:
                last = last[keep]
        if not rows.size:
            break
        width = int(alive.sum(axis=1).max())
        if width <= alive.shape[1] // 2:  # compact: survivors first, drop the dead columns
            order = np.argsort(~alive, axis=1, kind="stable")[:, :width]
            sums = np.take_along_axis(sums, order, 1)
            alive = np.take_along_axis(alive, order, 1)
            idx = np.take_along_axis(idx, order, 1)
            s2 = np.take_along_axis(np.take_along_axis(s2, order[:, :, None], 1), order[:, None, :], 2)
            cross = np.take_along_axis(np.take_along_axis(cross, order[:, :, None], 1), order[:, None, :], 2)
        r += 1
        common = rng.standard_normal((rows.size, 1))
        new = mu[idx] + math.sqrt(rho) * common + math.sqrt(1.0 - rho) * rng.standard_normal(idx.shape)
        new = np.where(alive, new, 0.0)
        sums = sums + new
        if kind != "kn":
            cross = cross + new[:, :, None] * new[:, None, :]
        total[rows] += alive.sum(axis=1)
    return chosen, total


# -- two-stage procedures (Rinott, NSGS) -------------------------------------------------------------
def two_stage(rng: np.random.Generator, mu: np.ndarray, m: int, screen: bool) -> tuple[np.ndarray, np.ndarray]:
    k = mu.size
    x = first_stage(rng, mu, m, N0, 0.0)
    var = procedures.variances(x)
    first_sum = x.sum(axis=1)
    alive = np.ones((m, k), dtype=bool)
    if screen:
        t = constants.screening_t(k, ALPHA / 2, N0 - 1)
        alive = procedures.screen_keep(first_sum / N0, var, N0, t, DELTA, alive)
    h = constants.rinott_h(k, 1 - (ALPHA / 2 if screen else ALPHA), N0 - 1)
    size = procedures.rinott_sizes(var, N0, h, DELTA)
    extra = np.where(alive, size - N0, 0)
    extra_sum = extra * mu + np.sqrt(extra) * rng.standard_normal((m, k))
    means = np.where(alive, (first_sum + extra_sum) / np.where(alive, size, N0), np.inf)
    return np.argmin(means, axis=1), N0 * k + extra.sum(axis=1)


# -- OCBA at a fixed budget: batches as exact sufficient statistics ---------------------------------
def ocba(rng: np.random.Generator, mu: np.ndarray, m: int, budget: int, n0: int) -> tuple[np.ndarray, np.ndarray]:
    k = mu.size
    x = first_stage(rng, mu, m, n0, 0.0)
    n = np.full((m, k), n0, dtype=np.int64)
    mean = x.mean(axis=1)
    m2 = ((x - mean[:, None, :]) ** 2).sum(axis=1)
    alive = np.ones((m, k), dtype=bool)
    used = n0 * k
    while used < budget:
        add = min(k, budget - used)
        ratios = procedures.ocba_ratios(mean, m2 / (n - 1), alive)
        inc = procedures.ocba_increments(ratios, n, add)
        got = inc > 0
        safe = np.maximum(inc, 1)
        b_mean = mu + rng.standard_normal((m, k)) / np.sqrt(safe)
        b_m2 = rng.chisquare(np.maximum(safe - 1, 1), (m, k)) * (safe > 1)
        tot = n + inc
        d = b_mean - mean
        mean = np.where(got, mean + d * inc / tot, mean)
        m2 = np.where(got, m2 + b_m2 + d * d * n * inc / tot, m2)
        n = tot
        used += add
    return np.argmin(mean, axis=1), n.sum(axis=1)


Runner = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def seq_run(mu: np.ndarray, rho: float, kind: str) -> Runner:
    return lambda g, mm: sequential(g, mu, mm, rho, kind)


def two_run(mu: np.ndarray, screen: bool) -> Runner:
    return lambda g, mm: two_stage(g, mu, mm, screen)


def ocba_run(mu: np.ndarray, budget: int, n0: int) -> Runner:
    return lambda g, mm: ocba(g, mu, mm, budget, n0)


def measure(name: str, config: str, k: int, macro: int, run: Runner, seed: int, note: str = "") -> Cell:
    rng = np.random.default_rng(seed)
    chunk = max(50, 20000 // k)
    sel, tot = [], []
    t0 = time.perf_counter()
    FIRST_OUT.clear()
    for start in range(0, macro, chunk):
        s, t = run(rng, min(chunk, macro - start))
        sel.append(s)
        tot.append(t)
    s_all, t_all = np.concatenate(sel), np.concatenate(tot).astype(float)
    pcs = float(np.mean(s_all == 0))
    first_out = float(np.concatenate(FIRST_OUT).mean()) if FIRST_OUT else math.nan
    return Cell(
        name, config, k, pcs, math.sqrt(pcs * (1 - pcs) / macro), float(t_all.mean()),
        float(t_all.std(ddof=1) / math.sqrt(macro)), macro, time.perf_counter() - t0, note, first_out,
    )


PROCEDURES = ("kn", "rinott", "nsgs", "ocba", "izfree")


def run_all(macro: int, ks: tuple[int, ...], seed: int, izf_macro: int,
            which: tuple[str, ...] = PROCEDURES) -> list[Cell]:
    cells: list[Cell] = []
    for k in ks:
        for config in ("slippage", "decreasing"):
            mu = means_of(config, k)
            s = seed + 1000 * k + (0 if config == "slippage" else 500)
            if "kn" in which:
                cells.append(measure("kn", config, k, macro, seq_run(mu, 0.0, "kn"), s + 1))
                cells.append(measure("kn", config, k, macro, seq_run(mu, 0.5, "kn"), s + 2, "crn rho=0.5"))
            if {"rinott", "ocba"} & set(which):  # OCBA runs at Rinott's budget
                rin = measure("rinott", config, k, macro, two_run(mu, False), s + 3)
                cells.append(rin)
            if "nsgs" in which:
                cells.append(measure("nsgs", config, k, macro, two_run(mu, True), s + 4))
            if "ocba" in which:
                budget = int(round(rin.total))
                auto = max(N0, budget // (4 * k))  # the method's default ocba_n0
                for n0, label in ((N0, "n0=10"), (auto, f"n0={auto} (default)")):
                    cells.append(measure("ocba", config, k, macro, ocba_run(mu, budget, n0), s + 5 + n0,
                                         f"budget={budget} (Rinott's), {label}"))
            if "izfree" in which:
                CAPPED["count"] = 0
                izf = measure("izfree", config, k, izf_macro, seq_run(mu, 0.0, "izf"), s + 9)
                izf.note = f"no delta; {CAPPED['count']} stopped at the {CAP} cap"
                cells.append(izf)
            print(f"  k={k} {config}: done", file=sys.stderr, flush=True)
    return cells


def crn_notes(cells: list[Cell]) -> None:
    """Add to each KN CRN cell what the first stage allows: the bound n0*k/independent and the ratio on the
    sequential part; add the first-look elimination share to both KN cells."""
    by = {(c.procedure, c.config, c.k, c.note): c for c in cells}
    for c in cells:
        if c.procedure == "kn":
            c.note = (c.note + "; " if c.note else "") + f"out@n0 {c.first_out:.2f}"
        ind = by.get(("kn", c.config, c.k, ""))
        if c.procedure == "kn" and c.note.startswith("crn") and ind is not None:
            first = N0 * c.k
            c.note += (f"; bound {first / ind.total:.3f}; seq {(c.total - first) / (ind.total - first):.3f}")


def table(cells: list[Cell]) -> str:
    head = "| procedure | config | k | PCS (±se) | mean total (±se) | ref PCS | ref total | total/ref | note | s |"
    lines = [head, "|" + "---|" * 10]
    for c in cells:
        ref = REFERENCE.get((c.procedure, c.config, c.k)) if not c.note.startswith("crn") else None
        rp, rt = (f"{ref[0]:g}", f"{ref[1]:g}") if ref else ("", "")
        ratio = f"{c.total / ref[1]:.3f}" if ref else ""
        lines.append(
            f"| {c.procedure} | {c.config} | {c.k} | {c.pcs:.4f} ({c.pcs_se:.4f}) | {c.total:.0f} ({c.total_se:.0f}) "
            f"| {rp} | {rt} | {ratio} | {c.note} | {c.seconds:.1f} |"
        )
    return "\n".join(lines)


def _kn_key(c: Cell) -> str:
    """The note a cell is looked up by (KN notes carry measured extras after the sampling mode)."""
    if c.procedure != "kn":
        return c.note
    return "crn rho=0.5" if c.note.startswith("crn") else ""


def checks(cells: list[Cell]) -> list[str]:
    """The issue's targets, each reported as met or missed."""
    out = []
    by = {(c.procedure, c.config, c.k, _kn_key(c)): c for c in cells}
    for c in cells:
        if c.procedure in ("kn", "nsgs", "rinott"):
            out.append(f"{'MET ' if c.pcs >= 0.95 else 'MISS'} PCS >= 0.95: {c.procedure} {c.config} k={c.k} "
                       f"{_kn_key(c)} -> {c.pcs:.4f}")
    for (p, cfg, k), (_, ref_total) in REFERENCE.items():
        kn = by.get(("kn", cfg, k, ""))
        if p == "kn" and kn is not None:
            ratio = kn.total / ref_total
            out.append(f"{'MET ' if ratio <= 1.05 else 'MISS'} KN total within 5% (or lower): {cfg} k={k} -> ratio {ratio:.3f}")
    for cfg in ("slippage", "decreasing"):
        for k in {c.k for c in cells}:
            ind, crn = by.get(("kn", cfg, k, "")), by.get(("kn", cfg, k, "crn rho=0.5"))
            if ind and crn:
                ratio = crn.total / ind.total
                bound = N0 * k / ind.total  # the first stage, which CRN cannot reduce
                seq = (crn.total - N0 * k) / (ind.total - N0 * k)
                need = (0.55 - bound) / (1.0 - bound)  # the sequential-part ratio the target asks for
                out.append(f"{'MET ' if ratio <= 0.55 else 'MISS'} KN CRN(0.5)/independent <= 0.55: {cfg} k={k} -> "
                           f"{ratio:.3f} (first-stage bound {bound:.3f}; after the first stage CRN/independent "
                           f"{seq:.3f}, the target needs <= {need:.3f})")
    for c in cells:
        if c.procedure == "ocba" and c.config == "slippage":
            out.append(f"{'MET ' if c.pcs >= 0.97 else 'MISS'} OCBA PCS >= 0.97 at Rinott's budget: k={c.k} {c.note} -> {c.pcs:.4f}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--macro", type=int, default=2000, help="macro-replications per cell (default 2000)")
    ap.add_argument("--k", type=int, nargs="*", default=list(KS), help="numbers of systems (default 10 25 100)")
    ap.add_argument("--izf-macro", type=int, default=0, help="macro-replications for IZ-free (default: --macro)")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--json", type=str, default="", help="also write the cells to this JSON file")
    ap.add_argument("--procedures", nargs="*", choices=PROCEDURES, default=list(PROCEDURES),
                    help="procedures to run (default: all)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    cells = run_all(a.macro, tuple(a.k), a.seed, a.izf_macro or a.macro, tuple(a.procedures))
    crn_notes(cells)
    print(table(cells))
    print()
    print("\n".join(checks(cells)))
    print(f"\n{a.macro} macro-replications per cell ({a.izf_macro or a.macro} for izfree), "
          f"{time.perf_counter() - t0:.0f} s wall")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([c.__dict__ for c in cells], f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
