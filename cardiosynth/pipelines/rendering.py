"""Requests in, cines of real pixels out: the default path of both pipelines.

A de novo cine is an exemplar of the anatomy bank (drawn from the request's seed among those nearest to its
LVEDV, LVM, RVEDV, LVEF and slice position), deformed toward the requested anatomy and away from its exemplar,
moved by a motion and rendered from its real ED frame (``cardiosynth.render``). The motion is either

- ``exemplar``: the exemplar's own registered motion, scaled so its slice contracts as the requested LVEF asks
  (for the ECG path: re-timed so end-systole falls at the ECG's QT / RR), or
- a generator's: the phenotype MAR (CPGG) or the ECG rectified flow (ECGFlowCMR) draws a motion code for the
  new heart's anatomy (its ED frame encoded by the frame autoencoder: encoded only, never decoded), which the
  motion model turns into control grids.

Which one a pipeline uses is measured on val (reports/renderer/README.md). Editing a real heart renders the
uploaded heart's own ED frame the same way. Every cine's ``source`` names the bank and the exemplar.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cardiosynth.cine import Cine
from cardiosynth.models.motion import register
from cardiosynth.pipelines.privacy import MAX_REDRAWS
from cardiosynth.render.bank import AnatomyBank
from cardiosynth.render.renderer import Renderer, RenderSettings
from cardiosynth.render.sampling import identity_positions, resample
from cardiosynth.weights import WeightsError

ANATOMY_REQUEST = ("LVEDV", "LVM", "RVEDV", "LVEF")


@dataclass
class RenderedHeart:
    """One new heart before motion: its exemplar, the anatomy map into the exemplar and the seed's generator."""

    exemplar: int
    anatomy: torch.Tensor  # (H, W, 2) pixels, new heart -> exemplar
    scales: dict
    generator: torch.Generator


class ExemplarRendering:
    """Anatomy from the bank, motion from the exemplar or a generator, pixels from the renderer."""

    def __init__(self, bank: AnatomyBank, settings: RenderSettings = RenderSettings(), privacy=None):
        self.bank, self.renderer, self.privacy = bank, Renderer(bank, settings), privacy
        self.name = f"anatomy_bank@{bank.sha256[:12]}" if hasattr(bank, "sha256") else "anatomy_bank"

    @property
    def settings(self) -> RenderSettings:
        return self.renderer.settings

    def hearts(self, conditions: pd.DataFrame, seed: int) -> list[RenderedHeart]:
        """One new heart per row of a conditions table (full phenotype sets + slice_position): the rows of one
        call draw in order from one generator seeded by ``seed``."""
        generator = torch.Generator().manual_seed(int(seed))
        out = []
        for _, row in conditions.iterrows():
            request = {n: float(row[n]) for n in ANATOMY_REQUEST if n in row}
            index = self.bank.choose(request, float(row["slice_position"]), generator)
            anatomy, scales = self.renderer.anatomy_map(index, request, generator)
            out.append(RenderedHeart(index, anatomy, scales, generator))
        return out

    def filtered(self, hearts: list[RenderedHeart], conditions: pd.DataFrame, seed: int,
                 max_redraws: int = MAX_REDRAWS) -> tuple[list[RenderedHeart], list[int], np.ndarray]:
        """Hearts the re-identification filter does not match to a training patient: each matched one is drawn
        again (a new exemplar and deformation, from a generator seeded by the seed, row and attempt) up to
        ``max_redraws`` times; returns the hearts, the redraws of each and their final scores."""
        if self.privacy is None:
            raise WeightsError("privacy_filter needs the re-identification network (weights/reid/)")
        hearts, redraws = list(hearts), [0] * len(hearts)
        scores, _ = self.privacy.scores(self.ed_frames(hearts))
        for row in range(len(hearts)):
            while scores[row] > self.privacy.threshold and redraws[row] < max_redraws:
                redraws[row] += 1
                again = self.hearts(conditions.iloc[[row]], seed=int(seed) * 1_000_003 + row * 1_009 + redraws[row])
                hearts[row] = again[0]
                scores[row] = self.privacy.scores(self.ed_frames(again))[0][0]
        matched = scores > self.privacy.threshold
        if matched.any():
            warnings.warn(f"{int(matched.sum())} of {len(hearts)} cines are still matched to a training patient by the "
                          f"re-identification network after {max_redraws} redraws (every rendered cine is made of a "
                          "training exemplar's pixels); they are kept and flagged (reid_matched)", stacklevel=3)
        return hearts, redraws, scores

    def ed_frames(self, hearts: list[RenderedHeart]) -> np.ndarray:
        """The new hearts' ED frames (N, H, W) (no motion, no noise restored: what the frame autoencoder encodes
        so a motion generator sees the anatomy it draws for)."""
        frames = []
        for heart in hearts:
            positions = identity_positions(self.renderer.size) + heart.anatomy
            frames.append(resample(self.bank.ed_frame(heart.exemplar), positions[None],
                                   self.bank.valid_mask(heart.exemplar), kernel=self.settings.kernel,
                                   restore_noise=False)[0])
        return np.stack(frames)

    def exemplar_motion(self, heart: RenderedHeart, lvef: float | None) -> tuple[torch.Tensor, float]:
        return self.renderer.exemplar_motion(heart.exemplar, lvef)

    def render(self, heart: RenderedHeart, control: torch.Tensor, motion_in: str, spacing_mm: float,
               slice_position: float, source: str, metadata: dict) -> Cine:
        """A Cine of the heart moved by ``control`` (T, 2, g, g); provenance in ``source`` and ``metadata``."""
        frames = self.renderer.render_exemplar(heart.exemplar, heart.anatomy, control, heart.generator, motion_in)
        exemplar = self.bank.exemplar_id(heart.exemplar)
        metadata = {**metadata, "exemplar": exemplar, "anatomy_bank": self.name, "anatomy_scales": heart.scales,
                    "derived_from": f"real training slice {exemplar} (ACDC, CC BY-NC-SA 4.0), deformed and moved"}
        return Cine(frames, (spacing_mm, spacing_mm), float(slice_position), self.bank.valid_mask(heart.exemplar),
                    source=f"{source}; exemplar {exemplar}", metadata=metadata)


def real_heart_motion(cine: Cine, motion_model) -> torch.Tensor:
    """An uploaded heart's own motion (T, 2, g, g): its frames registered to its ED frame on the full control
    grid, as the anatomy bank's exemplars were (300 Adam steps: ~2 s on 2 cores). Measured on val: the motion
    model's 50-step fit on its temporal modes reads C2ST 0.94 / 0.81 where the full registration reads 0.69 /
    0.77 (reports/renderer/README.md)."""
    frames = np.ascontiguousarray(cine.frames, np.float32)
    key = (hashlib.sha1(frames.tobytes()).hexdigest(), motion_model.config)
    if key not in _REGISTERED:  # the same heart edited to several values registers once
        with torch.inference_mode(False), torch.enable_grad():  # callers generate under no_grad; it descends
            _REGISTERED[key] = register(torch.from_numpy(frames[None]), motion_model.config)[0].double()
        while len(_REGISTERED) > 16:
            _REGISTERED.pop(next(iter(_REGISTERED)))
    return _REGISTERED[key].clone()


_REGISTERED: dict = {}  # the last hearts' registrations, by content hash (a dict keeps insertion order)


def strongest_motion_fraction(control: torch.Tensor) -> float | None:
    """Cycle fraction of the frame that moved most from ED (a real heart's end-systole, when no mask says);
    None for a heart that does not move (there is no end-systole to re-time)."""
    magnitude = control.pow(2).sum(1).mean(dim=(1, 2))
    if float(magnitude.max()) == 0.0:
        return None
    return int(torch.argmax(magnitude)) / len(control)
