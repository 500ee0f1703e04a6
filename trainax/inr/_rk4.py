"""The classical fourth-order Runge-Kutta method as a diffrax solver."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import numpy as np

# The stages of the classical method; the error estimate compares it with the
# midpoint method on the same stages (b = (0, 1, 0, 0)), which is second order.
_TABLEAU = diffrax.ButcherTableau(
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    b_error=np.array([1 / 6, 1 / 3 - 1.0, 1 / 3, 1 / 6]),
    c=np.array([0.5, 0.5, 1.0]),
)


class RK4(diffrax.AbstractERK):
    """The classical fourth-order Runge-Kutta method (four stages), for diffrax.

    The default solver of [`LatentODE`][trainax.inr.LatentODE]: one step per
    frame, as in DINo. On a linear field `z' = A z` one step of size `h` is the
    Taylor polynomial `sum_{k <= 4} (h A)^k / k! z0`. Its error estimate (for
    adaptive step-size controllers) is the difference with the midpoint method
    on the same stages, of second order.

    **Arguments:** none.

    ```python
    import diffrax
    term = diffrax.ODETerm(lambda t, y, args: -y)
    solution = diffrax.diffeqsolve(term, tx.inr.RK4(), t0=0.0, t1=1.0, dt0=0.1,
                                   y0=jnp.array(1.0))
    solution.ys   # close to [exp(-1)]
    ```
    """

    tableau: ClassVar[diffrax.ButcherTableau] = _TABLEAU
    interpolation_cls: ClassVar[Callable[..., diffrax.ThirdOrderHermitePolynomialInterpolation]] = (
        diffrax.ThirdOrderHermitePolynomialInterpolation.from_k
    )

    def order(self, terms):
        del terms
        return 4
