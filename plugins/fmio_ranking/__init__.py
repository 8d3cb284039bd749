"""fmio_ranking plugin (in progress)."""
