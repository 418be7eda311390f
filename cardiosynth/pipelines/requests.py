"""Checks of the sampler settings every pipeline takes, with one wording for every generator."""

from __future__ import annotations

import numpy as np


def check_sampling(seed, steps, cfg, max_steps: int) -> None:
    """``seed`` a whole number >= 0, ``steps`` a whole number in 1..max_steps, ``cfg`` (guidance) in 1..20."""
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number; got {seed!r}")
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= max_steps:
        raise ValueError(f"steps must be a whole number from 1 to {max_steps}; got {steps!r}")
    if not (np.isfinite(cfg) and 1.0 <= cfg <= 20.0):
        raise ValueError(f"cfg (guidance scale) must be between 1 and 20; got {cfg!r}")
