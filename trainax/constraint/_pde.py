"""PDEs for hard constraints: residuals written pointwise in their terms."""

from __future__ import annotations

import abc
import numbers
from typing import Callable, Mapping, Optional, Sequence

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float

Values = Mapping[str, Float[Array, ""]]


def parse_term(name: str, axes: Sequence[str]) -> tuple[int, ...]:
    """The derivative orders per axis of a term name: `"u_xx"` -> `(0, 2)` on `("t", "x")`."""
    if not isinstance(name, str):
        raise TypeError(f"`terms` must hold strings such as 'u_xx', got {name!r}.")
    orders = [0] * len(axes)
    if name == "u":
        return tuple(orders)
    if not name.startswith("u_") or len(name) == 2:
        raise ValueError(
            f"`terms` entries must be 'u' or 'u_' followed by axis names {tuple(axes)} "
            f"(such as 'u_t' or 'u_xx'), got {name!r}."
        )
    for letter in name[2:]:
        if letter not in axes:
            raise ValueError(
                f"`terms`: {name!r} differentiates along {letter!r}, which is not one of "
                f"the axes {tuple(axes)}."
            )
        orders[axes.index(letter)] += 1
    return tuple(orders)


def _region_axis(region: str, axes: Sequence[str]) -> tuple[int, int]:
    """`(axis, index)` of a condition region: `"initial"`, `"x_low"` or `"x_high"`."""
    if region == "initial":
        return 0, 0
    name, _, end = region.rpartition("_")
    if name in axes and end in ("low", "high"):
        return axes.index(name), 0 if end == "low" else -1
    raise ValueError(
        f"`conditions` entries must be 'initial' or '<axis>_low' / '<axis>_high' with an "
        f"axis of {tuple(axes)}, got {region!r}."
    )


class AbstractPDE(eqx.Module):
    """A PDE on a box, with its initial and boundary conditions, written pointwise.

    The box is `[0, extent_0] x ... x [0, extent_{d-1}]`; axis 0 is time
    when the PDE has an `"initial"` condition. A field `u` lives on the
    nodes of a grid over the box; a
    [derivative scheme][trainax.constraint.AbstractDerivatives] computes the
    PDE's `terms` (`"u"`, `"u_t"`, `"u_xx"`, ...: `u` differentiated once
    per letter along the named axis) at every node. The residual at a node
    is then a pointwise function of those values, of the model's inputs at
    the node and of its coordinates: a hard-constraint layer evaluates it at
    a few sampled nodes, a physics-informed loss at all of them.

    Nodes belong to regions. A condition region is `"initial"` (the first
    node along axis 0), `"<axis>_low"` or `"<axis>_high"` (the first or last
    node along a bounded axis; boundary regions leave out the initial slice,
    so boundary conditions hold for `t > 0`). The PDE holds on every node
    outside the condition regions.

    Subclasses provide the attributes below and `pde_residual` (plus
    `condition_residual` when they have conditions); see
    [`PDE`][trainax.constraint.PDE] for one built from functions and
    [`DiffusionSorption`][trainax.constraint.DiffusionSorption].

    **Attributes:**

    - `axes`: one single-letter name per axis, such as `("t", "x")`.
    - `extent`: the length of the box per axis.
    - `periodic`: per axis, whether it is periodic (no boundary nodes at its ends).
    - `terms`: the term names the residuals read.
    - `conditions`: the condition region names.
    - `linear`: whether every residual is affine in the terms (then the
      least-squares solve is linear).

    ```python
    pde = tx.constraint.DiffusionSorption()
    isinstance(pde, tx.constraint.AbstractPDE), pde.axes, pde.conditions
    # True, ('t', 'x'), ('initial', 'x_low', 'x_high')
    ```
    """

    axes: eqx.AbstractVar[tuple[str, ...]]
    extent: eqx.AbstractVar[tuple[float, ...]]
    periodic: eqx.AbstractVar[tuple[bool, ...]]
    terms: eqx.AbstractVar[tuple[str, ...]]
    conditions: eqx.AbstractVar[tuple[str, ...]]
    linear: eqx.AbstractVar[bool]

    def __check_init__(self):
        axes = tuple(self.axes)
        if not axes or not all(isinstance(a, str) and len(a) == 1 for a in axes):
            raise ValueError(f"`axes` must be single letters such as ('t', 'x'), got {axes!r}.")
        if len(set(axes)) != len(axes):
            raise ValueError(f"`axes` must be distinct, got {axes!r}.")
        if len(self.extent) != len(axes) or len(self.periodic) != len(axes):
            raise ValueError(
                f"`extent` and `periodic` must hold one entry per axis ({len(axes)}), got "
                f"{len(self.extent)} and {len(self.periodic)}."
            )
        for length in self.extent:
            if not isinstance(length, numbers.Real) or not length > 0:
                raise ValueError(f"`extent` must hold positive lengths, got {self.extent!r}.")
        for term in self.terms:
            parse_term(term, axes)
        for region in self.conditions:
            axis, _ = _region_axis(region, axes)
            if region != "initial" and self.periodic[axis]:
                raise ValueError(
                    f"`conditions`: {region!r} is a boundary of the periodic axis "
                    f"{axes[axis]!r}, which has none."
                )
        if "initial" in self.conditions and self.periodic[0]:
            raise ValueError("`periodic`: axis 0 carries the initial condition and must be bounded.")

    @abc.abstractmethod
    def pde_residual(
        self, values: Values, inputs: Float[Array, " C"], coords: Float[Array, " d"]
    ) -> Float[Array, ""]:
        """The PDE residual at one node.

        **Arguments:**

        - `values`: the value of every term of `terms` at the node, by name.
        - `inputs`: the model's input channels at the node, `(C,)`.
        - `coords`: the node's coordinates, `(d,)`.

        **Returns:** a scalar, zero where the PDE holds.
        """

    def condition_residual(
        self,
        region: str,
        values: Values,
        inputs: Float[Array, " C"],
        coords: Float[Array, " d"],
    ) -> Float[Array, ""]:
        """The residual of the condition of `region` at one of its nodes (as `pde_residual`)."""
        raise NotImplementedError(f"{type(self).__name__} has no condition on {region!r}.")

    @property
    def orders(self) -> tuple[tuple[int, ...], ...]:
        """The derivative orders per axis of each term, in the order of `terms`."""
        return tuple(parse_term(term, self.axes) for term in self.terms)


class PDE(AbstractPDE):
    """A PDE from pointwise residual functions.

    Each function is called at one node as `fn(values, inputs, coords)`,
    where `values` maps every name of `terms` to its value there (see
    [`AbstractPDE`][trainax.constraint.AbstractPDE]).

    **Arguments:**

    - `axes`: one letter per axis, time first, such as `("t", "x")`.
    - `extent`: the box length per axis.
    - `terms`: the term names the residuals read, such as `("u", "u_t", "u_x")`.
    - `residual`: the PDE residual function.
    - `conditions`: a dict from region name (`"initial"`, `"x_low"`,
      `"x_high"`, ...) to the residual function of its condition.
    - `periodic`: per axis, whether it is periodic (default: none).
    - `linear`: whether every residual is affine in the terms (default `False`).

    ```python
    advection = tx.constraint.PDE(
        ("t", "x"), (1.0, 1.0), ("u", "u_t", "u_x"),
        residual=lambda v, inputs, coords: v["u_t"] + v["u_x"],
        conditions={"initial": lambda v, inputs, coords: v["u"] - inputs[0]},
        periodic=(False, True), linear=True,
    )
    advection.orders   # ((0, 0), (1, 0), (0, 1))
    ```
    """

    axes: tuple[str, ...] = eqx.field(static=True)
    extent: tuple[float, ...] = eqx.field(static=True)
    periodic: tuple[bool, ...] = eqx.field(static=True)
    terms: tuple[str, ...] = eqx.field(static=True)
    conditions: tuple[str, ...] = eqx.field(static=True)
    linear: bool = eqx.field(static=True)
    residual: Callable
    condition_fns: tuple[Callable, ...]

    def __init__(
        self,
        axes: Sequence[str],
        extent: Sequence[float],
        terms: Sequence[str],
        *,
        residual: Callable,
        conditions: Optional[Mapping[str, Callable]] = None,
        periodic: Optional[Sequence[bool]] = None,
        linear: bool = False,
    ):
        self.axes = tuple(axes)
        self.extent = tuple(float(e) for e in extent)
        self.periodic = (False,) * len(self.axes) if periodic is None else tuple(periodic)
        if not all(isinstance(p, bool) for p in self.periodic):
            raise TypeError(f"`periodic` must hold bools, got {self.periodic!r}.")
        self.terms = tuple(terms)
        if not callable(residual):
            raise TypeError(f"`residual` must be callable as fn(values, inputs, coords), got {residual!r}.")
        conditions = dict(conditions or {})
        for region, fn in conditions.items():
            if not callable(fn):
                raise TypeError(f"`conditions[{region!r}]` must be callable, got {fn!r}.")
        self.conditions = tuple(conditions)
        self.condition_fns = tuple(conditions.values())
        if not isinstance(linear, bool):
            raise TypeError(f"`linear` must be a bool, got {linear!r}.")
        self.linear = linear
        self.residual = residual

    def pde_residual(self, values, inputs, coords):
        return self.residual(values, inputs, coords)

    def condition_residual(self, region, values, inputs, coords):
        return self.condition_fns[self.conditions.index(region)](values, inputs, coords)


def region_masks(pde: AbstractPDE, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Boolean masks of shape `shape`, one per condition region and `"pde"` for the rest."""
    masks = {}
    initial = np.zeros(shape, bool)
    if "initial" in pde.conditions:
        initial[0] = True
    for region in pde.conditions:
        if region == "initial":
            masks[region] = initial
            continue
        axis, index = _region_axis(region, pde.axes)
        mask = np.zeros(shape, bool)
        np.moveaxis(mask, axis, 0)[index] = True
        masks[region] = mask & ~initial
    masks["pde"] = ~np.any(np.stack([np.zeros(shape, bool), *masks.values()]), axis=0)
    return masks
