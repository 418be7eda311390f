"""Model card of the phenotype VAE (``weights/phenotype_vae``): the model, its data, command and every
measured table, from its config and the metrics its trainer stores in ``extra["metrics"]``."""

from __future__ import annotations

from cardiosynth import phenotypes as ph
from cardiosynth.models.phenotype_vae import PhenotypeVAEConfig


def _fd_rows(m: dict, n_samples: int) -> str:
    rows = []
    for name, label in (("real_train", "real train (60) — floor"), ("vae_T1", f"VAE samples, T = 1 ({n_samples})"),
                        ("gaussian_baseline", f"Gaussian fitted to train ({n_samples})")):
        e = m[name]
        diff = e.get("minus_floor_ci95")
        rows.append(f"| {label} | {e['fd']:.3f} [{e['ci95'][0]:.3f}, {e['ci95'][1]:.3f}] | "
                    + (f"[{diff[0]:+.3f}, {diff[1]:+.3f}]" if diff else "—") + " |")
    return "\n".join(rows)


def model_card(config: PhenotypeVAEConfig, recipe: dict, metrics: dict, command: str, *, n_boot: int,
               n_samples: int) -> str:
    """``recipe``: the training recipe as saved beside the weights (``config.json``'s ``recipe``); ``n_boot``:
    bootstrap resamples of the CIs; ``n_samples``: size of the sampled sets (the trainer's settings)."""
    # the card prints the model as trained: recipe, inference settings (infer) and calibration
    infer, calibration = config.inference, config.calibration
    fit_info = metrics["fit"]
    lines = []
    for split in ("val", "test"):
        f = metrics[f"frechet_{split}"]
        ms = f["vae_matched_size_log5"]
        lines.append(f"""**Real {split} ({metrics['n_patients'][split]} patients) as reference**

| set | FD, log of 5 independent, standardised [95 % CI] | FD minus floor [95 % CI] |
|---|---|---|
{_fd_rows(f['log5_standardised'], n_samples)}

| set | FD, all 9 phenotypes standardised [95 % CI] | FD minus floor [95 % CI] |
|---|---|---|
{_fd_rows(f['all9_standardised'], n_samples)}

Like-for-like with the floor (sets of {ms['set_size']} VAE samples, {ms['draws']} draws): FD (log-5) mean
{ms['mean']:.3f}, 95 % of draws in [{ms['p2.5']:.3f}, {ms['p97.5']:.3f}].
""")
    rec_rows = []
    for name in ph.NAMES:
        v, t = metrics["reconstruction_val"][name], metrics["reconstruction_test"][name]
        rec_rows.append(f"| {name} ({v['unit']}) | {v['mae']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}] | "
                        f"{v['train_mean_mae']:.2f} | {t['mae']:.2f} [{t['ci95'][0]:.2f}, {t['ci95'][1]:.2f}] | "
                        f"{t['train_mean_mae']:.2f} |")
    comp_rows = []
    for split in ("val", "test"):
        for key, e in metrics[f"completion_{split}"].items():
            mae = e["mae"]
            per = "; ".join(f"{n} {mae['vae'][n]:.1f} / {mae['regression'][n]:.1f} / {mae['train_mean'][n]:.1f}"
                            for n in e["completed"])
            nm = e["normalised_mae"]
            d1, d2 = e["vae_minus_regression_ci95"], e["vae_minus_train_mean_ci95"]
            comp_rows.append(f"| {split} | {key} | {nm['vae']:.3f} | {nm['regression']:.3f} | {nm['train_mean']:.3f} | "
                             f"[{d1[0]:+.3f}, {d1[1]:+.3f}] | [{d2[0]:+.3f}, {d2[1]:+.3f}] | {per} |")
    pl = metrics["plausibility"]
    absurd = "\n".join(f"| {k} | {v['status']} | {v['percentile']:.1f} | {'; '.join(v['reasons'])} |"
                       for k, v in pl["absurd"].items())

    def sc(s):
        return ", ".join(f"{k} {v}" for k, v in pl[s]["status_counts"].items())

    search = ""
    if metrics.get("search"):
        search = ("\n\nArchitecture search (val NLL per patient, lower is better):\n\n"
                  "| latent | hidden | decoder σ floor | val NLL | train NLL | step |\n|---|---|---|---|---|---|\n"
                  + "\n".join(f"| {r['latent_dim']} | {r['hidden']} | {r['min_sigma']:g} | {r['val_nll']:.3f} | "
                              f"{r['train_nll']:.3f} | {r['selected_step']} |" for r in metrics["search"]))
    ss = metrics["samples"]
    return f"""# CardioSynth phenotype VAE (`{config.name}` config)

Stage 1 of CPGG (Li et al., MICCAI 2025): a VAE over cardiac phenotypes. Sampling gives new, internally
consistent phenotype sets; encoding, decoding, a plausibility score with reasons, and completion of partly
locked sets serve the app's sliders ("Sample a heart", lock + "Complete the rest", the plausibility light).

```python
from cardiosynth.phenotype_prior import PhenotypePrior
prior = PhenotypePrior.from_pretrained()                   # this folder, sha256 checked
prior.sample(8, temperature=1.0, seed=0)                   # DataFrame with {', '.join(ph.NAMES)}
prior.complete({{"LVEDV": 250, "LVEF": 25}}, seed=0)         # the rest, consistent with the locks
prior.plausibility({{"LVEDV": 150, "LVESV": 60, "LVM": 120, "RVEDV": 150, "RVESV": 70}})  # percentile, status, reasons
```

## Model
- **What is modelled.** Only the five independent phenotypes, as the coordinates
  u = (log LVEDV, logit(LVESV/LVEDV), log LVM, log RVEDV, logit(RVESV/RVEDV)), standardised with the training
  split's mean and SD (the scaler is in `config.json`). Any u decodes to volumes with 0 < ESV < EDV, and
  SV = EDV − ESV and EF = 100·SV/EDV are computed exactly from them: every sampled or completed set is
  consistent by construction. Log / logit coordinates suit the positive, multiplicative spread of volumes and
  the bounded ejection fraction.
- **Network.** MLP encoder and decoder, {config.layers} hidden layers of {config.hidden}, LeakyReLU
  ({config.negative_slope}), latent dimension {config.latent_dim}; Gaussian decoder with one learned noise
  scale per coordinate (floor {config.min_sigma}); {metrics['parameters']} parameters. Small on purpose:
  60 training patients in 5 very different diagnostic groups.
- **Training.** Full batch, AdamW (lr {recipe['lr']}, weight decay {recipe['weight_decay']}), {recipe['train_samples']}
  latent samples per patient per step, KL weight annealed 0 → {recipe['beta']} over {recipe['kl_warmup']} steps, early
  stopping on the val importance-weighted NLL ({recipe['eval_importance_samples']} samples) with patience
  {recipe['patience']}; selected step {fit_info['selected_step']} (stopped at {fit_info['stopped_at']}), val NLL
  {fit_info['val_nll']:.3f}, train NLL {fit_info['train_nll']:.3f} nats per patient (standardised coordinates).{search}
- **Sampling.** z ~ N(0, T²I), u = decoder(z) + T·σ·ε. T = 0 gives the mean heart; T > 1 more extreme hearts.
- **Plausibility.** log p(u) estimated by importance sampling ({infer.importance_samples} samples, proposal
  half widened encoder posterior, half prior), shown as the percentile among the {len(calibration.log_density)}
  real {calibration.source} patients (share of them that are less likely). Reasons: each phenotype
  against its expectation given the other four (the decoder factorises, so leaving one coordinate out of the
  importance weights gives the exact conditional under the model), phenotypes beyond the training range, and
  given SV/EF that contradict the volumes. Status: red if the given values contradict each other, a phenotype
  is > {infer.red_z} SD from its conditional expectation, or log p is {infer.red_nats_below_reference} nats below the
  least likely reference patient; amber if percentile < {infer.amber_percentile}, a phenotype is > {infer.amber_z} SD
  off, or beyond the training range by more than {100 * infer.range_margin:.0f} % of its width; else green.
- **Completion.** Exact conditioning of the model, not a penalty fit: locked values fix coordinates
  (LVEDV + LVEF fix the LV pair; LVEDV alone fixes u₁; a lone LVESV or LVSV is a curve in (u₁, u₂), integrated on
  a {infer.completion_grid}-point grid); the latent is integrated by self-normalised importance sampling (a prior
  pass, then a Gaussian refitted to the weighted latents, mixed 80/20 with the prior). T = 0 returns the
  posterior mean of the free coordinates; T > 0 draws. More than two locked values of one ventricle must
  agree (tolerance 0.5 mL or 0.5 %, 0.5 EF points) or PhenotypeError explains which disagree.
- **Determinism.** Every output is fixed by `seed` on CPU (torch / numpy generators seeded per call).

## Data and licence
ACDC (Bernard et al., IEEE TMI 2018) `phenotypes.csv`: ground-truth volumes and mass from expert masks of
85 patients (5 groups × 17). Committed split: train {metrics['n_patients']['train']} patients (fit + scaler),
val {metrics['n_patients']['val']} (early stopping{', architecture search' if metrics.get('search') else ''}), test
{metrics['n_patients']['test']} (reported once). Plausibility calibrated on train + val patients. Licence: **CC BY-NC-SA 4.0**,
inherited from ACDC (research, non-commercial use; cite the ACDC paper).

## Command
```
{command}
```
Training took {metrics['train_seconds']:.1f} s ({metrics['threads']} CPU thread, {metrics['platform']}); the full run
including evaluation {metrics['total_seconds']:.0f} s.

## Results
### Fréchet distance to real patients (lower is better)
Features: log of LVEDV, LVESV, LVM, RVEDV, RVESV standardised with the training mean / SD (the space the
model lives in, up to the logit), and, second, all nine phenotypes standardised. 95 % CIs: bootstrap over the
real reference patients ({n_boot} resamples), paired across the compared sets for "minus floor". FD between
sets this small is biased upwards and its CIs are wide: 13 / 12 reference patients. A resampled reference
repeats patients, which shrinks its covariance and inflates the FD, so the single-set intervals sit above their
point estimates; the paired "minus floor" interval is the comparison to read (it contains 0 when the sampled set
is as close to the real patients as the real training patients are).

{chr(10).join(lines)}
### Reconstruction (encode → decode, posterior mean) MAE per phenotype, schema units
| phenotype | val MAE [95 % CI] | val: training mean | test MAE [95 % CI] | test: training mean |
|---|---|---|---|---|
{chr(10).join(rec_rows)}

### Completion: lock phenotypes at a patient's true values, complete the rest (T = 0)
Normalised MAE = mean over completed phenotypes of MAE / training SD (per patient, then averaged). Baselines in
the same coordinates with the same exact derivation: the training mean of the free coordinates, and least
squares of the free coordinates on the (log / logit) locked values. CIs: bootstrap over patients of the paired
difference. Per-phenotype MAE (units) as VAE / regression / training mean.

| split | locked | VAE | regression | train mean | VAE − regression | VAE − train mean | per phenotype MAE |
|---|---|---|---|---|---|---|---|
{chr(10).join(comp_rows)}

Locks are honoured: largest |completed − locked| over all cases {max(e['max_lock_error'] for s in ('val', 'test') for e in metrics[f'completion_{s}'].values()):.2e}.

### Plausibility
Real patients (status counts): train {sc('train')}; val {sc('val')}; test {sc('test')} (median percentile
val {pl['val']['median_percentile']:.0f}, test {pl['test']['median_percentile']:.0f}). 500 VAE samples at T = 1: {sc('samples_T1')}.

| made-up set | status | percentile | reasons |
|---|---|---|---|
{absurd}

### Samples (T = 1, {ss['n']} sets)
{ss['outside_plausible_range']} outside the schema's plausible ranges; {100 * ss['share_beyond_training_range']:.1f} % have at least one
phenotype beyond the training patients' range.

## Limitations
- 60 training patients: the model knows five diagnostic groups from 12 patients each. It is not conditioned on
  the group, age, sex or body size (ACDC has height / weight; they are not used).
- A multivariate Gaussian in the same coordinates is a strong baseline at this size; the tables above say
  where the VAE is and is not better.
- ACDC volumes come from short-axis segmentations at one centre; UK Biobank hearts (healthier, another
  protocol) are outside what this model has seen.
"""
