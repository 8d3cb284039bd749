"""A deep-ensemble surrogate (Lakshminarayanan et al. 2017) for data sets where the GP's O(n^3) bites.

``M`` small MLPs (two hidden SiLU layers), each with a mean and a variance head, are trained on the
Gaussian negative log-likelihood from different seeded random initializations; the prediction is
the mixture: mean of the means, variance = mean of (variance + mean^2) - mean^2, so disagreement
between members (epistemic) adds to their predicted noise (aleatoric). The members are stacked
along a leading axis (weights ``[M, ...]``, batched mat-muls), so one TensorFlow call trains or
evaluates all of them, and the data live in ``tf.Variable``s of shape ``[None, width]`` as in
:class:`~fmio_bayes.surrogate.GPSurrogate`: training, prediction and the acquisition are traced
once per study however the data grow.

Differences from the GP that callers must know:

- *Holdout, not leave-one-out.* Point ``i`` is withheld from member ``i mod M`` (an M-fold split
  built into the ensemble, so it costs nothing extra); :meth:`loo` returns that member's prediction,
  an honest out-of-fold check but of one network, not of the whole ensemble (``loo_kind``).
- *Kriging believer without retraining.* Fine-tuning the members on a believed point barely moves
  their disagreement there (measured), so :meth:`fantasize` keeps the mean (a believed observation
  equals it) and conditions the variance on the believed points with a Matern-5/2 correlation at
  the equivalent lengthscales below, as a GP's posterior variance would shrink.
- *Randomized priors.* Each member's mean adds a fixed random network (Osband et al. 2018), so
  members disagree away from the data instead of all extrapolating the same smooth trend.
- *Equivalent lengthscales.* A network has none; :attr:`lengthscales` are derived from the RMS
  gradient of the predicted mean over the data, ``sqrt(5/3) / rms(d mu / d z_j)`` (what a
  Matern-5/2 GP with unit variance and lengthscale ``l`` has), used to precondition the
  acquisition search and for ARD screening.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from ._tf import load
from .surrogate import StandardizedOutputs

FRESH_STEPS = 1500  # Adam steps from a random start
WARM_STEPS = 300  # steps continuing from the previous fit's weights
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4  # L2 on the trained weights (not biases), per member
BATCH = 128  # points per member and step (all points when there are fewer): a step's cost does not grow with n
BETA_NLL = 0.5  # Seitzer et al. 2022: NLL weighted by stop_gradient(var^beta), so the mean still learns
MIN_VARIANCE = {"fixed": 1e-4, "learned": 1e-3}  # floor of the variance head, standardized units
PRIOR_SCALE = 1.0  # randomized prior functions (Osband et al. 2018): fixed random net added to each mean


class Surrogate(Protocol):
    """What the engine and the acquisition use of a surrogate (GP or ensemble)."""

    width: int
    y_mean: float
    y_std: float
    loo_kind: str

    def set_data(self, Z: np.ndarray, y: np.ndarray) -> None: ...
    def fit(self, fresh_start: bool = True) -> float: ...
    def posterior(self) -> Any: ...
    def predict_std(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def fantasize(self, Z: np.ndarray) -> None: ...
    def restore(self) -> None: ...
    def loo(self) -> tuple[np.ndarray, np.ndarray]: ...
    def loo_standardized_errors(self) -> np.ndarray: ...

    @property
    def n(self) -> int: ...
    @property
    def lengthscales(self) -> np.ndarray: ...
    @property
    def noise_variance(self) -> float: ...
    @property
    def signal_variance(self) -> float: ...


class EnsembleSurrogate(StandardizedOutputs):
    """One output modelled by ``members`` MLPs with mean and variance heads; outputs standardized."""

    loo_kind = "out-of-fold holdout (each point predicted by the one ensemble member not trained on it)"

    def __init__(self, width: int, noise: str, members: int = 5, hidden: int = 64, seed: int = 0,
                 standardize: bool = True, prior_scale: float = PRIOR_SCALE):
        if members < 2 or hidden < 1:
            raise ValueError(f"an ensemble needs >= 2 members and >= 1 hidden unit, got {members}, {hidden}")
        tf, _, _ = load()
        self.tf = tf
        self.width = width
        self.members = members
        self.hidden = hidden
        self.noise_mode = noise
        self.standardize = standardize
        self.prior_scale = prior_scale
        self.min_variance = MIN_VARIANCE.get(noise, MIN_VARIANCE["learned"])
        self.y_mean, self.y_std = 0.0, 1.0
        f64, f32 = tf.float64, tf.float32  # the networks run in float32 (twice as fast), the interface in float64

        def fixed(a: np.ndarray, dtype: Any = f32) -> Any:
            return tf.Variable(a, dtype=dtype, trainable=False)

        self._X = tf.Variable(np.zeros((0, width)), shape=tf.TensorShape([None, width]), dtype=f32, trainable=False)
        self._Y = tf.Variable(np.zeros((0, 1)), shape=tf.TensorShape([None, 1]), dtype=f32, trainable=False)
        # mask[m, i] = 1 when member m trains on point i (0 for the one fold it holds out)
        self._mask = tf.Variable(np.zeros((members, 0)), shape=tf.TensorShape([members, None]), dtype=f32,
                                 trainable=False)
        # Kriging-believer points and the equivalent lengthscales that condition the variance on them
        self._F = tf.Variable(np.zeros((0, width)), shape=tf.TensorShape([None, width]), dtype=f64, trainable=False)
        self._ls = fixed(np.ones(width), f64)
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._params = [tf.Variable(a, dtype=f32) for a in self._initial_weights()]
        self._prior = [fixed(a) for a in self._initial_weights()[:4]] + [fixed(self._prior_head())]
        self._slots = [tf.Variable(np.zeros(p.shape), dtype=f32) for p in self._params for _ in (0, 1)]
        self._t = tf.Variable(0.0, dtype=f32)
        self._Z = np.zeros((0, width))
        self._ys = np.zeros(0)
        self._folds = np.zeros(0, dtype=int)
        self._holdout: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
        self._noise, self._signal = float("nan"), float("nan")
        self._fitted = False
        self._compile()

    def _initial_weights(self) -> list[np.ndarray]:
        """He-normal weights (SiLU), zero biases; the variance head's bias starts at softplus^-1(0.5)."""
        M, d, H = self.members, self.width, self.hidden
        r = self._rng
        out = [r.normal(0, math.sqrt(2.0 / d), (M, d, H)), r.normal(0, 0.1, (M, 1, H)),
               r.normal(0, math.sqrt(2.0 / H), (M, H, H)), r.normal(0, 0.1, (M, 1, H)),
               r.normal(0, math.sqrt(1.0 / H), (M, H, 2)), np.zeros((M, 1, 2))]
        out[5][:, :, 1] = math.log(math.expm1(0.5))
        return out

    def _prior_head(self) -> np.ndarray:
        """Output weights of the fixed prior nets, scaled so each prior function has sd ~ prior_scale."""
        return self._rng.normal(0, self.prior_scale * math.sqrt(1.0 / self.hidden), (self.members, self.hidden, 1))

    # -- compiled functions (traced once) -----------------------------------------------
    def _compile(self) -> None:
        tf = self.tf
        f64, f32 = tf.float64, tf.float32
        params, slots, prior = self._params, self._slots, self._prior
        min_var = self.min_variance

        def mlp(x: Any, W1: Any, b1: Any, W2: Any, b2: Any, W3: Any) -> Any:
            h = tf.nn.silu(tf.linalg.matmul(2.0 * x - 1.0, W1) + b1)
            return tf.linalg.matmul(tf.nn.silu(tf.linalg.matmul(h, W2) + b2), W3)

        def forward(x: Any) -> tuple[Any, Any]:
            """``x`` of shape ``[M, m, width]`` (one row set per member) -> mean, variance ``[M, m]``."""
            out = mlp(x, *params[:5]) + params[5]
            mean = out[:, :, 0]
            if self.prior_scale > 0:
                mean += mlp(x, *prior)[:, :, 0]
            return mean, tf.nn.softplus(out[:, :, 1]) + min_var

        def heads(Z: Any) -> tuple[Any, Any]:
            """Per-member mean and variance (float64) at the same points ``Z`` (``[m, width]``), ``[M, m]`` each."""
            mu, var = forward(tf.tile(tf.cast(Z, f32)[None], [self.members, 1, 1]))
            return tf.cast(mu, f64), tf.cast(var, f64)

        def loss(step: Any) -> Any:
            """Mean (beta-weighted) Gaussian NLL of each member on its own random batch of the points
            it trains on (all of them when there are at most ``BATCH``), plus weight decay."""
            n = tf.shape(self._X)[0]
            idx = tf.cond(n <= BATCH, lambda: tf.tile(tf.range(n)[None], [self.members, 1]),
                          lambda: tf.random.stateless_uniform([self.members, BATCH], tf.stack([self._seed, step]),
                                                              maxval=n, dtype=tf.int32))
            x, y = tf.gather(self._X, idx), tf.gather(self._Y[:, 0], idx)
            w = tf.gather(self._mask, idx, batch_dims=1)
            mu, var = forward(x)
            nll = 0.5 * (tf.math.log(var) + tf.square(y - mu) / var) * tf.stop_gradient(var) ** BETA_NLL
            data = tf.reduce_sum(w * nll, axis=1) / tf.maximum(tf.reduce_sum(w, axis=1), 1.0)
            decay = WEIGHT_DECAY * tf.add_n([tf.reduce_sum(tf.square(w)) for w in params[0:5:2]])
            return tf.reduce_sum(data) + decay

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], f32)])
        def train(steps: Any, lr: Any) -> Any:
            """``steps`` Adam steps on every member at once; returns the last loss."""
            def body(i: Any, last: Any) -> Any:
                with tf.GradientTape() as tape:
                    value = loss(tf.cast(self._t, tf.int32))
                grads = tape.gradient(value, params)
                t = self._t.assign_add(1.0)
                ops = []
                for p, g, m, v in zip(params, grads, slots[0::2], slots[1::2], strict=True):
                    m_new = m.assign(0.9 * m + 0.1 * g)
                    v_new = v.assign(0.999 * v + 0.001 * g * g)
                    step = lr * (m_new / (1.0 - 0.9**t)) / (tf.sqrt(v_new / (1.0 - 0.999**t)) + 1e-8)
                    ops.append(p.assign_sub(step))
                with tf.control_dependencies(ops):
                    return i + 1, tf.identity(value)

            _, last = tf.while_loop(lambda i, _: i < steps, body, [tf.constant(0), tf.constant(0.0, f32)])
            return last

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, self.width], f64)])
        def members(Z: Any) -> Any:
            return heads(Z)

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, self.width], f64)])
        def predict(Z: Any) -> Any:
            return self._mixture(Z, self._F)

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, self.width], f64),
                                                       tf.TensorSpec([None, self.width], f64)])
        def with_grad(Z: Any, F: Any) -> Any:
            """Mean, variance and their gradients w.r.t. ``Z``, given the believed points ``F`` (each
            row's outputs depend on that row only, so the gradient of the sum is the row gradient)."""
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(Z)
                mean, var = self._mixture(Z, F)
                total_mean, total_var = tf.reduce_sum(mean), tf.reduce_sum(var)
            return mean[:, 0], var[:, 0], tape.gradient(total_mean, Z), tape.gradient(total_var, Z)

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, self.width], f64)])
        def mean_gradient(Z: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(Z)
                mean = tf.reduce_mean(heads(Z)[0], axis=0)
                total = tf.reduce_sum(mean)
            return tape.gradient(total, Z)

        self._heads = heads
        self._train, self._members_fn, self._predict, self._mean_gradient = train, members, predict, mean_gradient
        self._with_grad = with_grad

    # -- data -----------------------------------------------------------------------------
    def set_data(self, Z: np.ndarray, y: np.ndarray) -> None:
        """Replace the training data (raw outputs; standardized here). Point ``i`` is held out
        from member ``i mod M``, so a growing history keeps its folds from fit to fit."""
        self._take_data(Z, y)
        self._folds = np.arange(len(self._ys)) % self.members
        mask = np.ones((self.members, len(self._folds)))
        if len(self._folds) > self.members:  # with fewer points than members every member sees them all
            mask[self._folds, np.arange(len(self._folds))] = 0.0
        self._X.assign(self._Z)
        self._Y.assign(self._ys.reshape(-1, 1))
        self._mask.assign(mask)
        self.restore()

    def fantasize(self, Z: np.ndarray) -> None:
        """Kriging believer: the mean stays (a believed observation equals the mean there); the
        variance is conditioned on the believed points as a GP's would be, multiplied by
        ``prod_j (1 - rho(z, z_j)^2)`` with the Matern-5/2 correlation ``rho`` at the equivalent
        lengthscales, so the next pick of a batch moves away. No weights change (no retraining)."""
        Z = np.asarray(Z, dtype=float).reshape(-1, self.width)
        self._F.assign(np.vstack([self._F.numpy(), Z]))

    def restore(self) -> None:
        """Drop the believed points."""
        self._F.assign(np.zeros((0, self.width)))

    @property
    def n(self) -> int:
        return len(self._ys)

    # -- training -----------------------------------------------------------------------
    def fit(self, fresh_start: bool = True) -> float:
        """Train from the previous weights (``WARM_STEPS``), or from new random weights the first
        time (``FRESH_STEPS``). ``fresh_start`` is the GP's periodic restart signal; the ensemble only
        restarts on its first fit (later restarts would throw away what the warm start learned).
        Returns the final training loss; a non-finite loss is an error, not a silent fallback."""
        tf = self.tf
        first = not self._fitted
        steps = FRESH_STEPS if first else WARM_STEPS
        value = float(self._train(tf.constant(steps), tf.constant(LEARNING_RATE, tf.float32)).numpy())
        if not math.isfinite(value):
            raise FloatingPointError(f"deep-ensemble training diverged (loss {value}) on {self.n} points")
        self._fitted = True
        self._diagnose()
        return value

    def _diagnose(self) -> None:
        """Out-of-fold predictions, equivalent lengthscales, noise and signal level, once per fit."""
        Z = self._Z
        mu, var = (a.numpy() for a in self._members_fn(self.tf.constant(Z)))
        cols = np.arange(len(Z))
        self._holdout = (mu[self._folds, cols], np.sqrt(var[self._folds, cols]))
        grad = self._mean_gradient(self.tf.constant(Z)).numpy()
        rms = np.sqrt(np.mean(grad * grad, axis=0))
        self._ls.assign(np.clip(math.sqrt(5.0 / 3.0) / np.maximum(rms, 1e-9), 1e-3, 1e3))
        self._noise = float(np.mean(var))
        self._signal = float(np.var(np.mean(mu, axis=0)))

    # -- prediction & diagnostics -------------------------------------------------------
    def _mixture(self, Z: Any, F: Any) -> Any:
        """Mixture mean and variance (``[m, 1]`` each) in standardized units, the variance
        conditioned on the believed points ``F`` (see :meth:`fantasize`); for graph use."""
        tf = self.tf
        mu, var = self._heads(Z)
        mean = tf.reduce_mean(mu, axis=0)
        total = tf.maximum(tf.reduce_mean(var + mu * mu, axis=0) - mean * mean, 0.0)
        diff = (Z[:, None, :] - F[None, :, :]) / self._ls
        r = tf.sqrt(tf.reduce_sum(diff * diff, axis=2) + 1e-12) * math.sqrt(5.0)
        rho = (1.0 + r + r * r / 3.0) * tf.exp(-r)
        total *= tf.reduce_prod(1.0 - rho * rho, axis=1)
        return mean[:, None], total[:, None]

    def posterior(self) -> EnsemblePosterior:
        """The current mixture (believed points included) for the acquisition: one compiled call
        gives mean, variance and their gradients."""
        return EnsemblePosterior(self._with_grad, self.tf.constant(self._F.numpy()), self.tf)

    def predict_std(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, var = self._predict(self.tf.constant(np.asarray(Z, dtype=float).reshape(-1, self.width)))
        return mean.numpy()[:, 0], var.numpy()[:, 0]

    def loo(self) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold means and sds in the original units (see ``loo_kind``: not leave-one-out).
        With no more points than members nothing is held out: member ``i``'s in-sample prediction."""
        mean, sd = self._holdout
        return mean * self.y_std + self.y_mean, sd * self.y_std

    @property
    def lengthscales(self) -> np.ndarray:
        """Equivalent lengthscales ``sqrt(5/3) / rms(d mean / d z_j)`` over the data (see module doc)."""
        return np.asarray(self._ls.numpy(), dtype=float)

    @property
    def noise_variance(self) -> float:
        """Mean predicted (aleatoric) variance over members and data points, standardized units."""
        return self._noise

    @property
    def signal_variance(self) -> float:
        """Variance of the ensemble mean over the data points, standardized units."""
        return self._signal


class EnsemblePosterior:
    """An ensemble's prediction for :mod:`fmio_bayes.acquisition`: the believed points are those at the
    snapshot; the weights are read at each call (an acquisition is bound and used between two fits)."""

    def __init__(self, with_grad: Any, believed: Any, tf: Any):
        self._with_grad, self._believed, self._tf = with_grad, believed, tf

    def predict_with_grad(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        out = self._with_grad(self._tf.constant(np.asarray(Z, dtype=float)), self._believed)
        mean, var, dmean, dvar = (np.asarray(a.numpy(), dtype=float) for a in out)
        return mean, var, dmean, dvar


def new_surrogate(kind: str, width: int, noise: str, seed: int, **gp_options: Any) -> Any:
    """The objective/constraint surrogate the ``surrogate`` option names: ``"gp"`` (GPflow GPR, with
    ``gp_options``) or ``"ensemble"``. Typed ``Any`` because the engine annotates its models as
    :class:`GPSurrogate`; it only uses what the :class:`Surrogate` protocol lists."""
    if kind == "ensemble":
        return EnsembleSurrogate(width, noise, seed=seed)
    if kind != "gp":
        raise ValueError(f"unknown surrogate {kind!r}: use 'gp' or 'ensemble'")
    from .surrogate import GPSurrogate

    return GPSurrogate(width, noise, **gp_options)  # type: ignore[arg-type]
