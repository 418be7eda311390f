"""Model card of the cine segmenter (``weights/segmenter``): Dice per split with CIs and the ES timing check,
as measured by its trainer (``extra["metrics"]``)."""

from __future__ import annotations

import platform

import torch

from cardiosynth.models.segmenter import SegmenterConfig


def this_machine() -> str:
    """Where a run happens, as the card says it: processor, threads, torch version."""
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def model_card(config: SegmenterConfig, recipe: dict, metrics: dict, command: str, machine: str | None = None) -> str:
    """``recipe``: the training recipe as saved beside the weights (``config.json``'s ``recipe``); ``machine``:
    where it was trained (default: this machine, :func:`this_machine`)."""
    def row(split: str) -> str:
        m = metrics[split]
        cells = [f"{m[k]['dice']:.3f} [{m[k]['ci95'][0]:.3f}, {m[k]['ci95'][1]:.3f}]"
                 for k in ("LV", "MYO", "RV", "mean")]
        return f"| {split} ({m['patients']} patients) | " + " | ".join(cells) + " |"

    es, r = metrics["es_timing_val"], recipe  # r: the training recipe
    return f"""# CardioSynth cine segmenter (`{config.name}` config)

A small 2D U-Net ({metrics['parameters']:,} parameters, channels {list(config.channels)}, BatchNorm, ReLU) that labels
every frame of a short-axis cine: 0 background, 1 RV (right-ventricular cavity), 2 MYO (left-ventricular
myocardium), 3 LV (left-ventricular cavity). Used by `cardiosynth.measure` to measure real and synthetic cines.

```python
from cardiosynth.models.segmenter import Segmenter, segment_cine
labels = segment_cine(Segmenter.from_pretrained(), cine.frames)  # (T, {config.image_size}, {config.image_size}) float32 in [0, 1] -> uint8
```

## Data
ACDC subset (the project's `data/acdc`), **train split** only (the committed split file, patient-level,
stratified by group); one training image per slice at ED (cine frame 0) and at ES (the annotated ES frame),
as prepared by `python -m cardiosynth.data prepare --config {config.data_config}`: {config.image_size}x{config.image_size}
pixels at {config.spacing_mm} mm/px, centred on the heart, intensities normalised to [0, 1] per cine. Only ED
and ES frames are annotated, so no other frame is used for training. Model selection: mean Dice on the val split.

Augmentation: rotation ±{r['aug_rotate_deg']:g}°, scale {r['aug_scale'][0]:g}-{r['aug_scale'][1]:g},
translation ±{r['aug_translate_px']:g} px, gamma {r['aug_gamma'][0]:g}-{r['aug_gamma'][1]:g}, contrast
{r['aug_contrast'][0]:g}-{r['aug_contrast'][1]:g}, brightness ±{r['aug_brightness']:g}, Gaussian noise up to σ = {r['aug_noise_std']:g}.
No flips: the RV lies on a consistent side of the LV in ACDC's short-axis slices.

## Results
Dice (higher is better), {metrics['definition']}. Selected epoch {metrics['selected_epoch']} of {r['epochs']}.

| split | LV | MYO | RV | mean |
|---|---|---|---|---|
{row('val')}
{row('test')}

Frame-by-frame check on unlabelled frames (val cines): the frame with the smallest predicted LV area is within
one frame of the annotated ES frame in {100 * es['within_1_frame']:.0f} % of {es['cines']} slice cines (median
{es['median_abs_frames']:g} frames off, of 16). A rough check only: in low-EF hearts (DCM) and at basal/apical
slices the per-slice area curve is flat near ES, so its minimum is ill-defined.

Limits: tens of patients from one public dataset at one resolution; basal and apical slices are the hardest
(and ACDC's slices without myocardium at ED are not in the data). Synthetic cines are out of distribution in
ways these figures cannot show. With 10 patients per split, the intervals are wide.

## Reproduce
```
{command}
```
Deterministic on CPU for a fixed seed ({r['seed']}) and thread count; trained in {metrics['train_seconds'] / 60:.1f} min
({machine or this_machine()}).
All hyperparameters are in `config.json` (`config`); the metrics above are in `extra.metrics`.

## Licence
CC BY-NC-SA 4.0, inherited from the ACDC data it was trained on (non-commercial use, share alike, attribute:
O. Bernard et al., "Deep Learning Techniques for Automatic MRI Cardiac Multi-structures Segmentation and
Diagnosis: Is the Problem Solved?", IEEE TMI 37(11), 2018).
"""
