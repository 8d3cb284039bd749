"""The ``bayes`` method's report section (hook ``fmio_report_sections``): the surrogate's leave-one-out check,
so a mismatched model shows before anyone trusts its proposals — standardized LOO errors per iteration, and
for the last model predicted against observed values and the error histogram against N(0, 1)."""

from __future__ import annotations

import html
import math
from typing import Any

from fmi_optimizer.reporting import figure_html, pyplot

OUTSIDE = 3.0  # |standardized error| beyond this is a point the model did not expect


def report_sections(result: dict[str, Any]) -> list[str]:
    diag = result.get("diagnostics") or {}
    loo = diag.get("loo") or {}
    # the main model's iterations only: a study stored before the basin escape was removed may also hold those
    # of its second GP, fitted on part of the data
    its = [it for it in diag.get("iterations", []) if "loo_std" in it and it.get("model", "main") == "main"]
    if not loo and not its:
        return []
    title, how = (("leave-one-out", "by the GP fitted without it") if loo.get("kind", "leave-one-out") == "leave-one-out"
                  else ("out-of-fold holdout", "by the one ensemble member trained without it"))
    out = [f"<h2>Surrogate check ({title})</h2>",
           f"<p class=muted>Each training point predicted {how}. Standardized errors "
           "(observed - predicted) / sd should look like N(0, 1): a spread well above 1 or many points beyond "
           f"±{OUTSIDE:g} mean the model is overconfident or mismatched (rough response, wrong noise level); "
           "well below 1, underconfident. Values are the modelled series (standardized, after any warping).</p>"]
    errors = [float(e) for e in loo.get("standardized_error", []) if math.isfinite(e)]
    if errors:
        beyond = sum(abs(e) > OUTSIDE for e in errors)
        spread = math.sqrt(sum(e * e for e in errors) / len(errors))
        verdict = loo_verdict(spread, beyond, len(errors))
        out.append(f"<p>Last model: {len(errors)} points, RMS standardized error {spread:.2f}, {beyond} beyond "
                   f"±{OUTSIDE:g}: {verdict}.</p>")
    out.append(_figure(loo, its))
    return out


def loo_verdict(spread: float, beyond: int, n: int) -> str:
    """One line on the standardized leave-one-out errors (RMS ``spread``, ``beyond`` of ``n`` outside ±3).

    Overconfidence (spread above 2, or more than 1 in 20 points beyond ±3) is the failure that misleads a search:
    the model is sure where it is wrong. Underconfidence (spread below 0.5) is what a search that has clustered
    its points leaves behind, whether it converged or is stuck in a local basin (measured on converged and trapped
    runs alike: benchmarks/bayes_surrogate_check.py, docs/bench/bayes.md), so it is reported, not flagged."""
    if spread > 2.0 or beyond > max(1, n // 20):
        return "<b class=bad>suspect: the model is overconfident; check it before trusting its proposals</b>"
    if spread < 0.5:
        return ("underconfident: its error bars are wider than its errors, as when the search has clustered its "
                "points around one basin (converged or trapped: this check cannot tell which)")
    return "consistent with N(0, 1)"


def _figure(loo: dict[str, Any], its: list[dict[str, Any]]) -> str:
    plt = pyplot()
    panels = (1 if its else 0) + (2 if loo.get("observed") else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), squeeze=False)
    ax_iter = iter(axes[0])
    if its:
        ax = next(ax_iter)
        x = [it.get("n_data", i) for i, it in enumerate(its)]
        # the RMS (bias included), the spread the verdict above the figure judges
        ax.plot(x, [math.hypot(it.get("loo_mean", 0.0), it["loo_std"]) for it in its], "o-", ms=3,
                label="RMS standardized error")
        ax.plot(x, [it.get("loo_fraction_above_3", 0.0) * 10 for it in its], "s--", ms=3,
                label=f"share beyond ±{OUTSIDE:g} (x10)")
        ax.axhline(1.0, color="#888", lw=0.8)
        ax.set_xlabel("training points" if "n_data" in its[0] else "iteration")
        ax.set_title("LOO per iteration", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if loo.get("observed"):
        obs, mean, sd = loo["observed"], loo["predicted"], loo["predicted_sd"]
        ax = next(ax_iter)
        ax.errorbar(obs, mean, yerr=[2 * s for s in sd], fmt="o", ms=3, lw=0.7, alpha=0.8)
        lo, hi = min(obs + mean), max(obs + mean)
        ax.plot([lo, hi], [lo, hi], color="#888", lw=0.8)
        ax.set_xlabel("observed")
        ax.set_ylabel("LOO predicted ± 2 sd")
        ax.set_title("last model", fontsize=9)
        ax.grid(alpha=0.3)
        ax = next(ax_iter)
        errors = [e for e in loo["standardized_error"] if math.isfinite(e)]
        ax.hist(errors, bins=max(5, min(30, len(errors) // 2)), density=True, color="#9ecae1")
        grid = [-4 + 8 * i / 100 for i in range(101)]
        ax.plot(grid, [math.exp(-g * g / 2) / math.sqrt(2 * math.pi) for g in grid], color="#d62728", label="N(0, 1)")
        ax.set_xlabel("standardized LOO error")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_html(fig, html.escape("leave-one-out check of the surrogate"))
