"""DINo forecasts against the exact spectral solver: time per trajectory, error from subsets.

    python benchmarks/inr_forecast.py [--steps 2000] [--train 64] [--test 8] [--repeats 5]

Trains the model of `examples/inr_heat.py` (2D heat equation, 32 x 32 grid,
50% of the points observed, 10 frames in the training horizon), then, for
each held-out trajectory:

- times one code fit (`fit_codes`, 500 Adam steps on the first frame), the
  latent ODE over 20 frames with the decoding at the 1024 grid points, the
  whole forecast (both) and the reference: the exact spectral solution of the
  same 20 frames on the same grid (FFT, one decay factor per mode and frame,
  inverse FFT), each compiled once and timed by its median over repeats;
- measures the forecast's MSE over all points when the first frame is
  observed on 50% or 5% of the points, against the forecast from all of them.

Prints medians over the held-out trajectories, as ratios.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

import trainax as tx

N, FRAMES, SEEN, FIT_STEPS = 32, 20, 10, 500
DT, NU, CUTOFF = 0.05, 5e-3, 2


def train(num_train: int, num_test: int, num_steps: int):
    values, coords, times = tx.sample_data.heat_2d_periodic(
        num_samples=num_train + num_test, num_points=N, num_frames=FRAMES, dt=DT, nu=NU,
        cutoff=CUTOFF, key=jr.key(0),
    )
    mask = tx.sample_data.random_observation_mask(jr.key(1), N * N, 0.5)
    seen, _ = tx.sample_data.split_horizon(values[:num_train], SEEN)
    decoder = tx.inr.FourierNet(2, hidden=32, code_dim=32, input_scale=16.0, key=jr.key(3))
    dynamics = tx.inr.LatentODE(32, width=64, depth=3, key=jr.key(4))
    model = tx.inr.AutoDecoder(decoder, dynamics, num_samples=num_train, num_frames=SEEN)
    trainer = tx.GeneralTrainer(
        tx.Samples(seen),
        tx.configuration.AutoDecoding(coords, times[:SEEN], mask),
        tx.inr.auto_decoder_optimizer(decoder=optax.adam(1e-2), dynamics=optax.adam(1e-3)),
        num_steps,
        batch_size=4,
        per_sample=lambda m: m.codes,
        per_sample_optimizer=optax.adam(1e-2),
        progress_bar=False,
    )
    start = time.perf_counter()
    trained, _ = trainer(model, jr.key(5))
    return trained, values[num_train:], coords, times, time.perf_counter() - start


@jax.jit
def exact_solution(u0, times):
    """The reference: the heat equation's exact frames of one state `(N, N)`."""
    k = 2 * math.pi * jnp.fft.fftfreq(N, 1.0 / N)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    decay = jnp.exp(-NU * k2 * times[:, None, None])
    return jnp.fft.ifft2(jnp.fft.fft2(u0) * decay).real


def median_time(fn, inputs, repeats: int) -> float:
    jax.block_until_ready(fn(inputs[0]))  # compile
    times = []
    for _ in range(repeats):
        for x in inputs:
            start = time.perf_counter()
            jax.block_until_ready(fn(x))
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model, test, coords, times, train_time = train(args.train, args.test, args.steps)
    print(f"training: {args.steps} steps on {args.train} trajectories in {train_time:.1f} s")
    firsts = list(test[:, 0])
    fit = jax.jit(lambda first: tx.inr.fit_codes(model.decoder, coords, first,
                                                 num_steps=FIT_STEPS)[0])
    forecast = jax.jit(lambda first: model.forecast(first, coords, times, coords,
                                                    num_steps=FIT_STEPS))
    rollout = jax.jit(lambda codes: jax.vmap(lambda c: model.decoder.field(c, coords))(
        model.dynamics(codes, times)))
    grids = [np.asarray(u0[:, 0]).reshape(N, N) for u0 in firsts]
    reference = median_time(lambda u0: exact_solution(u0, times), grids, args.repeats)
    fitting = median_time(fit, firsts, args.repeats)
    forecasting = median_time(forecast, firsts, args.repeats)
    rolling = median_time(rollout, [fit(first) for first in firsts], args.repeats)
    print(f"\ntime per trajectory ({N}x{N} grid, {FRAMES} frames), medians:")
    print(f"  exact spectral solution   {reference * 1e3:9.3f} ms")
    print(f"  code fit ({FIT_STEPS} steps)     {fitting * 1e3:9.3f} ms   "
          f"{fitting / reference:9.0f}x the reference")
    print(f"  ODE + decode (from codes) {rolling * 1e3:9.3f} ms   "
          f"{rolling / reference:9.1f}x the reference")
    print(f"  forecast (fit + ODE + decode) {forecasting * 1e3:5.1f} ms   "
          f"{forecasting / reference:9.0f}x the reference")

    print("\nforecast MSE from a subsampled first frame / from the full grid, medians:")
    errors = {}
    for name, fraction, seed in (("full", 1.0, 0), ("50%", 0.5, 1), ("5%", 0.05, 2)):
        mask = tx.sample_data.random_observation_mask(jr.key(seed), N * N, fraction)
        predict = jax.vmap(lambda first: model.forecast(first, coords, times, coords,
                                                        mask=mask, num_steps=FIT_STEPS))
        squared = np.asarray((predict(test[:, 0]) - test) ** 2)
        errors[name] = (squared[:, :SEEN].mean(axis=(1, 2, 3)),
                        squared[:, SEEN:].mean(axis=(1, 2, 3)))
    full_in, full_out = errors["full"]
    print(f"  full grid: MSE {np.median(full_in):.3e} in the horizon, "
          f"{np.median(full_out):.3e} beyond")
    for name in ("50%", "5%"):
        inside, beyond = errors[name]
        print(f"  {name:>3} of the points: {np.median(inside / full_in):6.2f}x in the horizon, "
              f"{np.median(beyond / full_out):6.2f}x beyond")


if __name__ == "__main__":
    main()
