"""A verified FMU with new start values: the proxy container, the .ssv file, atomic output files."""
