"""Implicit neural representations: FourierNet decoders and latent ODE dynamics."""

__all__: list[str] = []
