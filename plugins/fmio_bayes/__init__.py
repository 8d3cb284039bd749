"""fmio_bayes plugin (in progress)."""
