"""Real pixels, warped: an exemplar's real ED frame deformed into a new heart and moved through a cycle.

A rendered cine is ``frames[t](x) = ED(q_t(x))`` where ED is one real end-diastolic frame (an exemplar of the
anatomy bank, or an uploaded heart) and ``q_t`` composes, without resampling pixels twice:

- the anatomy map ``a`` (new heart -> exemplar: its LV and RV grown or shrunk toward the requested LVEDV,
  LVM and RVEDV, plus a small smooth random deformation for novelty), and
- the motion ``u_t``: either the exemplar's own registered motion, scaled so the slice contracts as the
  requested LVEF asks (``motion_in="exemplar"``: q_t = a(x) + m u_t(a(x))), or a motion drawn for the new heart
  by a generator (``motion_in="new"``: q_t = a(x + v_t(x))).

The pixels are then read once by :func:`cardiosynth.render.sampling.resample` (cubic B-spline, noise
restored, 8-bit levels, zero outside the exemplar's field of view, like a real cine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from cardiosynth.render.bank import AnatomyBank
from cardiosynth.render.fields import (
    grid_sample_coordinates,
    LV_CAVITY,
    anatomy_deformation,
    compose,
    motion_displacement,
    novelty_field,
)
from cardiosynth.render.sampling import identity_positions, resample

#: (scale, label, power): a structure's area grows as its scale to this power (radii for the cavities, area for the ring)
AREA_CORRECTED = (("lv_cavity_scale", 3, 2.0), ("myocardium_area_scale", 2, 1.0), ("rv_scale", 1, 2.0))
MOTION_SCALE_RANGE = (0.0, 2.5)  # beyond 2.5x its own motion an exemplar's tissue tears


@dataclass(frozen=True)
class RenderSettings:
    """How frames are rendered (chosen on val, reports/renderer/README.md)."""

    kernel: str = "bspline"
    restore_noise: bool = True
    novelty_px: float = 1.0  # SD of the random smooth deformation's control points (4 x 4 grid), pixels
    deform_anatomy: bool = True  # grow / shrink the exemplar toward the requested LVEDV, LVM, RVEDV


def slice_ejection(ed_mask: np.ndarray, es_mask: np.ndarray) -> float | None:
    """1 - LV cavity area at ES / at ED on one slice (None without an LV cavity at ED)."""
    ed_area = float((ed_mask == LV_CAVITY).sum())
    if ed_area < 4:
        return None
    return float(np.clip(1 - (es_mask == LV_CAVITY).sum() / ed_area, 0.0, 0.95))


def motion_scale(exemplar_lvef: float, requested_lvef: float, slice_fraction: float | None) -> float:
    """Factor m on an exemplar's displacements so its slice contracts as the requested LVEF asks.

    The slice's residual ES area (1 - its ejection) is scaled by the patients' residual volumes (1 - EF), and m
    is read off a circular cavity whose radius shrinks by m times the exemplar's shrinkage:
    1 - e = (1 - m d)^2 with d the exemplar's radial shrinkage."""
    exemplar, requested = exemplar_lvef / 100.0, requested_lvef / 100.0
    e_x = exemplar if slice_fraction is None else slice_fraction
    residual = float(np.clip((1 - e_x) * (1 - requested) / max(1 - exemplar, 0.02), 0.02, 1.0))
    d_x = 1 - np.sqrt(1 - e_x)
    if d_x < 1e-3:
        return 1.0
    return float(np.clip((1 - np.sqrt(residual)) / d_x, *MOTION_SCALE_RANGE))


def structure_areas(mask: np.ndarray, field: torch.Tensor) -> dict[int, float]:
    """Pixel area of each label of ``mask`` after the map ``field`` (new heart -> exemplar), by bilinear reading
    of each label's indicator (one grid_sample for the three labels)."""
    height, width = mask.shape
    positions = (identity_positions(height, width) + field).float()
    grid = grid_sample_coordinates(positions, height, width)
    labels = (1, 2, 3)
    indicators = torch.from_numpy(np.stack([(mask == k) for k in labels]).astype(np.float32))[:, None]
    read = F.grid_sample(indicators, grid[None].expand(len(labels), -1, -1, -1), mode="bilinear",
                         padding_mode="border", align_corners=False)
    return {k: float((read[i, 0] > 0.5).sum()) for i, k in enumerate(labels)}


class Renderer:
    """Renders cines from the anatomy bank (or any real ED frame) and per-frame motion."""

    def __init__(self, bank: AnatomyBank, settings: RenderSettings = RenderSettings()):
        self.bank, self.settings = bank, settings

    @property
    def size(self) -> int:
        return self.bank.config.size

    def anatomy_map(self, index: int, request: Mapping[str, float], generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        """Displacement (H, W, 2) new heart -> exemplar ``index`` toward the request's LVEDV, LVM, RVEDV, plus
        novelty; and the scales used.

        The novelty field changes areas too (a 0.5 px shift of control points 21 px apart is a ~5 % change of
        length), so the scales are corrected once: the exemplar's masks are carried through the whole map, and
        each structure's scale is multiplied by the square root of (target area / area it reached)."""
        bank, settings = self.bank, self.settings
        mask = bank.ed_mask[index].numpy()
        targets = {"lv_cavity_scale": 1.0, "myocardium_area_scale": 1.0, "rv_scale": 1.0}
        if settings.deform_anatomy:
            for name, key, power in (("LVEDV", "lv_cavity_scale", 1 / 3), ("LVM", "myocardium_area_scale", 2 / 3),
                                     ("RVEDV", "rv_scale", 1 / 3)):
                if name in request and np.isfinite(request[name]):
                    targets[key] = float((float(request[name]) / max(bank.phenotype(index, name), 1e-3)) ** power)
        novelty = novelty_field(self.size, settings.novelty_px, generator)
        scales = dict(targets)
        field = anatomy_deformation(mask, **scales) + novelty
        if settings.novelty_px > 0:
            reached = structure_areas(mask, field)
            for key, label, area_power in AREA_CORRECTED:
                wanted = (mask == label).sum() * targets[key] ** area_power
                if reached[label] > 4 and wanted > 4:
                    scales[key] *= float(np.clip((wanted / reached[label]) ** (1 / area_power), 0.8, 1.25))
            field = anatomy_deformation(mask, **scales) + novelty
        return field, {k: round(v, 4) for k, v in scales.items()}

    def exemplar_motion(self, index: int, requested_lvef: float | None) -> tuple[torch.Tensor, float]:
        """Exemplar ``index``'s registered control grids (T, 2, g, g), scaled for ``requested_lvef``, and m.

        Amplified motion (m > 1) amplifies the registration's own folds too, which can show as smeared tissue at
        end-systole; limiting m where the map would compress the heart more than the exemplar's own registration
        read worse on val (C2ST CNN 0.63 against 0.56, LVEF MAE 8.0 against 7.3), so m is not limited beyond
        :data:`MOTION_SCALE_RANGE` (reports/renderer/README.md)."""
        bank = self.bank
        control = bank.control[index].double()
        m = 1.0
        if requested_lvef is not None and np.isfinite(requested_lvef):
            fraction = slice_ejection(bank.ed_mask[index].numpy(), bank.es_mask[index].numpy())
            m = motion_scale(bank.phenotype(index, "LVEF"), float(requested_lvef), fraction)
        return control * m, m

    def positions(self, anatomy: torch.Tensor, control: torch.Tensor, motion_in: str = "exemplar") -> torch.Tensor:
        """Per-frame sampling positions (T, H, W, 2) in the source frame: anatomy map and motion composed."""
        identity = identity_positions(self.size)
        motion = motion_displacement(control, self.size)  # (T, H, W, 2)
        if motion_in == "exemplar":
            moved = identity + anatomy  # new heart -> exemplar
            return moved + compose(motion, moved[None].expand_as(motion))
        if motion_in == "new":
            moved = identity + motion  # motion in the new heart's own frame
            return moved + compose(anatomy[None].expand_as(motion), moved)
        raise ValueError(f"motion_in must be 'exemplar' or 'new'; got {motion_in!r}")

    def render(self, source: np.ndarray, valid: np.ndarray, positions: torch.Tensor,
               generator: torch.Generator) -> np.ndarray:
        """One real frame read at ``positions`` -> frames (T, H, W) float32 in [0, 1]."""
        s = self.settings
        return resample(source, positions, valid, kernel=s.kernel, restore_noise=s.restore_noise, generator=generator)

    def render_exemplar(self, index: int, anatomy: torch.Tensor, control: torch.Tensor, generator: torch.Generator,
                        motion_in: str = "exemplar") -> np.ndarray:
        return self.render(self.bank.ed_frame(index), self.bank.valid_mask(index),
                           self.positions(anatomy, control, motion_in), generator)

