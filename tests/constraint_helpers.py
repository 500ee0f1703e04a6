"""Pieces shared by the constraint tests."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp


class Fixed(eqx.Module):
    """A 'backbone' that returns given basis fields (or a dict of their terms)."""

    fields: object

    def __call__(self, inputs):
        return self.fields


@eqx.filter_jit
def squared_output_and_grad(model, inputs, key):
    """`((sum u^2, (u, info)), grad)` of a constraint layer's output, by its solve."""

    def loss(model):
        u, info = model(inputs, key=key)
        return jnp.sum(u**2), (u, info)

    return eqx.filter_value_and_grad(loss, has_aux=True)(model)
