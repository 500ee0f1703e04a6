"""[task] builders of neural spectral methods (none yet: the spectral
presets are planned as `nsm-poisson`, `nsm-reaction-diffusion` and
`nsm-navier-stokes`)."""

from __future__ import annotations

TASKS: dict = {}
