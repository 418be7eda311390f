"""Pretrain the cine MAE, fine-tune it for diagnosis + phenotypes, and predict patients: the study's three steps.

Every run has a fixed number of optimiser steps whatever the data size, so a mix row differs from real-only
in what the model sees, not in how long it trains. All randomness comes from the given seed (CPU-exact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cardiosynth.models.cine_vit import CineDiagnosisModel, CineMAE, CineViTConfig
from training.common import cosine_lr

GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")
TARGETS = ("LVEDV", "LVEF", "LVM", "RVEDV", "RVEF")
NO_GROUP = -1  # a synthetic cine: the phenotype VAE is not conditioned on diagnosis, so it has none


@dataclass(frozen=True)
class StudyConfig:
    """Sizes and recipes of the study (saved in the report; part of every cached result's key)."""

    model: CineViTConfig = CineViTConfig()
    pretrain_steps: int = 600
    pretrain_batch: int = 64
    pretrain_lr: float = 1e-3
    finetune_steps: int = 150
    finetune_batch: int = 32
    finetune_lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_share: float = 0.05
    regression_weight: float = 1.0  # loss = CE(diagnosis) + regression_weight * MSE(standardised phenotypes)
    shift_px: int = 4  # fine-tuning augmentation: random shifts up to this, and intensity x U(0.9, 1.1)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Labelled:
    """Slice cines with what fine-tuning learns: group index (or NO_GROUP) and standardised targets (NaN: none)."""

    cines: np.ndarray  # (N, T, H, W) float32 [0, 1]
    slice_position: np.ndarray  # (N,)
    group: np.ndarray  # (N,) int
    targets: np.ndarray  # (N, len(TARGETS)) standardised, NaN where unknown

    def __len__(self) -> int:
        return len(self.cines)

    @staticmethod
    def concat(parts: list["Labelled"]) -> "Labelled":
        return Labelled(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                          ("cines", "slice_position", "group", "targets")))


Progress = Callable[[int], None]


def _optimiser(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "mask_token" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "mask_token" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95))


def _step_lr(optimiser: torch.optim.Optimizer, step: int, steps: int, peak: float, warmup_share: float) -> None:
    lr = cosine_lr(step, steps, peak, max(1, int(steps * warmup_share)))
    for group in optimiser.param_groups:
        group["lr"] = lr


def pretrain(cines: np.ndarray, config: StudyConfig, seed: int,
             progress: Progress | None = None) -> tuple[dict, float]:
    """Masked-autoencoder pretraining on ``cines`` (unlabelled, (N, T, H, W) float32): the encoder's weights and
    the mean loss of the last 10 % of steps (normalised-pixel MSE of hidden patches: 1.0 = predicting the mean)."""
    torch.manual_seed(seed)
    model = CineMAE(config.model)
    optimiser = _optimiser(model, config.pretrain_lr, config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(np.ascontiguousarray(cines, dtype=np.float32))
    model.train()
    losses = []
    for step in range(config.pretrain_steps):
        _step_lr(optimiser, step, config.pretrain_steps, config.pretrain_lr, config.warmup_share)
        batch = data[torch.randint(len(data), (config.pretrain_batch,), generator=generator)]
        loss = model(batch, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if progress:
            progress(1)
    final = float(np.mean(losses[-max(1, len(losses) // 10):]))
    return {k: v.detach().clone() for k, v in model.encoder.state_dict().items()}, final


def _augment(batch: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    if shift:
        dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=generator))
        batch = torch.roll(batch, (dy, dx), dims=(2, 3))
    scale = 0.9 + 0.2 * torch.rand(batch.shape[0], 1, 1, 1, generator=generator)
    return batch * scale


def finetune(encoder: dict | None, data: Labelled, config: StudyConfig, seed: int,
             progress: Progress | None = None) -> CineDiagnosisModel:
    """Fine-tune every weight (``encoder`` = pretrained encoder weights, or None: from scratch) on ``data``."""
    torch.manual_seed(seed)
    model = CineDiagnosisModel(config.model)
    if encoder is not None:
        model.encoder.load_state_dict(encoder)
    optimiser = _optimiser(model, config.finetune_lr, config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    cines = torch.from_numpy(np.ascontiguousarray(data.cines, dtype=np.float32))
    position = torch.from_numpy(data.slice_position.astype(np.float32))
    group = torch.from_numpy(data.group.astype(np.int64))
    targets = torch.from_numpy(data.targets.astype(np.float32))
    model.train()
    for step in range(config.finetune_steps):
        _step_lr(optimiser, step, config.finetune_steps, config.finetune_lr, config.warmup_share)
        pick = torch.randint(len(cines), (config.finetune_batch,), generator=generator)
        logits, predicted = model(_augment(cines[pick], config.shift_px, generator), position[pick])
        labelled, known = group[pick] != NO_GROUP, torch.isfinite(targets[pick])
        loss = predicted.sum() * 0.0
        if labelled.any():
            loss = loss + F.cross_entropy(logits[labelled], group[pick][labelled])
        if known.any():
            loss = loss + config.regression_weight * F.mse_loss(predicted[known], targets[pick][known])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if progress:
            progress(1)
    return model.eval()


@torch.no_grad()
def predict_slices(model: CineDiagnosisModel, cines: np.ndarray, slice_position: np.ndarray,
                   batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per slice: class probabilities (N, classes) and standardised phenotypes (N, targets)."""
    model.eval()
    probs, values = [], []
    for start in range(0, len(cines), batch):
        x = torch.from_numpy(np.ascontiguousarray(cines[start:start + batch], dtype=np.float32))
        p = torch.from_numpy(slice_position[start:start + batch].astype(np.float32))
        logits, predicted = model(x, p)
        probs.append(logits.softmax(dim=1).numpy())
        values.append(predicted.numpy())
    return np.concatenate(probs), np.concatenate(values)
