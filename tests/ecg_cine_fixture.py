"""A tiny but real ECG -> cine pipeline for the app's logic tests (fast, and independent of the bundled weights).

Randomly initialised small ECG MAE and flow, and the bundled phenotype -> cine chain for the anatomy (phenotype
VAE, MAR, frame autoencoder, motion model): every step of EcgToCine runs for real.
A random MAE's phase head finds no heartbeats, so :class:`OracleMAE` replaces its predicted phase with
neurokit2's phase of the same (normalised) signal at the token centres, what a perfectly trained phase head
would give; a flat line still has no heartbeat and still fails as a real model would.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from cardiosynth.ecg import Ecg, process_ecg
from cardiosynth.models.ecg_flow import EcgFlow, EcgFlowConfig, EcgFlowSampler
from cardiosynth.models.ecg_mae import EcgMAE, EcgMAEConfig, token_phase
from cardiosynth.pipelines import PhenotypeToCine
from cardiosynth.pipelines.ecg_to_cine import EcgToCine

TINY_MAE = EcgMAEConfig(width=32, depth=1, heads=2, stem=8)
TINY_FLOW = EcgFlowConfig(width=32, depth=1, heads=2, ecg_dim=32, canonical_es_fraction=0.38,
                          sampler=EcgFlowSampler(sampling_steps=2))


def short_run(recipe):
    """``recipe`` (a flow's or an MAE's, training.recipes) as the training tests run it: 2 epochs of batch 2,
    validated each epoch."""
    return dataclasses.replace(recipe, epochs=2, batch_size=2, eval_every=1, warmup_steps=1)


class OracleMAE(EcgMAE):
    """The random MAE's features, with neurokit2's phase as the 'predicted' phase."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, _ = super().encode(x)
        phases = []
        for signal in x.cpu().numpy():
            analysis = process_ecg(Ecg(signal.astype(np.float32)))
            phase, _ = token_phase(np.nan_to_num(analysis.phase), analysis.phase_valid, self.config.patch)
            phases.append(phase)
        return features, torch.from_numpy(np.stack(phases)).float()


def tiny_ecg_to_cine() -> EcgToCine:
    """The fake-but-real pipeline (2 sampling steps by default, to keep the tests quick)."""
    torch.manual_seed(0)
    return EcgToCine(OracleMAE(TINY_MAE).eval(), EcgFlow(TINY_FLOW).eval(), PhenotypeToCine.from_pretrained(),
                     spacing_mm=2.2, name="tiny_test_flow", sha="0" * 64)
