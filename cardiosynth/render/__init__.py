"""Rendering from real pixels: every frame of a default-path cine is one real ED frame, resampled.

- :mod:`~cardiosynth.render.sampling`: the one resampler (cubic B-spline, noise restored, 8-bit levels).
- :mod:`~cardiosynth.render.fields`: displacement fields: motion from control grids, the anatomical
  deformation of an exemplar, novelty, composition.
- :mod:`~cardiosynth.render.bank`: the anatomy bank of real training exemplars (``weights/anatomy_bank``).
- :mod:`~cardiosynth.render.renderer`: exemplar + anatomy map + motion -> frames.
- :mod:`~cardiosynth.render.registration`: each cine's registered motion, cached.
"""
