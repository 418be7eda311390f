"""Model card of the re-identification network (``weights/reid``), from its training summary (``extra``)."""

from __future__ import annotations

from cardiosynth.models.cards import ACDC_LICENCE


def model_card(summary: dict, command: str) -> str:
    return f"""# Re-identification network

A small CNN that embeds one short-axis frame so that frames of one patient lie close together (cosine
similarity), trained as a classifier of {summary['train_patients']} training patients on every frame of their
{summary['train_cines']} slice cines with shifts, smooth random deformations, gamma and noise. It is the instrument
of the privacy test (`cardiosynth.measure.reidentification`, `python -m evaluation.reidentification`): the
share of synthetic cines whose best match to a training patient scores above the 95th percentile of held-out
patients' best matches. It is a measuring instrument, not a guarantee: a cine it does not match can still
resemble its exemplar (the pixel nearest-neighbour distance is reported beside it).

Trained by `{command}` in {summary['minutes']} min (final loss {summary['final_loss']}). Held-out threshold
{summary.get('threshold', float('nan')):.4f}: the {summary.get('threshold_from', 'not fitted')}.

{ACDC_LICENCE}"""
