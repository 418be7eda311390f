"""Model card of the ECG flow (``weights/ecg_flow``): training summary (``extra``) and the pairing statistics
of its pseudo-pairs (``reports/ecg_flow/pairing_statistics.csv``)."""

from __future__ import annotations

import pandas as pd

from cardiosynth.models.cards import ACDC_LICENCE
from cardiosynth.models.ecg_flow import EcgFlowConfig


def markdown_table(table: pd.DataFrame) -> str:
    rows = [[str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def model_card(config: EcgFlowConfig, recipe: dict, summary: dict, stats: pd.DataFrame, frame_ae, motion,
               mae_folder) -> str:
    """``recipe``: the training recipe as saved beside the weights (``config.json``'s ``recipe``)."""
    c, s, r = config, config.sampler, recipe  # short names keep the card's lines within 120 characters
    retiming = ("not re-timed: the flow sets end-systole itself." if c.canonical_es_fraction is None else
                f"every training cine was re-timed so that end-systole (the expert ES frame) falls at\n"
                f"  {c.canonical_es_fraction:g} of the cycle; sampling re-times the flow's cine from there to the "
                f"ECG's QT / RR\n  (`cardiosynth.retime`). The ECG's timing is set explicitly, not learned from the "
                "pairs.")
    train_stats = stats[stats["split"] == "train"].drop(columns="split") if "split" in stats else stats
    return f"""# CardioSynth ECG flow: ECG-conditioned rectified flow for a heart's motion (ECGFlowCMR)

**Trained on pseudo-pairs.** No public dataset pairs a 12-lead ECG with the same person's cine MRI, so each
training cine (ACDC) was paired with LUDB ECGs by a documented rule (`cardiosynth/data/pairing.py`): the same
diagnosis family and the closest systolic timing (ECG QT/RR vs the cine's end-systolic fraction of the cycle).
This model can learn timing and coarse, group-linked appearance from the ECG; it cannot know a patient's heart.

- What the ECG controls and what it does not: the flow draws the *motion code* (contraction pattern) for a
  given anatomy (the first {c.known_channels} channels of the packed anatomy + motion code: the ED frame, held
  fixed); the anatomy comes from the phenotype VAE + MAR or from a real heart, never from the ECG; the timing
  of end-systole is set from the ECG's QT / RR by re-timing (below).
- Method: template (mean training code, stored in the weights) + alpha = {c.alpha} noise -> the cine's
  motion code along a straight path (rectified flow); a DiT ({c.depth} blocks of width {c.width}: spatial,
  temporal and cross-attention to the ECG cycle's {c.ecg_frames} per-frame features, AdaLN-Zero on time and
  slice position) predicts the clean latent ({c.prediction}; velocity v = (x1 - z_t) / (1 - t)); sampling:
  {s.method}, {s.sampling_steps} steps, CFG {s.cfg} on the ECG (condition dropout {r['condition_dropout']}).
  {summary['parameters'] / 1e6:.1f} M parameters.
- Timing: {retiming}
- Depends on (pinned by sha256 in `config.json`): the frame autoencoder `{frame_ae}`, the motion model
  `{motion}` and the ECG MAE `{mae_folder}`
  (frozen; features of complete cycles found from its predicted phase, resampled to the cine's frames).
- Data: ACDC training split, {summary['n_train_cines']} slice cines, {summary['n_pairs']} subject-ECG pairs over
  {summary['n_ecgs_paired']} LUDB ECGs; validation loss on {summary['n_val_cines']} val cines selected epoch
  {summary['selected'].get('epoch')} (loss {summary['selected'].get('val_loss', float('nan')):.4f}).
- Pairing statistics (training split):

{markdown_table(train_stats)}

- Command: `{summary['command']}` ({summary['train_minutes']:.1f} min on {summary['threads']} CPU threads).
- Measured behaviour (timing follows the ECG? realism?): `reports/ecg_flow/`.

{ACDC_LICENCE}
ECGs: LUDB v1.0.1, ODC-By 1.0 (Kalyakulina et al., IEEE Access 2020; PhysioNet). Research use only; not for
diagnosis.
"""
