"""An FMU on disk and one simulation of it: the archive, its variables, the twin, time series."""
