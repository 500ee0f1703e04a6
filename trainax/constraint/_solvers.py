"""Least-squares solves of the constraint rows, with implicit gradients."""

from __future__ import annotations

import functools
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array, Bool, Float, Int


class GaussNewton(eqx.Module):
    """Gauss-Newton iterations with a QR step and an implicit backward pass.

    A small solver of trainax's own, for the places where optimistix and
    lineax solves do not run (inside `shard_map`, as
    `MixtureOfExperts(parallel="shard")` needs). Each step solves the
    linearised rows `J dw = -r` by a QR decomposition of the Jacobian `J`
    (`N` columns, one per basis field) and takes the longest of the steps
    `2^-k dw`, `k = 0, ..., backtracks`, that lowers `|r|` (the shortest if
    none does), so kinks and strong nonlinearities do not make it cycle. It
    stops when the full Gauss-Newton step has `max |dw| <= atol + rtol max |w|`
    (a halved step says nothing of convergence), or after the layer's `max_steps`.

    With the layer's default `adjoint=optx.ImplicitAdjoint()` the forward
    iterations are not differentiated: a `jax.custom_vjp` applies the
    implicit function theorem at the solution, one `N x N` solve with the
    Hessian of `0.5 |r|^2`. `adjoint=optx.RecursiveCheckpointAdjoint()`
    differentiates through all `max_steps` iterations instead (an unrolled
    gradient, for comparison).

    **Arguments:**

    - `rtol`, `atol`: the step tolerances (defaults `1e-10`, `1e-12`).
    - `backtracks`: the most step halvings per iteration (default 4).

    ```python
    solver = tx.constraint.GaussNewton(rtol=1e-10, atol=1e-12)
    ```
    """

    rtol: float = eqx.field(static=True, default=1e-10)
    atol: float = eqx.field(static=True, default=1e-12)
    backtracks: int = eqx.field(static=True, default=4)

    def __check_init__(self):
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative float, got {value!r}.")
        if isinstance(self.backtracks, bool) or not isinstance(self.backtracks, int) or self.backtracks < 0:
            raise ValueError(f"`backtracks` must be a non-negative int, got {self.backtracks!r}.")


Residual = Callable[[Array, object], Array]


def _small(dw, w, solver):
    return jnp.max(jnp.abs(dw)) <= solver.atol + solver.rtol * jnp.max(jnp.abs(w))


def _gn_step(residual: Residual, w, args, solver):
    r = residual(w, args)
    jac = jax.jacfwd(residual)(w, args)
    q, upper = jnp.linalg.qr(jac)
    dw = jax.scipy.linalg.solve_triangular(upper, -(q.T @ r))
    # backtracking: the longest halving of the step that lowers |r|
    scales = 0.5 ** jnp.arange(solver.backtracks + 1, dtype=w.dtype)
    norms = jax.vmap(lambda a: jnp.sum(residual(w + a * dw, args) ** 2))(scales)
    first = jnp.argmax(norms < jnp.sum(r**2))
    scale = jnp.where(jnp.any(norms < jnp.sum(r**2)), scales[first], scales[-1])
    return scale * dw, dw


def _gn_while(residual, w0, args, solver, max_steps):
    def cond(carry):
        _, k, done = carry
        return (k < max_steps) & ~done

    def body(carry):
        w, k, _ = carry
        step, dw = _gn_step(residual, w, args, solver)
        return w + step, k + 1, _small(dw, w, solver)

    return jax.lax.while_loop(cond, body, (w0, jnp.array(0), jnp.array(False)))


def _gn_unrolled(residual, w0, args, solver, max_steps):
    def body(carry, _):
        w, k, done = carry
        step, dw = _gn_step(residual, w, args, solver)
        small = _small(dw, w, solver)
        w = jnp.where(done, w, w + step)
        k = k + jnp.where(done, 0, 1)
        return (w, k, done | small), None

    (w, k, done), _ = jax.lax.scan(body, (w0, jnp.array(0), jnp.array(False)), None, max_steps)
    return w, k, done


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _implicit(residual: Residual, w, args):
    return w


def _implicit_fwd(residual, w, args):
    return w, (w, args)


def _implicit_bwd(residual, saved, w_bar):
    # At a minimiser g(w, args) = grad_w 0.5 |r|^2 = 0, so
    # dw/dargs = -H^{-1} dg/dargs with H = dg/dw: one N x N solve.
    w, args = saved

    def gradient(w, args):
        return jax.grad(lambda v: 0.5 * jnp.sum(residual(v, args) ** 2))(w)

    hessian = jax.jacfwd(gradient)(w, args)
    lam = jnp.linalg.solve(hessian, w_bar)
    _, vjp = jax.vjp(lambda a: gradient(w, a), args)
    (args_bar,) = vjp(-lam)
    return jnp.zeros_like(w), args_bar


_implicit.defvjp(_implicit_fwd, _implicit_bwd)


def _gauss_newton(residual, w0, args, solver, adjoint, max_steps):
    if isinstance(adjoint, optx.RecursiveCheckpointAdjoint):
        return _gn_unrolled(residual, w0, args, solver, max_steps)
    frozen = jax.lax.stop_gradient(args)
    w, k, done = _gn_while(residual, w0, frozen, solver, max_steps)
    return _implicit(residual, w, args), k, done


def _linear(residual, w0, args, solver):
    # the rows are affine in w: r(w) = A w + r(0)
    matrix = jax.jacfwd(residual)(w0, args)
    offset = residual(w0, args)
    sol = lx.linear_solve(lx.MatrixLinearOperator(matrix), -offset, solver, throw=False)
    return w0 + sol.value, jnp.array(1), sol.result == lx.RESULTS.successful


def _optimistix(residual, w0, args, solver, adjoint, max_steps):
    sol = optx.least_squares(
        residual, solver, w0, args=args, max_steps=max_steps, adjoint=adjoint, throw=False
    )
    return sol.value, sol.stats["num_steps"], sol.result == optx.RESULTS.successful


def least_squares(
    residual: Residual, w0: Float[Array, " N"], args, *, solver, adjoint, max_steps: int
) -> tuple[Float[Array, " N"], Int[Array, ""], Bool[Array, ""]]:
    """Minimise `|residual(w, args)|^2` over `w`: `(w, num_steps, converged)`.

    `args` is a PyTree of arrays; gradients flow to it (and not to `w0`).
    """
    if isinstance(solver, GaussNewton):
        w, k, done = _gauss_newton(residual, w0, args, solver, adjoint, max_steps)
    elif isinstance(solver, lx.AbstractLinearSolver):
        w, k, done = _linear(residual, w0, args, solver)
    else:
        w, k, done = _optimistix(residual, w0, args, solver, adjoint, max_steps)
    return w, k, done & jnp.all(jnp.isfinite(w))
