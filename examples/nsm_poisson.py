"""Neural spectral method: learn the periodic Poisson solver from its residual alone.

The problem is `-Δu = s` on the periodic unit square (zero-mean solution).
A `SpectralOperator` maps the 16 x 16 Fourier coefficients of a source `s`
to those of the solution `u`; the loss is the Parseval norm of the residual
`-Δu - s`, computed exactly on the coefficients. Every step draws fresh
sources from a periodic Gaussian random field (`tx.Sampler`), and no
solution is ever shown to the network. The trained operator is compared with
the exact solution (`problem.reference`) on a 64 x 64 grid, as a relative
L2 error in percent (the mean over 64 test sources).

For contrast, the same model is then trained by the finite-difference
residual on a 64 x 64 grid (`GridResidual`) for a few steps, which take
much longer each (see `benchmarks/spectral_vs_grid.py` for a fair comparison). A plot of one test source, the prediction, the reference and
the error is written to `$TRAINAX_EXAMPLE_OUT` (default: the temporary
folder) when matplotlib is installed.

    python examples/nsm_poisson.py
    TRAINAX_EXAMPLE_SMALL=1 python examples/nsm_poisson.py
"""

import os
import tempfile
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import trainax as tx

SMALL = os.environ.get("TRAINAX_EXAMPLE_SMALL") == "1"
NUM_STEPS = 150 if SMALL else 3000
WIDTH = 16 if SMALL else 32
NUM_LAYERS = 2 if SMALL else 4
GRID = 32 if SMALL else 64  # the finite-difference baseline's grid
GRID_STEPS = 20 if SMALL else 100
TEST_GRID = 64


@eqx.filter_jit
def relative_errors(problem, model, sources):
    """Relative L2 error per source against the exact solution on the test grid."""

    def one(source):
        prediction = problem.to_grid(problem.predict(model, source), TEST_GRID)
        exact = problem.reference(source, TEST_GRID)
        return jnp.linalg.norm(prediction - exact) / jnp.linalg.norm(exact)

    return jax.vmap(one)(sources)


def train(problem, configuration, num_steps, key):
    model = tx.nn.SpectralOperator(
        problem.basis, 1, 1, width=WIDTH, num_layers=NUM_LAYERS, key=jax.random.PRNGKey(0)
    )
    schedule = optax.exponential_decay(1e-3, num_steps, decay_rate=1e-2)
    trainer = tx.GeneralTrainer(
        tx.Sampler(problem.sample),  # fresh sources at every step
        configuration,
        optax.adam(schedule),
        num_steps,
        16,
        progress_bar=False,
    )
    start = time.perf_counter()
    model, losses = trainer(model, key)
    return model, losses, time.perf_counter() - start


def plot(problem, model, source, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fields = {
        "source s": problem.to_grid(source, TEST_GRID),
        "prediction u": problem.to_grid(problem.predict(model, source), TEST_GRID),
        "reference u": problem.reference(source, TEST_GRID),
    }
    fields["error"] = fields["prediction u"] - fields["reference u"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for ax, (title, field) in zip(axes, fields.items()):
        field = np.asarray(field[0]).T  # x to the right, y up
        limit = float(np.max(np.abs(field)))
        image = ax.imshow(field, origin="lower", extent=(0, 1, 0, 1), cmap="RdBu_r",
                          vmin=-limit, vmax=limit)
        fig.colorbar(image, ax=ax, shrink=0.85)
        ax.set_title(title)
        ax.set_xticks([0, 1])
        ax.set_yticks([0, 1])
    fig.suptitle(f"Periodic Poisson, neural spectral method, {TEST_GRID} x {TEST_GRID} grid")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


def main():
    problem = tx.spectral.PoissonPeriodic(16)
    test_sources = problem.sample(jax.random.PRNGKey(123), 64)

    spectral = tx.configuration.SpectralResidual(problem)
    model, losses, seconds = train(problem, spectral, NUM_STEPS, jax.random.PRNGKey(1))
    print(
        f"spectral residual, {NUM_STEPS} steps ({seconds:.1f} s with compilation): "
        f"loss: {losses[0]:.3e} -> {losses[-1]:.3e}"
    )
    errors = relative_errors(problem, model, test_sources)
    print(f"spectral residual: relative L2 error {100 * float(jnp.mean(errors)):.2f} %")

    folder = os.environ.get("TRAINAX_EXAMPLE_OUT", tempfile.gettempdir())
    median = int(jnp.argsort(errors)[len(errors) // 2])  # a typical source
    plot(problem, model, test_sources[median], os.path.join(folder, "nsm_poisson.png"))

    grid = tx.configuration.GridResidual(problem, GRID)
    model, losses, seconds = train(problem, grid, GRID_STEPS, jax.random.PRNGKey(1))
    print(
        f"grid residual {GRID}x{GRID}, {GRID_STEPS} steps ({seconds:.1f} s with "
        f"compilation): loss: {losses[0]:.3e} -> {losses[-1]:.3e}"
    )
    errors = relative_errors(problem, model, test_sources)
    print(f"grid residual {GRID}x{GRID}: relative L2 error "
          f"{100 * float(jnp.mean(errors)):.2f} %")


if __name__ == "__main__":
    main()
