"""Model card of the 3D-VAE (``weights/vae3d``), from its config and the ``extra`` its trainer measured
(latent statistics, val / test reconstruction with CIs, CPU speed)."""

from __future__ import annotations

from cardiosynth.models.cards import ACDC_LICENCE
from cardiosynth.models.vae3d import VAE3DConfig


def model_card(config: VAE3DConfig, recipe: dict, extra: dict) -> str:
    """``recipe``: the training recipe as saved beside the weights (``config.json``'s ``recipe``)."""
    m, s = extra.get("metrics", {}), extra.get("speed", {})
    stats = extra.get("latent_statistics", {})

    def fmt(split, name, digits):
        v = m.get(split, {}).get(name)
        if not v:
            return "n/a"
        return f"{v['mean']:.{digits}f} (95 % CI {v['ci95'][0]:.{digits}f}-{v['ci95'][1]:.{digits}f})"

    c, t, h, w = config.latent_shape
    r = recipe  # the training recipe
    return f"""# CardioSynth 3D-VAE (KL)

The Stable Diffusion KL autoencoder with 3D convolutions, for short-axis cines 1 x {config.frames} x {config.size} x
{config.size} in [0, 1]. Latent: {c} x {t} x {h} x {w} (f_t = {config.f_t}, f_s = {config.f_s}; channels
{", ".join(map(str, config.channels))} from full resolution down). The cine generators (MAR with diffusion
loss, ECG rectified flow) work on *scaled* latents: posterior mean x latent_scale.

- Latent scale: {config.stats.latent_scale:.5f} (= 1 / std {stats.get("latent_std", float("nan")):.4f} of the
  training-set posterior means; stored in config.json and applied by `encode_cines` / `decode_cines`).
  Mean posterior std (unscaled) {stats.get("posterior_std_mean", float("nan")):.4f}.
- Data: ACDC subset, training split only ({extra.get("dataset", "default")} prepared cines); epoch selected
  on validation PSNR (epoch {extra.get("selected", {}).get("epoch")}).
- Loss: L1 + {r['ssim_weight']} x (1 - SSIM) on valid (non-padded) pixels + KL with weight {r['kl_weight']:g}
  (SD convention: summed KL over summed pixel loss). No adversarial or perceptual loss. Trained on random
  {r['crop_frames']} x {r['crop_size']} x {r['crop_size']} crops of augmented cines.
- Command: `{extra.get("command", "python -m training.train_vae3d")}`
  ({extra.get("train_minutes", float("nan"))} min wall time, {extra.get("train_threads", "?")} thread(s) on a 2-core CPU shared with
  other jobs; results are bit-reproducible for a fixed thread count).
- Reconstruction (posterior mean, valid pixels, mean over patients, bootstrap 95 % CI over patients):
  - validation ({m.get("val", {}).get("n_patients")} patients, {m.get("val", {}).get("n_cines")} cines):
    PSNR {fmt("val", "psnr", 2)} dB, SSIM {fmt("val", "ssim", 4)}
  - test ({m.get("test", {}).get("n_patients")} patients, {m.get("test", {}).get("n_cines")} cines):
    PSNR {fmt("test", "psnr", 2)} dB, SSIM {fmt("test", "ssim", 4)}
- CPU speed (batch 1, {s.get("threads")} threads, median of {s.get("repeats")}): encode {s.get("encode_s_per_cine")} s,
  decode {s.get("decode_s_per_cine")} s per cine.
- Weights stored as float16 (< 10 MB; cast to float32 on load); all numbers above are for exactly these weights.
  Padding (outside `valid`) is excluded from the loss, so decoded pixels there are unconstrained.
- Reconstruction sheet: `reports/vae3d/reconstructions.png`; all numbers: `reports/vae3d/metrics.json`.

{ACDC_LICENCE}"""
