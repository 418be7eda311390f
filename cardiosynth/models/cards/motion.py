"""Model card of the motion model (``weights/motion``): the fit (from ``extra``), and the held-out evaluation
section that ``python -m evaluation.motion_report`` measures and stores in ``extra["evaluation"]``."""

from __future__ import annotations

from cardiosynth.models.cards import ACDC_LICENCE
from cardiosynth.models.motion import MotionConfig


def model_card(config: MotionConfig, extra: dict) -> str:
    k, _, g, _ = config.code_shape
    r, e = config.registration, config.encoder  # the registration settings, the encoding defaults
    return f"""# CardioSynth motion model (motion)

The motion half of the anatomy + motion representation: a cine is its end-diastolic frame warped through the
cycle by a smooth displacement field per frame ({g} x {g} control points, bicubic upsampled; frame 0 is ED
itself). Every control point's trajectory is the training mean plus {k} temporal modes, so the motion code is
a {k} x 2 x {g} x {g} field of mode amplitudes (standardised to unit variance per mode). Buffers only:
nothing here is trained by SGD.

- Fitted on the ACDC training split ({extra.get("n_training_cines")} cines of the `{extra.get("dataset")}`
  prepared set): each cine registered to its ED frame ({r.register_iterations} Adam steps, lr
  {r.register_lr}, MSE + {config.smoothness_weight} x control-point smoothness), then a PCA of the
  trajectories: {k} modes explain {100 * extra.get("temporal_explained_variance", float("nan")):.1f} % of their
  variance about the mean field. Training cines re-warped with their own registrations: PSNR
  {extra.get("train_registration_psnr_db", float("nan")):.2f} dB; through the {k} modes:
  {extra.get("train_pca_psnr_db", float("nan")):.2f} dB.
- Encoding a cine fits its code directly ({e.iterations} Adam steps on the code, lr {e.lr},
  the same smoothness term, prior weight {e.code_prior_weight:g}) against its ED frame as decoded by
  `weights/frame_ae`. Grid, modes and encoding steps were chosen on validation cines
  (`reports/anatomy_motion/README.md`).
- No intensity residual: one raised PSNR on val but not realism (`reports/anatomy_motion/README.md`).
- Command: `{extra.get("command")}` ({extra.get("fit_minutes")} min on {extra.get("threads")} thread(s)).
{extra.get("evaluation", "")}
{ACDC_LICENCE}"""
