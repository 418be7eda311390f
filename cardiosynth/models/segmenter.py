"""Cine segmenter: a small 2D U-Net for LV cavity, myocardium and RV, applied frame by frame to a cine.

Labels follow ACDC (``cardiosynth.data.labels``): 0 background, 1 RV, 2 MYO (LV myocardium), 3 LV (cavity).
The network is trained on the ED and ES frames of the prepared ACDC slices (the only frames with masks; see
``training/train_segmenter.py``) and applied to every frame of a cine in one batched forward pass.

Use::

    model = Segmenter.from_pretrained()                     # bundled weights/segmenter, sha256 checked
    labels = segment_cine(model, cine.frames)    # (T, H, W) float32 in [0, 1] -> (T, H, W) uint8

The config is a dataclass saved beside the weights (``config.json``), read by both training and inference, so
the two cannot drift. Inference folds each BatchNorm into the convolution before it (``Segmenter.fuse``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cardiosynth.data.labels import STRUCTURES
from cardiosynth.weights import Pretrained, config_from_dict


@dataclass(frozen=True)
class SegmenterConfig:
    """The frames the network expects (``image_size``, checked by segment_cine and the Turing test's features;
    ``spacing_mm`` and ``data_config`` name the prepared grid they come from) and its architecture; saved in
    ``config.json``, the training recipe (training.recipes) beside it."""

    name: str = "default"
    # what the network sees
    image_size: int = 64  # H = W of the input frames
    spacing_mm: float = 2.2  # pixel size it was trained at (informative: inputs must be resampled to it)
    data_config: str = "default"  # the prepared-data config (cardiosynth.data.prepare.CONFIGS) it trains on
    classes: int = 4  # background, RV, MYO, LV
    # architecture: channels per level, finest first; depth = len(channels) - 1 downsamplings
    channels: tuple[int, ...] = (8, 16, 32, 64, 128)  # thin at full resolution: that is where CPU time goes
    convs_per_block: int = 2
    dropout: float = 0.1  # in the bottleneck only

    @property
    def depth(self) -> int:
        return len(self.channels) - 1

    def __post_init__(self):
        if len(self.channels) < 2 or any(c < 1 for c in self.channels):
            raise ValueError(f"channels needs at least two positive entries, got {self.channels}")
        if self.image_size % (2 ** self.depth):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2**depth = {2 ** self.depth}")
        if self.classes < 2:
            raise ValueError("classes must be at least 2")

    @classmethod
    def from_dict(cls, values: dict) -> "SegmenterConfig":
        return config_from_dict(cls, values)


CONFIGS = {
    "default": SegmenterConfig(),
    # the paper-size data: 96 x 96 frames at 1.5 mm/px, one more level, wider
    "paper": SegmenterConfig(name="paper", image_size=96, spacing_mm=1.5, data_config="paper",
                             channels=(16, 32, 64, 128, 256)),
}


# --------------------------------------------------------------------------------------------- network
def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Block(nn.Sequential):
    """``convs_per_block`` x (3x3 conv, BatchNorm, ReLU)."""

    def __init__(self, c_in: int, c_out: int, n: int):
        super().__init__(*[conv_bn_relu(c_in if i == 0 else c_out, c_out) for i in range(n)])


class Segmenter(nn.Module, Pretrained):
    """2D U-Net: encoder (block, then 2x2 max-pool), bottleneck, decoder (2x upsample by transposed conv,
    concatenate the skip, block), 1x1 head to per-class logits. Input (N, 1, H, W) in [0, 1].
    ``Segmenter.from_pretrained(folder, fuse=True)`` returns it with BatchNorm folded for inference."""

    config_class = SegmenterConfig
    default_weights = "segmenter"

    def _check_loaded(self, folder_or_name: str | Path, fuse: bool = True) -> "Segmenter":
        return self.fuse() if fuse else self

    def __init__(self, config: SegmenterConfig = CONFIGS["default"]):
        super().__init__()
        self.config = config
        ch, n = config.channels, config.convs_per_block
        self.down = nn.ModuleList([Block(1 if i == 0 else ch[i - 1], ch[i], n) for i in range(config.depth)])
        self.bottleneck = nn.Sequential(Block(ch[-2], ch[-1], n), nn.Dropout2d(config.dropout))
        self.up = nn.ModuleList([nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in range(config.depth)])
        self.decode = nn.ModuleList([Block(2 * ch[i], ch[i], n) for i in range(config.depth)])
        self.head = nn.Conv2d(ch[0], config.classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for i in reversed(range(self.config.depth)):
            x = self.decode[i](torch.cat([self.up[i](x), skips[i]], dim=1))
        return self.head(x)

    def encoder_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's activations at every level, finest first, bottleneck last: (N, C_l, H_l, W_l) each.

        In-domain features of a cardiac frame, used as a perceptual loss (the frame autoencoder) and, pooled,
        by the classifier two-sample test; both want what a network that knows LV, MYO and RV attends to."""
        features = []
        for block in self.down:
            x = block(x)
            features.append(x)
            x = F.max_pool2d(x, 2)
        features.append(self.bottleneck[0](x))  # the bottleneck block without its dropout
        return features

    @torch.no_grad()
    def fuse(self) -> "Segmenter":
        """Inference only: fold every BatchNorm into its convolution and switch to channels-last memory
        (the same outputs up to float rounding; about 2x faster on CPU). The model cannot be trained after."""
        self.eval()
        for module in self.modules():
            if isinstance(module, nn.Sequential) and len(module) == 3 and isinstance(module[1], nn.BatchNorm2d):
                module[0] = torch.nn.utils.fusion.fuse_conv_bn_eval(module[0], module[1])
                module[1] = nn.Identity()
        self.fused = True
        return self.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> "Segmenter":
        if mode and getattr(self, "fused", False):
            raise RuntimeError("This Segmenter was fused for inference (BatchNorm folded); build a fresh one to train")
        return super().train(mode)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------- inference
def _as_frames(frames, size: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Validate and convert to a float32 (N, 1, H, W) tensor; returns it and the leading shape."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a numpy array (T, H, W) or (B, T, H, W), not {type(frames).__name__}")
    if frames.ndim not in (3, 4):
        raise ValueError(f"frames must have shape (T, H, W) or (B, T, H, W); got {frames.ndim} dimensions {frames.shape}")
    if not np.issubdtype(frames.dtype, np.floating):
        hint = " (uint8 data: divide by 255 first)" if frames.dtype == np.uint8 else ""
        raise ValueError(f"frames must be floating point in [0, 1], got dtype {frames.dtype}{hint}")
    if frames.shape[-2:] != (size, size):
        raise ValueError(f"frames are {frames.shape[-2]}x{frames.shape[-1]} but this segmenter was trained on "
                         f"{size}x{size} frames; resample the cine to that grid (as cardiosynth.data.prepare does)")
    if 0 in frames.shape:
        raise ValueError(f"frames is empty: shape {frames.shape}")
    frames = frames.astype(np.float32, copy=False)
    low, high = float(frames.min()), float(frames.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("frames contain NaN or infinite values")
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"frames must be in [0, 1], got values in [{low:.3g}, {high:.3g}]")
    lead = frames.shape[:-2]
    return torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, 1, size, size), lead


def segment_cine(model: Segmenter, frames, valid: np.ndarray | None = None, max_frames_per_pass: int = 64) -> np.ndarray:
    """Label every frame: (T, H, W) or (B, T, H, W) float in [0, 1] -> same shape uint8 (0 bg, 1 RV, 2 MYO, 3 LV).

    A cine's frames go through the network in one batched pass; a batch of cines goes in chunks of
    ``max_frames_per_pass`` frames (bounded memory; the labels do not depend on the chunking beyond float ties). Deterministic: eval mode, no sampling. ``valid`` (H, W) bool, when given, sets
    padded pixels to background.
    """
    if model.training:
        raise ValueError("segment_cine needs the model in eval mode (call model.eval(), or use Segmenter.from_pretrained)")
    x, lead = _as_frames(frames, model.config.image_size)
    device = next(model.parameters()).device
    with torch.inference_mode():
        labels = torch.cat([model(chunk.to(device)).argmax(dim=1).to(torch.uint8).cpu()
                            for chunk in x.split(max_frames_per_pass)])
    labels = labels.numpy().reshape(*lead, *labels.shape[-2:])
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != labels.shape[-2:]:
            raise ValueError(f"valid must have shape {labels.shape[-2:]}, got {valid.shape}")
        labels = labels * valid
    return labels


def dice_per_class(pred: np.ndarray, target: np.ndarray, classes: Sequence[int] = STRUCTURES) -> np.ndarray:
    """Dice 2|P∩G| / (|P|+|G|) of each label in ``classes`` over all elements of ``pred`` and ``target``
    (one image, or a patient's stack of slices for a volumetric Dice). NaN where the label is in neither."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape} vs {target.shape}")
    out = np.empty(len(classes), dtype=np.float64)
    for k, label in enumerate(classes):
        p, g = pred == label, target == label
        total = int(p.sum()) + int(g.sum())
        out[k] = 2.0 * int((p & g).sum()) / total if total else np.nan
    return out
