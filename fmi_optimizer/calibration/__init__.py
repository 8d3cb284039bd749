"""Calibration of a twin to measured data: fidelity metrics, loss, identifiability, drift check, history.

Kept light on import: the study-file parser imports :mod:`.settings`; the rest is imported on use.
"""
