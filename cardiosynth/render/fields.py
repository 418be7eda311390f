"""Displacement fields in pixels: the motion of a registered cine, and the smooth anatomical deformation that
turns an exemplar heart into a new one. Everything is a sampling map: output pixel -> where in the source frame
its value is read (row, col), so composing maps costs no extra interpolation of pixels.

- :func:`motion_positions`: a cine's control grids (T, 2, g, g), from registration or a generator's motion
  code, -> per-frame positions. Frame t reads the ED frame at x + u_t(x) (``cardiosynth.models.motion``).
- :func:`anatomy_deformation`: the exemplar's LV (cavity and myocardium, radially about the LV centre) and RV
  (about its own centre) grown or shrunk toward requested sizes, fading to identity away from the heart.
- :func:`novelty_field`: a seeded, smooth random deformation (a coarse grid, bicubic) that makes the heart
  differ from its exemplar.
- :func:`compose`: read a field at moved positions (bilinear: the fields are smooth).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from cardiosynth.models.motion import displacement
from cardiosynth.render.sampling import identity_positions

LV_CAVITY, MYOCARDIUM, RV_CAVITY = 3, 2, 1  # ACDC labels
FADE_PX = 6.0  # distance over which the anatomical deformation fades back to identity outside the heart
SCALE_RANGE = (0.6, 1.6)  # linear scale factors an anatomy deformation may apply (beyond: tears and folds)


def motion_displacement(control: torch.Tensor, size: int) -> torch.Tensor:
    """Control grids (..., T, 2, g, g) in grid_sample's normalised units -> displacement (..., T, H, W, 2) in
    pixels (row, col)."""
    shape = control.shape[:-3]
    flat = control.reshape(1, -1, *control.shape[-3:]).double()
    dense = displacement(flat, size)[0].flip(-1) * (size / 2.0)  # normalised (x, y) -> pixels (row, col)
    return dense.reshape(*shape, size, size, 2)


def motion_positions(control: torch.Tensor, size: int) -> torch.Tensor:
    """Control grids (T, 2, g, g) -> per-frame sampling positions (T, H, W, 2) in pixels."""
    return identity_positions(size) + motion_displacement(control, size)


def grid_sample_coordinates(positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel positions (..., 2) as (row, col) -> grid_sample's normalised (x, y), align_corners=False."""
    return torch.stack([(positions[..., 1] + 0.5) * 2 / width - 1, (positions[..., 0] + 0.5) * 2 / height - 1], -1)


def compose(field: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """A displacement ``field`` (..., H, W, 2) read at ``positions`` (..., H, W, 2) (bilinear, border repeated)."""
    height, width = field.shape[-3:-1]
    lead = torch.broadcast_shapes(field.shape[:-3], positions.shape[:-3])
    field = field.expand(*lead, height, width, 2).reshape(-1, height, width, 2).permute(0, 3, 1, 2)
    grid = positions.expand(*lead, height, width, 2).reshape(-1, height, width, 2)
    normalised = grid_sample_coordinates(grid, height, width)
    out = F.grid_sample(field.double(), normalised.double(), mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(*lead, height, width, 2)


def _centre(mask: np.ndarray) -> np.ndarray | None:
    return np.array(ndimage.center_of_mass(mask)) if mask.any() else None


def radial_map(radius: np.ndarray, pairs: list[tuple[float, float]]) -> np.ndarray:
    """Piecewise-linear map of output radius -> source radius through (output, source) knots from 0, and back
    to identity ``FADE_PX`` beyond the last knot."""
    outs, sources = [0.0], [0.0]
    for out, source in pairs:
        outs.append(max(out, outs[-1] + 1e-3))
        sources.append(max(source, sources[-1] + 1e-3))
    fade = max(outs[-1], sources[-1]) + FADE_PX
    outs.append(fade)
    sources.append(fade)
    mapped = np.interp(radius, outs, sources)
    return np.where(radius > fade, radius, mapped)


def anatomy_deformation(ed_mask: np.ndarray, lv_cavity_scale: float = 1.0, myocardium_area_scale: float = 1.0,
                        rv_scale: float = 1.0, smooth_px: float = 1.5) -> torch.Tensor:
    """Displacement (H, W, 2) in pixels mapping the new heart's pixels into the exemplar's, from its ED mask.

    The LV is treated as concentric rings about its centre: the cavity's mean radius is scaled by
    ``lv_cavity_scale`` and the myocardial ring's area by ``myocardium_area_scale``; the RV cavity is scaled by
    ``rv_scale`` about its centre, weighted by a smooth RV region that avoids the LV. Both fade to identity a
    few pixels outside the heart, and the sum is smoothed (Gaussian, ``smooth_px``) so no edge is made."""
    for name, value in (("lv_cavity_scale", lv_cavity_scale), ("myocardium_area_scale", myocardium_area_scale),
                        ("rv_scale", rv_scale)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number; got {value!r}")
    ed_mask = np.asarray(ed_mask)
    points = identity_positions(*ed_mask.shape).numpy()
    field = np.zeros(ed_mask.shape + (2,))
    lv = np.isin(ed_mask, (LV_CAVITY, MYOCARDIUM))
    centre = _centre(ed_mask == LV_CAVITY) if (ed_mask == LV_CAVITY).any() else _centre(lv)
    lv_weight = np.zeros(ed_mask.shape)
    if centre is not None:
        cavity_r = np.sqrt((ed_mask == LV_CAVITY).sum() / np.pi)
        outer_r = np.sqrt(lv.sum() / np.pi)
        s = float(np.clip(lv_cavity_scale, *SCALE_RANGE))
        new_cavity = cavity_r * s
        ring_scale = float(np.clip(myocardium_area_scale, SCALE_RANGE[0] ** 2, SCALE_RANGE[1] ** 2))
        new_outer = np.sqrt(new_cavity ** 2 + (outer_r ** 2 - cavity_r ** 2) * ring_scale)
        offset = points - centre
        radius = np.linalg.norm(offset, axis=-1)
        source_radius = radial_map(radius, [(new_cavity, cavity_r), (new_outer, outer_r)])
        with np.errstate(invalid="ignore", divide="ignore"):
            factor = np.where(radius > 1e-6, source_radius / np.maximum(radius, 1e-6), 1 / s)
        field += offset * (factor - 1)[..., None]
        lv_weight = ndimage.gaussian_filter(lv.astype(float), 2.0)
    rv = ed_mask == RV_CAVITY
    rv_centre = _centre(rv)
    if rv_centre is not None and rv_scale != 1.0:
        s = float(np.clip(rv_scale, *SCALE_RANGE))
        region = ndimage.gaussian_filter(ndimage.binary_dilation(rv, iterations=3).astype(float), 2.0)
        weight = np.clip(region / max(region.max(), 1e-6), 0, 1) * (1 - np.clip(lv_weight * 2, 0, 1))
        field += (points - rv_centre) * (1 / s - 1) * weight[..., None]
    if smooth_px > 0:
        field = np.stack([ndimage.gaussian_filter(field[..., c], smooth_px) for c in range(2)], -1)
    return torch.from_numpy(field)


def novelty_field(size: int, amplitude_px: float, generator: torch.Generator, grid: int = 4) -> torch.Tensor:
    """A smooth random displacement (H, W, 2) in pixels: Gaussian control points (SD ``amplitude_px``) on a
    ``grid`` x ``grid`` lattice, bicubic upsampled. Seeded by ``generator``."""
    if amplitude_px == 0:
        return torch.zeros(size, size, 2, dtype=torch.float64)
    control = torch.randn(1, 2, grid, grid, generator=generator, dtype=torch.float32).double() * amplitude_px
    dense = F.interpolate(control, size=(size, size), mode="bicubic", align_corners=True)[0]
    return dense.permute(1, 2, 0)
