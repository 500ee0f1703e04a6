"""Per-channel input normalisation fitted on a training set."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class InputNormalizer(eqx.Module):
    """Per-channel affine normalisation `(x - mean) / std` of one sample.

    Fit it on the training inputs with
    [`trainax.sample_data.InputNormalizer.fit`][] and apply the same
    normaliser to every split (and to data of another family only if it has
    the same channels). A channel that takes one value over the whole
    training set (up to rounding: `max - min <= 8 eps max |x|`), such as a
    coefficient held fixed, gets `std = 1` and its mean as offset, so it maps
    to (about) zero instead of dividing by zero.

    **Arguments:**

    - `mean`: Per-channel offsets, shape `(C,)`.
    - `std`: Per-channel positive scales, shape `(C,)`.

    **Example:**

    ```python
    inputs, _ = tx.sample_data.poisson_2d_periodic(
        num_samples=8, num_points=16, key=jax.random.key(0)
    )
    normalizer = tx.sample_data.InputNormalizer.fit(inputs)
    x = normalizer(inputs[0])  # one sample (C, N, N)
    np.testing.assert_allclose(normalizer.inverse(x), inputs[0], rtol=1e-5, atol=1e-6)
    ```
    """

    mean: Float[Array, " C"] = eqx.field(converter=jnp.asarray)
    std: Float[Array, " C"] = eqx.field(converter=jnp.asarray)

    def __check_init__(self):
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape:
            raise ValueError(
                f"`mean` and `std` must both have shape (C,), got "
                f"{self.mean.shape} and {self.std.shape}."
            )

    @classmethod
    def fit(cls, inputs: Float[Array, "S C *N"]) -> "InputNormalizer":
        """Fit per-channel mean and std over samples and grid points.

        **Arguments:**

        - `inputs`: The training inputs, shape `(S, C, *N)` (at least one
            spatial axis).

        **Returns:**

        An `InputNormalizer` with `mean` and `std` of shape `(C,)`; applied
        to every training sample, each non-constant channel has mean 0 and
        standard deviation 1 over the set.
        """
        inputs = jnp.asarray(inputs)
        if inputs.ndim < 3:
            raise ValueError(
                "`inputs` must be a training set of shape (S, C, *N), got shape "
                f"{inputs.shape}."
            )
        return cls(*_channel_statistics(inputs))

    def _broadcast(self, x):
        x = jnp.asarray(x)
        if x.ndim < 2 or x.shape[0] != self.mean.shape[0]:
            raise ValueError(
                f"`x` must be one sample of shape (C, *N) with C="
                f"{self.mean.shape[0]} (vmap for batches), got shape {x.shape}."
            )
        shape = (-1,) + (1,) * (x.ndim - 1)
        return x, self.mean.reshape(shape), self.std.reshape(shape)

    def __call__(self, x: Float[Array, "C *N"]) -> Float[Array, "C *N"]:
        """Normalise one sample `(C, *N)`: `(x - mean) / std` per channel."""
        x, mean, std = self._broadcast(x)
        return (x - mean) / std

    def inverse(self, x: Float[Array, "C *N"]) -> Float[Array, "C *N"]:
        """Undo the normalisation of one sample `(C, *N)`: `x * std + mean`."""
        x, mean, std = self._broadcast(x)
        return x * std + mean


@jax.jit
def _channel_statistics(inputs):
    axes = (0,) + tuple(range(2, inputs.ndim))
    low, high = jnp.min(inputs, axis=axes), jnp.max(inputs, axis=axes)
    # Rounding-level spread counts as constant: dividing it by its own std
    # would blow rounding noise up to unit size.
    scale = jnp.maximum(jnp.abs(low), jnp.abs(high))
    constant = high - low <= 8 * jnp.finfo(inputs.dtype).eps * scale
    mean = jnp.where(constant, (low + high) / 2, jnp.mean(inputs, axis=axes))
    std = jnp.where(constant, 1, jnp.std(inputs, axis=axes))
    return mean, std.astype(inputs.dtype)
