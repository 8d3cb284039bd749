"""A bound study: the study file, the problem, the ask/evaluate/tell loop, storage, Pareto fronts."""
