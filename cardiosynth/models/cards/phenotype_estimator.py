"""Model card of the phenotype estimator (``weights/phenotype_estimator``): its validation adherence scores
(``extra["val_scores"]``) and the sizes of the splits it was fitted and scored on."""

from __future__ import annotations

from cardiosynth import phenotypes as ph


def model_card(scores: dict, train_cines: int, train_patients: int, val_cines: int, val_patients: int) -> str:
    rows = "\n".join(f"| {n} | {s['pearson_r']:.2f} [{s['pearson_r_ci95'][0]:.2f}, {s['pearson_r_ci95'][1]:.2f}] | "
                     f"{s['mae']:.1f} {ph.BY_NAME[n].unit} [{s['mae_ci95'][0]:.1f}, {s['mae_ci95'][1]:.1f}] |"
                     for n, s in scores.items())
    return f"""# CardioSynth phenotype estimator (one slice cine -> subject phenotypes)

Ridge regressions (volumes and mass in log space) from the bundled segmenter's measurements of one short-axis
slice cine (LV/MYO/RV areas at ED and ES, fractional area changes) and its slice position to the subject's
phenotypes. One slice cannot show the whole ventricle, so these are estimates; their accuracy on real
validation cines is the **ceiling** any generator's control adherence can reach.

- Data: ACDC subset, training split ({train_cines} slice cines, {train_patients} patients); evaluated
  on the validation split ({val_cines} cines, {val_patients} patients). Bootstrap CIs resample patients.
- Command: `python -m training.fit_phenotype_estimator` (depends on `weights/segmenter`, sha256 pinned in config.json).
- Caveat: the segmenter was trained on the training split's ED/ES frames, so training-split measurements are
  slightly cleaner than those of unseen cines.

| phenotype | Pearson r (val) [95 % CI] | MAE (val) [95 % CI] |
|---|---|---|
{rows}

## Licence
Fitted on ACDC (CC BY-NC-SA 4.0): the coefficients carry the same licence. Cite Bernard et al., IEEE TMI 2018.
"""
