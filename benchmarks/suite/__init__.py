"""Benchmark suite with development and held-out instances for the bayes (continuous) and qio (discrete)
methods against their peers; run with ``python -m benchmarks.suite`` (see benchmarks/suite/run.py)."""
