"""fmio_qio plugin (in progress)."""
