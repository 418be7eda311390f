"""Model card of the cine encoder (``weights/cine_encoder``): the selected epoch's validation figures."""

from __future__ import annotations

from cardiosynth.models.cards import ACDC_LICENCE
from cardiosynth.models.cine_encoder import CineEncoderConfig


def model_card(config: CineEncoderConfig, best: dict, minutes: float, dataset_name: str) -> str:
    return f"""# CardioSynth cine encoder (feature space of our Fréchet distance)

A small 3D CNN ({", ".join(map(str, config.channels))} channels, {config.feature_dim}-d features) trained on
real ACDC short-axis cines ({config.frames} x {config.size} x {config.size}, prepared with the `{dataset_name}`
config) to predict diagnostic group, slice position and phenotypes and to detect shuffled frames. Its
{config.feature_dim}-d features replace Inception/I3D features (not downloadable here, and ill-suited to MRI)
when computing Fréchet distances between sets of cines.

- Data: ACDC subset (67 patients with cines), training split only; model selection on the validation split.
- Command: `python -m training.train_cine_encoder --config {"default" if config.frames == 16 else "paper"}`
  ({minutes:.1f} min on 2 CPU cores).
- Selected epoch {best.get("epoch")}: validation group accuracy {best.get("val_group_accuracy", float("nan")):.2f},
  slice-position MAE {best.get("val_position_mae", float("nan")):.3f}, loss {best.get("val_loss", float("nan")):.3f}.
- Use only as a measuring instrument: it is not a diagnostic classifier.

{ACDC_LICENCE}"""
