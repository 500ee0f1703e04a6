"""Spectral bases (Fourier, Chebyshev, tensor products), mollifiers and random fields."""

__all__: list[str] = []
