"""Hard constraints as a layer: per-sample least squares over a learned basis."""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
import optimistix as optx
from jax.sharding import Mesh
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._checks import positive_int
from ..parallel import check_expert_mesh, expert_mesh, shard_experts
from ._derivatives import AbstractDerivatives, FiniteDifference
from ._partition import check_counts, partition, partition_numpy, stitch
from ._pde import AbstractPDE, parse_term, region_masks
from ._residuals import grid_coordinates
from ._rows import Rows, combination_weights, gather, sample_points, solve_rows
from ._solvers import GaussNewton, least_squares

_FAILURES = ("warn", "raise", "ignore")
_SHARED = ("local", "global")
_PARALLEL = ("vmap", "shard")
_COUPLING = ("none", "interface")


class ConstraintInfo(eqx.Module):
    """What a constraint layer reports about its solves.

    For a [`HardConstraint`][trainax.constraint.HardConstraint] every field
    is one solve's; a [`MixtureOfExperts`][trainax.constraint.MixtureOfExperts]
    stacks its experts' along a leading axis `E`.

    **Attributes:**

    - `num_steps`: solver iterations (1 for a direct linear solve).
    - `converged`: whether the solve met its tolerances within `max_steps`
      (and its weights are finite).
    - `residual`: the residual of every row at the sampled points, `(R,)`:
      the PDE points first, then each condition's rows (padding rows of an
      expert that owns fewer condition nodes are zero); the ridge rows are
      left out.
    - `weights`: the solved weights of the basis fields, `(N,)`.

    ```python
    with jax.enable_x64(True):
        pde = tx.constraint.PDE(("t", "x"), (1.0, 1.0), ("u",), linear=True,
                                residual=lambda v, inputs, coords: v["u"] - inputs[0])
        net = lambda inputs: jnp.stack([inputs[0], jnp.ones((4, 8))])
        layer = tx.constraint.HardConstraint(net, pde, num_points=8)
        u, info = eqx.filter_jit(layer)(jnp.ones((1, 4, 8)))
        info.converged, info.weights.shape, info.max_residual < 1e-6   # True, (2,), True
    ```
    """

    num_steps: Int[Array, "*E"]
    converged: Bool[Array, "*E"]
    residual: Float[Array, "*E R"]
    weights: Float[Array, "*E N"]

    @property
    def max_residual(self) -> Float[Array, "*E"]:
        """The largest absolute row residual of each solve."""
        return jnp.max(jnp.abs(self.residual), axis=-1)


def _check_x64(name: str) -> None:
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            f"{name} solves its least-squares problems in float64, but JAX runs in float32: "
            "enable float64 at startup with jax.config.update('jax_enable_x64', True) (or the "
            "environment variable JAX_ENABLE_X64=1)."
        )


def _check_solver(solver, adjoint, pde: AbstractPDE):
    if solver is not None and not isinstance(
        solver, (lx.AbstractLinearSolver, optx.AbstractLeastSquaresSolver, GaussNewton)
    ):
        raise TypeError(
            "`solver` must be None, a lineax linear solver (linear PDEs), an optimistix "
            "least-squares solver or tx.constraint.GaussNewton, got "
            f"{type(solver).__name__}."
        )
    if isinstance(solver, lx.AbstractLinearSolver) and not pde.linear:
        raise ValueError(
            f"`solver` is a linear solver ({type(solver).__name__}), but the PDE is nonlinear "
            "(`linear=False`): pass an optimistix least-squares solver or GaussNewton."
        )
    if not isinstance(adjoint, optx.AbstractAdjoint):
        raise TypeError(
            "`adjoint` must be an optimistix adjoint (optx.ImplicitAdjoint() or "
            f"optx.RecursiveCheckpointAdjoint()), got {type(adjoint).__name__}."
        )


def _resolve_solver(solver, pde: AbstractPDE, parallel: str):
    if parallel == "shard":
        if solver is None:
            return GaussNewton()
        if not isinstance(solver, GaussNewton):
            raise ValueError(
                "`parallel='shard'` needs `solver=None` or tx.constraint.GaussNewton(): "
                f"{type(solver).__name__} (optimistix, lineax) does not run inside shard_map."
            )
    if solver is None:
        return lx.QR() if pde.linear else optx.LevenbergMarquardt(rtol=1e-10, atol=1e-12)
    return solver


class HardConstraint(eqx.Module):
    """A layer whose output satisfies a PDE at sampled points, by least squares.

    The backbone `basis_net` maps the inputs `(C, *N)` on a space-time grid
    to `N_b` basis fields `(N_b, *N)`. The layer looks, per sample, for the
    weights `w` of the combination `u = sum_n w_n phi_n` whose PDE residual
    vanishes at `num_points` collocation nodes (drawn with `key` among the
    nodes where the PDE holds) and whose initial and boundary conditions
    hold at every node of their regions, in the least-squares sense:

    `min_w |r_pde(u)|^2 + |r_conditions(u)|^2 + ridge^2 |w|^2`.

    The terms (`u`, `u_t`, `u_xx`, ...) are linear in `w`: the layer
    computes each once for all basis fields with `derivatives`, samples
    them at the points, and the solver only sees `terms @ w` and the PDE's
    pointwise nonlinearities, so its Jacobian has `N_b` columns. A linear
    PDE is one direct linear least-squares solve (lineax); a nonlinear one
    Levenberg-Marquardt (optimistix) from `w = 0`. Gradients reach the
    backbone through the solution by the implicit function theorem, one
    `N_b x N_b` solve in the backward pass; `adjoint=optx.RecursiveCheckpointAdjoint()`
    differentiates through the iterations instead. The solves run in
    float64: enable it with `jax.config.update("jax_enable_x64", True)`.

    A `basis_net` may also return a dict from term name to `(N_b, *N)`
    arrays, holding the terms itself (for example by automatic
    differentiation of a coordinate network); `derivatives` then only
    places the nodes.

    With `particular=True` the first field is a particular part of fixed
    weight one, `u = phi_0 + sum_{n>=1} w_n phi_n`, and only the other
    `N_b - 1` weights are solved. A backbone that puts known data into
    `phi_0` and makes the others vanish there satisfies that data exactly,
    whatever the weights: the initial-value form
    ([`InitialValueBasis`][trainax.constraint.InitialValueBasis]),
    `phi_0 = u_0` on every level and `phi_n = 0` on the initial one, for
    example, leaves the rows only the PDE and the boundary conditions to fit.

    **Arguments:**

    - `basis_net`: the backbone, `(C, *N) -> (N_b, *N)` (such as a
      [`tx.nn.FNO`][trainax.nn.FNO] with `out_channels=N_b`).
    - `pde`: the [`AbstractPDE`][trainax.constraint.AbstractPDE] with its conditions.
    - `num_points`: PDE collocation points per solve.
    - `ridge`: the weight `lambda` of the rows `lambda w` (default `1e-4`);
      `0` needs at least `N_b` rows.
    - `solver`: `None` (default: `lx.QR()` for linear PDEs,
      `optx.LevenbergMarquardt(rtol=1e-10, atol=1e-12)` otherwise), a
      lineax linear solver, an optimistix least-squares solver, or
      [`GaussNewton`][trainax.constraint.GaussNewton].
    - `adjoint`: `optx.ImplicitAdjoint()` (default) or
      `optx.RecursiveCheckpointAdjoint()` (unrolled).
    - `max_steps`: the most solver iterations (default 50).
    - `on_failure`: what a solve that does not converge does: `"warn"`
      (default, a `RuntimeWarning` at run time), `"raise"` (an
      `eqx.error_if` error) or `"ignore"`. The info records it either way.
    - `derivatives`: the [derivative scheme][trainax.constraint.AbstractDerivatives]
      (default [`FiniteDifference`][trainax.constraint.FiniteDifference]).
    - `particular`: whether the backbone's first field enters with the fixed
      weight one (default `False`; see above). The info's `weights` are then
      those of the other fields.

    **Call:** `layer(inputs, *, key=None)` with `inputs` `(C, *N)` on the
    grid (the conditions read them, such as the initial state) returns
    `(u, info)`: the constrained field `(1, *N)` in float64 and a
    [`ConstraintInfo`][trainax.constraint.ConstraintInfo]. `key=None` uses
    `jax.random.PRNGKey(0)`: the same points at every call.

    ```python
    with jax.enable_x64(True):
        pde = tx.constraint.PDE(
            ("t", "x"), (1.0, 1.0), ("u", "u_t", "u_x"),
            residual=lambda v, inputs, coords: v["u_t"] + v["u_x"],
            conditions={"initial": lambda v, inputs, coords: v["u"] - inputs[0]},
            periodic=(False, True), linear=True,
        )
        net = tx.nn.FNO(2, 1, 4, width=8, modes=4, num_layers=1, key=jr.PRNGKey(0))
        layer = tx.constraint.HardConstraint(net, pde, num_points=32)
        u, info = eqx.filter_jit(layer)(jnp.ones((1, 8, 16)), key=jr.PRNGKey(1))
        u.shape, info.converged                        # (1, 8, 16), True
    ```
    """

    basis_net: Callable
    pde: AbstractPDE
    derivatives: AbstractDerivatives
    solver: Any
    adjoint: optx.AbstractAdjoint
    num_points: int = eqx.field(static=True)
    ridge: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    on_failure: str = eqx.field(static=True)
    particular: bool = eqx.field(static=True)

    def __init__(
        self,
        basis_net: Callable,
        pde: AbstractPDE,
        *,
        num_points: int,
        ridge: float = 1e-4,
        solver=None,
        adjoint: optx.AbstractAdjoint = optx.ImplicitAdjoint(),
        max_steps: int = 50,
        on_failure: str = "warn",
        derivatives: AbstractDerivatives = FiniteDifference(),
        particular: bool = False,
    ):
        if not callable(basis_net):
            raise TypeError(f"`basis_net` must be callable (a backbone network), got {basis_net!r}.")
        if not isinstance(pde, AbstractPDE):
            raise TypeError(
                f"`pde` must be a tx.constraint.AbstractPDE (such as tx.constraint.PDE), got "
                f"{type(pde).__name__}."
            )
        if not isinstance(derivatives, AbstractDerivatives):
            raise TypeError(
                "`derivatives` must be a tx.constraint derivative scheme (FiniteDifference(), "
                f"Spectral()), got {type(derivatives).__name__}."
            )
        if isinstance(ridge, bool) or not isinstance(ridge, numbers.Real) or not ridge >= 0:
            raise ValueError(f"`ridge` must be a non-negative float, got {ridge!r}.")
        if on_failure not in _FAILURES:
            raise ValueError(f"`on_failure` must be one of {_FAILURES}, got {on_failure!r}.")
        if not isinstance(particular, (bool, np.bool_)):
            raise TypeError(f"`particular` must be True or False, got {particular!r}.")
        _check_solver(solver, adjoint, pde)
        self.basis_net = basis_net
        self.pde = pde
        self.derivatives = derivatives
        self.solver = solver
        self.adjoint = adjoint
        self.num_points = positive_int("num_points", num_points)
        self.ridge = float(ridge)
        self.max_steps = positive_int("max_steps", max_steps)
        self.on_failure = on_failure
        self.particular = bool(particular)

    def __call__(
        self, inputs: Float[Array, "C *N"], *, key: Optional[PRNGKeyArray] = None
    ) -> tuple[Float[Array, "1 *N"], ConstraintInfo]:
        counts = (1,) * len(self.pde.axes)
        field, info = _constrain(self, inputs, key, counts, "local", "vmap", None, "HardConstraint")
        return field, jax.tree_util.tree_map(lambda leaf: leaf[0], info)


class MixtureOfExperts(eqx.Module):
    """A hard constraint solved independently on the blocks of a regular partition.

    The grid is cut into `prod(partition)` equal, non-overlapping blocks
    (`partition[i]` per axis; `(1, 4)` cuts a `(t, x)` grid into four strips
    along `x`). Expert `e` owns block `np.unravel_index(e, partition)` (see
    [`tx.constraint.partition`][trainax.constraint.partition]). The backbone
    runs once on the whole grid; each expert then computes the terms on its
    own block (finite differences one-sided at the block's edges), draws its
    own `num_points` collocation points inside it, and solves its own
    weights, as the [`HardConstraint`][trainax.constraint.HardConstraint]
    does on the whole grid. The output takes each node from its block's
    combination. One expert is the global layer itself: the same points,
    rows, output and gradient.

    The condition rows are an option: `shared_rows="local"` (default) gives
    each expert the condition nodes inside its block; `"global"` gives every
    expert all condition rows of the whole domain (their terms computed on
    the whole grid), so every expert's weights also fit the global initial
    and boundary data.

    Independent experts leave an inner block without the information that
    crosses its edges: a diffusive PDE needs boundary data on every block,
    and an inner strip has none, so its rows do not fix its solution and
    the stitched field jumps at the interfaces.
    `coupling="interface"` couples the experts through their interfaces:
    the stitched field is differentiated on the whole grid (a stencil at a
    block's edge reads the neighbouring block), each expert's rows gain the
    PDE rows at its *interface nodes* (the nodes of its edges that face
    another block, every one of them, not sampled), and the weights of all
    experts are solved together, one least-squares problem with
    `E * N_b` weights. Each expert still draws its own `num_points` points
    inside its block (among its nodes off the interfaces) and owns its own
    weights; the condition rows are the domain's, each node once.

    **Arguments:**

    - `constraint`: the [`HardConstraint`][trainax.constraint.HardConstraint]
      that sets the backbone, PDE, points per expert, solver and options.
    - `partition`: the expert count per grid axis; each divides its axis.
    - `shared_rows`: `"local"` or `"global"` (see above; `"local"` only
      with coupling).
    - `coupling`: `"none"` (default: independent solves) or `"interface"`
      (see above; needs a backbone that returns fields, not terms, a
      derivative scheme that works on blocks, and `parallel="vmap"`).
    - `parallel`: `"vmap"` (default) maps the experts on one device;
      `"shard"` puts the expert axis on the devices of `mesh` with
      [`tx.parallel.shard_experts`][trainax.parallel.shard_experts] (the
      expert count a multiple of the device count). Under `"shard"` the
      solver must be `None` or [`GaussNewton`][trainax.constraint.GaussNewton]
      (the default there), since optimistix and lineax solves do not run
      inside `shard_map`.
    - `mesh`: a mesh with an `"experts"` axis (default
      [`tx.parallel.expert_mesh()`][trainax.parallel.expert_mesh]), for `"shard"`.

    **Call:** as the constraint's: `(u, info)` with `u` `(1, *N)` and the
    info's fields stacked over the experts, `(E, ...)`. With coupling the
    experts share one solve (the same `num_steps` and `converged`), and an
    expert's `residual` holds its points, then its interface nodes, then its
    condition rows (zero-padded).

    ```python
    with jax.enable_x64(True):
        pde = tx.constraint.PDE(
            ("t", "x"), (1.0, 1.0), ("u", "u_t", "u_xx"),
            residual=lambda v, inputs, coords: v["u_t"] - 0.1 * v["u_xx"],
            conditions={"initial": lambda v, inputs, coords: v["u"] - inputs[0]},
            linear=True,
        )
        net = tx.nn.FNO(2, 1, 4, width=8, modes=4, num_layers=1, key=jr.PRNGKey(0))
        layer = tx.constraint.HardConstraint(net, pde, num_points=16)
        experts = tx.constraint.MixtureOfExperts(layer, (1, 4))
        u, info = eqx.filter_jit(experts)(jnp.ones((1, 8, 16)), key=jr.PRNGKey(1))
        u.shape, info.weights.shape                    # (1, 8, 16), (4, 4)
        coupled = tx.constraint.MixtureOfExperts(      # 8 points per strip, off its edges
            tx.constraint.HardConstraint(net, pde, num_points=8), (1, 4), coupling="interface")
        u, info = eqx.filter_jit(coupled)(jnp.ones((1, 8, 16)), key=jr.PRNGKey(1))
        info.converged                                 # one solve: [True True True True]
    ```
    """

    constraint: HardConstraint
    partition: tuple[int, ...] = eqx.field(static=True)
    shared_rows: str = eqx.field(static=True)
    parallel: str = eqx.field(static=True)
    mesh: Optional[Mesh] = eqx.field(static=True)
    coupling: str = eqx.field(static=True)

    def __init__(
        self,
        constraint: HardConstraint,
        partition: Sequence[int],
        *,
        shared_rows: str = "local",
        parallel: str = "vmap",
        mesh: Optional[Mesh] = None,
        coupling: str = "none",
    ):
        if not isinstance(constraint, HardConstraint):
            raise TypeError(
                f"`constraint` must be a tx.constraint.HardConstraint, got {type(constraint).__name__}."
            )
        d = len(constraint.pde.axes)
        if isinstance(partition, numbers.Integral) or not isinstance(partition, (tuple, list)):
            raise TypeError(f"`partition` must be a tuple of expert counts per axis, got {partition!r}.")
        if len(partition) != d or not all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 1 for c in partition
        ):
            raise ValueError(
                f"`partition` must hold one positive int per axis of the PDE ({d}), got {tuple(partition)}."
            )
        if shared_rows not in _SHARED:
            raise ValueError(f"`shared_rows` must be one of {_SHARED}, got {shared_rows!r}.")
        if parallel not in _PARALLEL:
            raise ValueError(f"`parallel` must be one of {_PARALLEL}, got {parallel!r}.")
        if coupling not in _COUPLING:
            raise ValueError(f"`coupling` must be one of {_COUPLING}, got {coupling!r}.")
        if coupling == "interface" and parallel != "vmap":
            raise ValueError(
                "`coupling='interface'` solves the experts' weights together, on one device: "
                f"it needs parallel='vmap', got parallel={parallel!r}."
            )
        if coupling == "interface" and shared_rows != "local":
            raise ValueError(
                "`shared_rows` must be 'local' with `coupling='interface'` (the coupled solve "
                f"holds every condition node of the domain once), got {shared_rows!r}."
            )
        if coupling == "interface" and not constraint.derivatives.supports_blocks:
            raise ValueError(
                "`coupling='interface'` differentiates the stitched field across the "
                f"interfaces, which {type(constraint.derivatives).__name__} cannot: use "
                "FiniteDifference()."
            )
        self.coupling = coupling
        self.constraint = constraint
        self.partition = tuple(int(c) for c in partition)
        self.shared_rows = shared_rows
        self.parallel = parallel
        if parallel == "shard":
            _resolve_solver(constraint.solver, constraint.pde, "shard")
            mesh = check_expert_mesh(expert_mesh() if mesh is None else mesh, self.num_experts)
        elif mesh is not None:
            raise ValueError("`mesh` applies to `parallel='shard'` only; got parallel='vmap'.")
        self.mesh = mesh

    @property
    def num_experts(self) -> int:
        """The number of experts `E = prod(partition)`."""
        return math.prod(self.partition)

    def __call__(
        self, inputs: Float[Array, "C *N"], *, key: Optional[PRNGKeyArray] = None
    ) -> tuple[Float[Array, "1 *N"], ConstraintInfo]:
        if self.coupling == "interface":
            return _constrain_coupled(self.constraint, inputs, key, self.partition)
        return _constrain(
            self.constraint, inputs, key, self.partition, self.shared_rows, self.parallel,
            self.mesh, "MixtureOfExperts",
        )


class Constrained(eqx.Module):
    """A constraint layer as an ordinary model: it returns the field only.

    `Constrained(layer)(inputs, key=None)` is `layer(inputs, key=key)[0]`,
    so a hard-constrained model trains under any configuration
    ([`OperatorLearning`][trainax.configuration.OperatorLearning] on pairs,
    [`PhysicsInformed`][trainax.configuration.PhysicsInformed] without data).

    **Arguments:**

    - `layer`: a [`HardConstraint`][trainax.constraint.HardConstraint] or
      [`MixtureOfExperts`][trainax.constraint.MixtureOfExperts].

    ```python
    pde = tx.constraint.PDE(
        ("t", "x"), (1.0, 1.0), ("u", "u_t", "u_x"),
        residual=lambda v, inputs, coords: v["u_t"] + v["u_x"], periodic=(False, True),
        linear=True,
    )
    net = tx.nn.FNO(2, 1, 4, width=8, modes=4, num_layers=1, key=jr.PRNGKey(0))
    model = tx.constraint.Constrained(tx.constraint.HardConstraint(net, pde, num_points=32))
    ```
    """

    layer: Union[HardConstraint, MixtureOfExperts]

    def __check_init__(self):
        if not isinstance(self.layer, (HardConstraint, MixtureOfExperts)):
            raise TypeError(
                "`layer` must be a HardConstraint or MixtureOfExperts, got "
                f"{type(self.layer).__name__}."
            )

    def __call__(
        self, inputs: Float[Array, "C *N"], *, key: Optional[PRNGKeyArray] = None
    ) -> Float[Array, "1 *N"]:
        return self.layer(inputs, key=key)[0]


def draws_points(model) -> bool:
    """Whether `model` holds a constraint layer, and so takes a `key=` to draw its points.

    The protocol of [`PhysicsInformed`][trainax.configuration.PhysicsInformed]:
    a model whose PyTree holds a [`HardConstraint`][trainax.constraint.HardConstraint]
    or [`MixtureOfExperts`][trainax.constraint.MixtureOfExperts] is called
    as `model(inputs, key=k)`, with a fresh key per sample and step (as
    [`Constrained`][trainax.constraint.Constrained] accepts).

    **Arguments:**

    - `model`: any PyTree.

    **Returns:** `True` if a constraint layer is among its nodes.

    ```python
    tx.constraint.draws_points(eqx.nn.Linear(2, 2, key=jr.PRNGKey(0)))   # False
    ```
    """
    layers = (HardConstraint, MixtureOfExperts)
    leaves = jax.tree_util.tree_leaves(model, is_leaf=lambda x: isinstance(x, layers))
    return any(isinstance(leaf, layers) for leaf in leaves)


# -- the shared machinery ------------------------------------------------------


def term_names(pde: AbstractPDE) -> tuple[str, ...]:
    """The PDE's terms with `"u"` first (the combined field itself)."""
    return ("u",) + tuple(t for t in pde.terms if t != "u")


def _basis_terms(constraint, inputs, names):
    """`(fields, given_terms)`: the basis `(N, *N)` and, if the net gives them, `(K, N, *N)`."""
    out = constraint.basis_net(inputs)
    if isinstance(out, Mapping):
        missing = [n for n in names if n not in out]
        if missing:
            raise ValueError(
                f"`basis_net` returns a dict of terms without {missing}; the PDE reads {names}."
            )
        terms = jnp.stack([jnp.asarray(out[n], jnp.float64) for n in names])
        return terms[0], terms
    return jnp.asarray(out, jnp.float64), None


def _geometry(constraint, grid, counts):
    """Per axis `(extent, periodic)` of the whole grid and of one block."""
    pde = constraint.pde
    whole, block = [], []
    for n, c, length, periodic in zip(grid, counts, pde.extent, pde.periodic):
        whole.append((length, periodic))
        if c == 1:
            block.append((length, periodic))
        else:
            spacing = length / n if periodic else length / (n - 1)
            block.append((spacing * (n // c - 1), False))
    return whole, block


def _check_grid(constraint, fields, inputs, counts, orders, given):
    pde, d = constraint.pde, len(constraint.pde.axes)
    if fields.ndim != d + 1:
        raise ValueError(
            f"`basis_net` must return basis fields (N, *grid) with {d} grid axes "
            f"{pde.axes}, got shape {tuple(fields.shape)}."
        )
    grid = tuple(fields.shape[1:])
    if tuple(inputs.shape[1:]) != grid:
        raise ValueError(
            f"`inputs` must live on the grid of the basis fields {grid}: expected shape "
            f"(C, {', '.join(map(str, grid))}), got {tuple(inputs.shape)}."
        )
    counts = check_counts(counts, grid)
    scheme = constraint.derivatives
    for axis, (n, c) in enumerate(zip(grid, counts)):
        highest = max(order[axis] for order in orders)
        if given or highest == 0:
            continue
        if c > 1 and not scheme.supports_blocks:
            raise ValueError(
                f"`partition` splits axis {pde.axes[axis]!r}, which {type(scheme).__name__} "
                "differentiates on whole axes only: use FiniteDifference() or do not split it."
            )
        if n // c < scheme.min_nodes(highest):
            where = "a block" if c > 1 else "the grid"
            raise ValueError(
                f"`{'partition' if c > 1 else 'inputs'}`: {where} has {n // c} nodes along "
                f"{pde.axes[axis]!r}, fewer than the {scheme.min_nodes(highest)} that "
                f"{type(scheme).__name__} needs for a derivative of order {highest}."
            )
    return grid, counts


def _condition_rows(masks, counts, regions):
    """Per region, `(E, Q)` flat node indices inside each block and their 0/1 mask
    (`Q = 0` for a region without nodes, such as the interfaces of one expert)."""
    out = []
    for region in regions:
        blocks = partition_numpy(masks[region], counts).reshape(math.prod(counts), -1)
        width = int(blocks.sum(axis=1).max())
        index = np.zeros((blocks.shape[0], width), np.int32)
        mask = np.zeros((blocks.shape[0], width))
        for e, row in enumerate(blocks):
            nodes = np.flatnonzero(row)
            index[e, : nodes.size], mask[e, : nodes.size] = nodes, 1.0
        out.append((index, mask))
    return out


def _check_points(constraint, eligible, where: str = "") -> None:
    fewest = int(eligible.sum(axis=1).min())
    if constraint.num_points > fewest:
        raise ValueError(
            f"`num_points` ({constraint.num_points}) is more than a block holds: the "
            f"smallest has {fewest} nodes{where} where the PDE is imposed."
        )


def _check_rows(constraint, num_basis, eligible, local, global_sizes):
    _check_points(constraint, eligible)
    if constraint.ridge > 0:
        return
    if global_sizes is None:
        rows = constraint.num_points + sum(mask.sum(axis=1) for _, mask in local)
    else:
        rows = np.full(eligible.shape[0], constraint.num_points + sum(global_sizes))
    if int(np.min(rows)) < num_basis:
        raise ValueError(
            f"`ridge` = 0 needs at least as many rows as basis fields ({num_basis}), but a "
            f"solve has only {int(np.min(rows))} rows: use ridge > 0 or more points."
        )


def _report(field, converged, mode: str, name: str, max_steps: int):
    if mode == "raise":
        return eqx.error_if(
            field,
            ~jnp.all(converged),
            f"{name}: a least-squares solve did not converge within max_steps={max_steps}; "
            "raise max_steps or relax the solver's tolerances.",
        )
    if mode == "warn":
        jax.debug.callback(functools.partial(_warn, name=name, max_steps=max_steps), converged)
    return field


def _warn(converged, *, name, max_steps):
    if not np.all(np.asarray(converged)):
        warnings.warn(
            f"{name}: a least-squares solve did not converge within max_steps={max_steps} "
            "(see the info's `converged`); raise max_steps or relax the solver's tolerances.",
            RuntimeWarning,
            stacklevel=2,
        )


def _block_terms(scheme, fields, given, orders, counts, block):
    """The terms of every basis field on each expert's block, `(E, K, N, G_b)`.

    Each block is differentiated on its own (one-sided at its edges), so an
    expert's rows depend on its block alone.
    """
    num_experts = math.prod(counts)
    if given is None:
        terms = jax.vmap(lambda f: scheme.terms(f, orders, *zip(*block)))(partition(fields, counts))
    else:
        k, n = given.shape[:2]
        terms = partition(given.reshape(k * n, *given.shape[2:]), counts)
    return terms.reshape(num_experts, len(orders), fields.shape[0], -1)


def _global_groups(scheme, fields, given, orders, whole, values, coords, masks, regions):
    """The condition rows of the whole domain, with terms on the whole grid."""
    terms = scheme.terms(fields, orders, *zip(*whole)) if given is None else given
    terms = terms.reshape(len(orders), fields.shape[0], -1)
    flat_inputs = values.reshape(values.shape[0], -1)
    flat_coords = jnp.asarray(coords.reshape(coords.shape[0], -1))
    return tuple(
        gather(terms, flat_inputs, flat_coords, np.flatnonzero(masks[r]), jnp.ones(int(masks[r].sum())))
        for r in regions
    )


def _expert_solver(constraint, pde, names, num_basis, solver, shared: bool):
    """The solve of one expert: its points, its rows, its weights and its field."""
    rows = Rows(
        pde, ("pde",) + tuple(pde.conditions), names, constraint.ridge, constraint.particular
    )
    num_points = constraint.num_points

    def expert(data):
        terms, inputs, coords, eligible, conditions, key, shared_groups = data
        index = sample_points(key, eligible, num_points)
        groups = [gather(terms, inputs, coords, index, jnp.ones(num_points, terms.dtype))]
        if shared:
            groups += list(shared_groups)
        else:
            groups += [gather(terms, inputs, coords, i, m) for i, m in conditions]
        w, steps, converged, residual = solve_rows(
            rows, tuple(groups), num_basis, solver=solver, adjoint=constraint.adjoint,
            max_steps=constraint.max_steps,
        )
        field = jnp.einsum("n,ng->g", combination_weights(w, rows.particular), terms[0])
        return field, ConstraintInfo(steps, converged, residual, w)

    return expert


def _start(constraint, inputs, name):
    """What every solve starts from: `(names, orders, inputs, fields, given, num_basis)`,
    the backbone's fields (and terms, if it gives them) and the count of solved weights."""
    _check_x64(name)
    names = term_names(constraint.pde)
    orders = tuple(parse_term(n, constraint.pde.axes) for n in names)
    inputs = jnp.asarray(inputs)
    fields, given = _basis_terms(constraint, inputs, names)
    num_basis = fields.shape[0] - constraint.particular  # the solved weights
    if num_basis < 1:
        raise ValueError(
            "`basis_net` must return the particular field and at least one basis field "
            f"(particular=True), got {fields.shape[0]} field(s)."
        )
    return names, orders, inputs, fields, given, num_basis


def _constrain(constraint, inputs, key, counts, shared_rows, parallel, mesh, name):
    """The constrained field and info of `E = prod(counts)` experts (one: the global layer)."""
    pde, scheme = constraint.pde, constraint.derivatives
    names, orders, inputs, fields, given, num_basis = _start(constraint, inputs, name)
    grid, counts = _check_grid(constraint, fields, inputs, counts, orders, given is not None)
    num_experts = math.prod(counts)
    whole, block = _geometry(constraint, grid, counts)

    values = jnp.asarray(inputs, jnp.float64)
    coords = grid_coordinates(pde, grid, scheme)
    masks = region_masks(pde, grid)
    eligible = partition_numpy(masks["pde"], counts).reshape(num_experts, -1)
    local = _condition_rows(masks, counts, pde.conditions)
    shared = shared_rows == "global" and num_experts > 1
    _check_rows(
        constraint, num_basis, eligible, local,
        [int(masks[r].sum()) for r in pde.conditions] if shared else None,
    )
    global_groups = (
        _global_groups(scheme, fields, given, orders, whole, values, coords, masks, pde.conditions)
        if shared else ()
    )
    key = jr.PRNGKey(0) if key is None else key
    data = (
        _block_terms(scheme, fields, given, orders, counts, block),
        partition(values, counts).reshape(num_experts, values.shape[0], -1),
        jnp.asarray(_block_coordinates(coords, counts)),
        jnp.asarray(eligible),
        tuple((jnp.asarray(i), jnp.asarray(m)) for i, m in local),
        jr.split(key, num_experts),
        jax.tree_util.tree_map(
            lambda leaf: jnp.broadcast_to(leaf, (num_experts, *leaf.shape)), global_groups
        ),
    )
    solver = _resolve_solver(constraint.solver, pde, parallel)
    expert = _expert_solver(constraint, pde, names, num_basis, solver, shared)
    mapped = jax.vmap(expert) if parallel == "vmap" else shard_experts(expert, mesh)
    blocks, info = mapped(data)
    block_shape = tuple(n // c for n, c in zip(grid, counts))
    field = stitch(blocks.reshape(num_experts, 1, *block_shape), counts)
    field = _report(field, info.converged, constraint.on_failure, name, constraint.max_steps)
    return field, info


def _block_coordinates(coords: np.ndarray, counts) -> np.ndarray:
    """The coordinates `(d, *N)` of each block, `(E, d, G_b)`."""
    blocks = np.stack([partition_numpy(c, counts) for c in coords], axis=1)
    return blocks.reshape(blocks.shape[0], blocks.shape[1], -1)


# -- coupled experts -------------------------------------------------------------


def _interface_nodes(shape: Sequence[int], counts: Sequence[int], periodic: Sequence[bool]) -> np.ndarray:
    """The nodes of a block's edges that face another block, `(*N)` booleans.

    Along a split axis, the first and last node of every block, except the
    ends of a bounded axis (which face no block). A three-point stencil at
    such a node reads the neighbouring block, so the PDE rows there tie the
    experts on both sides together.
    """
    mask = np.zeros(tuple(shape), bool)
    for axis, (n, c, wraps) in enumerate(zip(shape, counts, periodic)):
        if c == 1:
            continue
        index, size = np.arange(n), n // c
        edge = (index % size == 0) | (index % size == size - 1)
        if not wraps:
            edge &= (index != 0) & (index != n - 1)
        view = [1] * len(shape)
        view[axis] = n
        mask |= edge.reshape(view)
    return mask


def _coupled_groups(terms, values, coords, node_index, key, eligible, num_points, local):
    """The row groups of every expert, `(E, ...)`: its points with its interface
    nodes, then its condition rows; indices are flat nodes of the whole grid."""
    interface_index, interface_mask = local[0]

    def expert(nodes, key, eligible, interface, conditions):
        points = nodes[sample_points(key, eligible, num_points)]
        index = jnp.concatenate([points, nodes[interface[0]]])
        mask = jnp.concatenate([jnp.ones(num_points, terms.dtype), interface[1]])
        groups = [gather(terms, values, coords, index, mask)]
        groups += [gather(terms, values, coords, nodes[i], m) for i, m in conditions]
        return tuple(groups)

    return jax.vmap(expert)(
        node_index, key, eligible, (interface_index, interface_mask), tuple(local[1:])
    )


def _constrain_coupled(constraint, inputs, key, counts):
    """The field and info of `E` experts whose weights are solved together."""
    name = "MixtureOfExperts"
    pde, scheme = constraint.pde, constraint.derivatives
    names, orders, inputs, fields, given, num_basis = _start(constraint, inputs, name)
    if given is not None:
        raise ValueError(
            "`coupling='interface'` differentiates the stitched field on the whole grid: "
            "`basis_net` must return basis fields (N, *grid), not a dict of terms."
        )
    grid, counts = _check_grid(constraint, fields, inputs, counts, orders, False)
    num_experts = math.prod(counts)
    particular = int(constraint.particular)
    whole, _ = _geometry(constraint, grid, counts)
    masks = region_masks(pde, grid)
    interface = _interface_nodes(grid, counts, pde.periodic) & masks["pde"]
    eligible = partition_numpy(masks["pde"] & ~interface, counts).reshape(num_experts, -1)
    local = _condition_rows({**masks, "interface": interface}, counts,
                            ("interface",) + tuple(pde.conditions))
    _check_coupled_rows(constraint, num_basis * num_experts, eligible, local)

    # expert e's fields: the basis on its block, zero elsewhere; the stitched
    # field sum_e sum_n w_en phi_n 1_e is differentiated on the whole grid
    owner = partition_numpy(np.arange(math.prod(grid)).reshape(grid), counts)
    node_index = owner.reshape(num_experts, -1)
    ownership = np.zeros((num_experts, math.prod(grid)))
    ownership[np.arange(num_experts)[:, None], node_index] = 1.0
    ownership = jnp.asarray(ownership.reshape(num_experts, 1, *grid))
    free = (ownership * fields[particular:][None]).reshape(num_experts * num_basis, *grid)
    stitched = jnp.concatenate([fields[:particular], free])
    terms = scheme.terms(stitched, orders, *zip(*whole)).reshape(len(orders), stitched.shape[0], -1)

    values = jnp.asarray(inputs, jnp.float64).reshape(inputs.shape[0], -1)
    coords = jnp.asarray(grid_coordinates(pde, grid, scheme).reshape(len(grid), -1))
    key = jr.PRNGKey(0) if key is None else key
    groups = _coupled_groups(
        terms, values, coords, jnp.asarray(node_index), jr.split(key, num_experts),
        jnp.asarray(eligible), constraint.num_points,
        [(jnp.asarray(i), jnp.asarray(m)) for i, m in local],
    )
    rows = Rows(pde, ("pde",) + tuple(pde.conditions), names, 0.0, constraint.particular)
    dynamic, static = eqx.partition(rows, eqx.is_array)
    ridge = constraint.ridge

    def physical(w, args):
        dyn, groups = args
        one = eqx.combine(dyn, static)
        return jax.vmap(lambda g: one.physical(w, g))(groups)

    def residual(w, args):
        r = physical(w, args).reshape(-1)
        return jnp.concatenate([r, ridge * w]) if ridge > 0 else r

    solver = _resolve_solver(constraint.solver, pde, "vmap")
    w, steps, converged = least_squares(
        residual, jnp.zeros(num_experts * num_basis, terms.dtype), (dynamic, groups),
        solver=solver, adjoint=constraint.adjoint, max_steps=constraint.max_steps,
    )
    field = jnp.einsum("n,ng->g", combination_weights(w, constraint.particular), terms[0])
    field = _report(field.reshape(1, *grid), converged, constraint.on_failure, name,
                    constraint.max_steps)
    info = ConstraintInfo(
        jnp.broadcast_to(steps, (num_experts,)), jnp.broadcast_to(converged, (num_experts,)),
        physical(w, (dynamic, groups)), w.reshape(num_experts, num_basis),
    )
    return field, info


def _check_coupled_rows(constraint, num_weights, eligible, local):
    _check_points(constraint, eligible, " off its interfaces")
    rows = eligible.shape[0] * constraint.num_points + sum(int(m.sum()) for _, m in local)
    if constraint.ridge == 0 and rows < num_weights:
        raise ValueError(
            f"`ridge` = 0 needs at least as many rows as weights ({num_weights}, the experts' "
            f"together), but the coupled solve has only {rows} rows: use ridge > 0 or more points."
        )
