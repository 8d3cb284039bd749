"""GP surrogates of one configuration share their compiled graphs, never their state."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from fmio_bayes.surrogate import GPSurrogate

pytestmark = pytest.mark.tf  # GPflow / TensorFlow models

WIDTH = 4  # a width no other test uses, so the tracing counts below start from zero


def _data(seed: int, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = rng.random((n, WIDTH))
    return Z, np.sin(5 * Z[:, 0] + seed) + Z[:, 1] * Z[:, 2] - 0.3 * Z[:, 3]


def _fitted(seed: int, noise: str = "learned") -> GPSurrogate:
    s = GPSurrogate(WIDTH, noise)  # type: ignore[arg-type]
    s.set_data(*_data(seed))
    s.fit()
    return s


def _state(s: GPSurrogate, Zq: np.ndarray) -> tuple[np.ndarray, ...]:
    mean, var = s.predict_std(Zq)
    return mean, var, s.lengthscales, np.array([s.signal_variance, s.noise_variance, s.mean_constant])


def test_a_second_surrogate_of_the_same_configuration_traces_nothing_and_changes_nothing() -> None:
    Zq = np.random.default_rng(9).random((7, WIDTH))
    a = _fitted(1)
    before = _state(a, Zq)
    b = _fitted(2)  # another output (a constraint, the next study): other data, other hyperparameters
    b.fantasize(Zq[:2])
    state_b = _state(b, Zq)
    assert not np.allclose(state_b[0], before[0])
    # a's answers are its own, bit for bit, whatever b did to the shared variables in between
    for x, y in zip(_state(a, Zq), before, strict=True):
        np.testing.assert_array_equal(x, y)
    # and a new surrogate on a's data fits to exactly what a did: nothing of b's state leaked into it
    for x, y in zip(_state(_fitted(1), Zq), before, strict=True):
        np.testing.assert_array_equal(x, y)
    b.restore()
    # the numpy posterior the acquisition uses is a's own too
    post = a.posterior()
    assert post.X.shape == (20, WIDTH)
    prog = a._prog  # noqa: SLF001 - the shared program is the point of this test
    assert prog is b._prog  # noqa: SLF001
    assert prog.loss_and_grad.experimental_get_tracing_count() == 1
    assert prog.predict.experimental_get_tracing_count() == 1
    assert prog.refresh.experimental_get_tracing_count() == 1


def test_surrogates_used_from_two_threads_give_what_they_give_alone() -> None:
    Zq = np.random.default_rng(4).random((5, WIDTH))
    alone = {seed: _state(_fitted(seed, "fixed"), Zq) for seed in (5, 6)}
    got: dict[int, tuple[np.ndarray, ...]] = {}

    def work(seed: int) -> None:
        s = _fitted(seed, "fixed")
        for _ in range(3):
            s.fantasize(Zq[:1])
            s.restore()
        got[seed] = _state(s, Zq)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (5, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (5, 6):
        for x, y in zip(got[seed], alone[seed], strict=True):
            np.testing.assert_array_equal(x, y)


def test_a_factorization_filled_with_nan_raises_the_noise_instead_of_becoming_the_posterior(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """TensorFlow 2.21's CPU Cholesky does not raise on a matrix that is not positive definite: it fills the
    factor with NaN. Two such factorizations in a row must cost two tenfold noise raises, not a NaN model."""
    caplog.set_level(logging.WARNING, logger="fmio_bayes")  # whatever an earlier test set it to
    s = GPSurrogate(WIDTH, "fixed")
    prog = s._prog  # noqa: SLF001 - the factorization is the program's
    real, failures = prog.refresh, [2]

    def refresh_failing_twice():
        out = real()
        if failures[0]:
            failures[0] -= 1
            prog.Linv.assign(np.full(prog.Linv.numpy().shape, np.nan))
        return out

    monkeypatch.setattr(prog, "refresh", refresh_failing_twice)
    s.set_data(*_data(11))
    mean, var = s.predict_std(np.random.default_rng(2).random((3, WIDTH)))
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(var))
    assert np.all(np.isfinite(s.posterior().Linv))
    assert s.noise_variance == pytest.approx(1e-4)  # 1e-6 raised twice
    assert sum("raising the noise variance" in r.getMessage() for r in caplog.records) == 2
    failures[0] = 99  # never factorizes: a clear error, not a NaN posterior
    with pytest.raises(FloatingPointError, match="not positive definite"):
        s.set_data(*_data(12))


def test_a_rejected_update_leaves_both_surrogates_as_they_were() -> None:
    Zq = np.random.default_rng(5).random((4, WIDTH))
    a, b = _fitted(21), _fitted(22)
    state_a, state_b = _state(a, Zq), _state(b, Zq)
    Z, y = _data(23)
    with pytest.raises(ValueError):
        a.set_data(Z[:, :-1], y)  # one column short: refused by the shared variables
    for got, want in ((_state(b, Zq), state_b), (_state(a, Zq), state_a), (_state(b, Zq), state_b)):
        for x, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, w)
