"""Model card of the MAR (``weights/mar``, ``weights/mar_motion``), from its config and training summary.

The bundled cards were edited by hand after training (the sampler chosen on val, the measured results), so
they are not what this writes: ``tests/test_model_cards.py`` says which."""

from __future__ import annotations

from pathlib import Path

from cardiosynth.models.cards import ACDC_LICENCE
from cardiosynth.models.mar import MARConfig


def model_card(config: MARConfig, recipe: dict, best: dict, minutes: float, dataset_name: str, command: str,
               parameters: int, n_train: int, n_val: int, folders: dict[str, Path]) -> str:
    """``recipe``: the training recipe as saved beside the weights (``config.json``'s ``recipe``)."""
    c, s, r = config, config.sampler, recipe
    if c.representation == "vae3d":
        what = (f"*scaled* 3D-VAE latents ({' x '.join(map(str, c.latent_shape))}) of short-axis slice cines; the "
                f"3D-VAE it was trained with (`{folders['vae3d']}`, pinned by sha256 in `config.json`) decodes them.")
    else:
        what = (f"packed anatomy + motion codes ({' x '.join(map(str, c.latent_shape))}) of short-axis slice "
                "cines: per grid position the ED frame's autoencoder latent and the motion code. The frame "
                f"autoencoder (`{folders['frame_ae']}`) decodes the ED frame and the motion model "
                f"(`{folders['motion']}`) warps it through the cycle; both are pinned by sha256 in `config.json`.")
    return f"""# CardioSynth MAR: phenotype-conditioned cine generator ({c.representation} representation, CPGG stage 2)

Masked autoregressive transformer with a per-token diffusion loss (Li et al. 2024, as in CPGG, Li et al.
MICCAI 2025). It generates {what}

- Conditions: {", ".join(c.phenotypes)} (standardised with the training split's scaler, stored in
  `config.json`) and slice position (0 base ... 1 apex); condition dropout {r['condition_dropout']} for guidance.
- Architecture: patch {c.patch_t}x{c.patch_s}x{c.patch_s} -> {c.num_tokens} tokens of {c.token_dim}; encoder + decoder
  {c.encoder_depth} + {c.decoder_depth} layers of width {c.width}; {c.buffer_size} condition tokens.
- Denoiser: MLP {c.denoiser_blocks} x {c.denoiser_width} with AdaLN, v-prediction, cosine schedule of
  {c.diffusion_steps} steps, sampled in {s.sampling_steps}; {parameters / 1e6:.1f} M parameters in all.
- Weights: EMA (decay {r['ema_decay']}). Generation defaults: K = {s.num_iter}, CFG {s.cfg} ({s.cfg_schedule}),
  temperature {s.temperature}, decoding order {s.decoding_order}.
- Data: ACDC subset, training split ({n_train} slice cines, prepared dataset `{dataset_name}`), each also
  encoded in {r['augment_copies']} augmented versions (rotation, zoom, shift, intensity); a copy zoomed by s is
  conditioned on volumes and mass x s^2 (EF unchanged). Model selection: EMA validation diffusion loss on the
  validation split ({n_val} cines).
- Command: `{command or "python -m training.train_mar"}` ({minutes:.1f} min).
- Selected epoch {best.get("epoch")} (step {best.get("step")}): validation diffusion loss
  {best.get("val_loss", float("nan")):.4f}.
- Weights stored compactly (int8 weight matrices with a scale per row, float16 elsewhere; float32 on load); the metrics in `reports/mar/` are for exactly these.
- Trained on tens of patients: expect limited diversity and anatomy close to the training set; check
  memorisation and adherence with `cardiosynth.measure` before using outputs. Research use only.

{ACDC_LICENCE}"""
