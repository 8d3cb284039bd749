"""Lazy, quiet import of TensorFlow and GPflow: only this plugin touches them, only when it runs.

The host imports every plugin's ``__init__`` to register methods, so nothing here may run at
import time of the package; :func:`load` is called at the first ask/tell that needs a surrogate.
"""

from __future__ import annotations

import logging
import os
import threading
from types import ModuleType

_lock = threading.Lock()
_modules: tuple[ModuleType, ModuleType, ModuleType] | None = None
log = logging.getLogger(__name__)


def load() -> tuple[ModuleType, ModuleType, ModuleType]:
    """Import and return ``(tensorflow, gpflow, tensorflow_probability)`` with start-up noise silenced.

    TensorFlow's C++ layer prints banners (oneDNN, CUDA, CPU features) on file descriptor 2
    before any Python logging applies, so the descriptor is pointed at /dev/null during the
    import and restored afterwards; errors still propagate as Python exceptions.
    """
    global _modules
    with _lock:
        if _modules is None:
            _modules = _quiet_import()
        return _modules


def _quiet_import() -> tuple[ModuleType, ModuleType, ModuleType]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        _single_thread(tf)  # before gpflow's import creates the eager context
        import gpflow
        import tensorflow_probability as tfp
        from check_shapes import set_enable_check_shapes
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel(logging.ERROR)
    set_enable_check_shapes(False)  # GPflow's shape checks triple the tracing time; our shapes are fixed
    return tf, gpflow, tfp


def _single_thread(tf: ModuleType) -> None:
    """Surrogates here are small (tens to hundreds of points): one thread avoids pool overhead
    and keeps the study's worker processes their cores. Only possible before TF's context starts."""
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError as exc:  # the context already exists (TF used elsewhere in this process)
        log.info("TensorFlow threads already configured: %s", exc)
