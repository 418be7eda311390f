"""Model card of the ECG MAE (``weights/ecg_mae``): val / test phase error and cycle finding (``extra``)."""

from __future__ import annotations

from cardiosynth.models.ecg_mae import EcgMAEConfig


def model_card(config: EcgMAEConfig, recipe: dict, metrics: dict, minutes: float, command: str, parameters: int) -> str:
    """``recipe``: the training recipe as saved beside the weights (``config.json``'s ``recipe``)."""
    c, r, val, test = config, recipe, metrics["val"], metrics["test"]  # r: the training recipe
    return f"""# CardioSynth ECG MAE: phase-aware ECG masked autoencoder (ECGFlowCMR's ECG encoder)

Encodes a 12-lead, 10 s, 500 Hz ECG (leads normalised at the input) into {c.tokens} tokens of {c.patch} samples
({c.token_seconds * 1000:.0f} ms) and predicts the cardiac phase of each token (0 -> 2 pi from one R peak to the
next). `cardiosynth.models.ecg_mae.find_cycles` finds complete cycles in the predicted phase; the ECG -> cine
flow consumes one cycle's features resampled to the cine's frames.

- Architecture: Conv1d patch embedding, {c.depth} pre-norm transformer layers of width {c.width} ({c.heads} heads),
  reconstruction head and (sin, cos) phase head; {parameters / 1e6:.2f} M parameters.
- Training: masked reconstruction (mask ratio {r['mask_ratio']}) + phase loss (weight {r['phase_weight']}); random time
  shift, noise, baseline wander and lead dropout; AdamW lr {r['lr']}, {r['epochs']} epochs, EMA {r['ema_decay']}.
- Data: LUDB v1.0.1 (Kalyakulina et al., IEEE Access 2020; PhysioNet), {metrics['n_train']} training records of
  the committed split (`cardiosynth/data/ludb_split.csv`); phase targets from neurokit2 R peaks.
- Selected on validation phase error (epoch {metrics['selected'].get('epoch')}).
- Validation ({val['records']} records): phase error {val['phase_error_rad']:.3f} rad
  (~{val['phase_error_ms_at_mean_rr']:.0f} ms at their mean RR), complete cycle found in
  {100 * val['complete_cycle_found']:.0f} %.
- Test ({test['records']} records): phase error {test['phase_error_rad']:.3f} rad
  (~{test['phase_error_ms_at_mean_rr']:.0f} ms), complete cycle found in {100 * test['complete_cycle_found']:.0f} %;
  cycle boundaries vs neurokit2 R peaks (+-75 ms): precision
  {test['cycle_boundaries_vs_neurokit_r_peaks']['precision']:.2f}, sensitivity
  {test['cycle_boundaries_vs_neurokit_r_peaks']['sensitivity']:.2f}.
- Command: `{command}` ({minutes:.1f} min on {metrics.get('threads')} CPU threads).

## Licence
Code Apache-2.0. Trained on LUDB, licensed ODC-By 1.0 (attribution: Kalyakulina A. I. et al., "LUDB: A New
Open-Access Validation Tool for Electrocardiogram Delineation Algorithms", IEEE Access 8:186181-186190, 2020;
Goldberger A. L. et al., PhysioNet, Circulation 101(23):e215-e220, 2000). Research use; not for diagnosis.
"""
