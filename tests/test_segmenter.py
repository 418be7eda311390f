"""Cine segmenter: shapes, a tiny overfit, segment_cine's contract, the bundled weights, Dice on real val cines."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from cardiosynth.data.labels import LV, MYO, RV
from cardiosynth.models.segmenter import CONFIGS, Segmenter, SegmenterConfig, dice_per_class, segment_cine
from cardiosynth.weights import WeightsError, resolve
from training.recipes import SEGMENTER_RECIPES, SegmenterRecipe
from training.train_segmenter import augment, loss_fn

TINY = SegmenterConfig(name="tiny", image_size=32, channels=(8, 16, 32), dropout=0.0)


def phantom(n: int = 8, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disc "hearts": LV cavity disc, myocardial ring, RV disc to its left; images (n, H, W) in [0, 1]."""
    rng = np.random.default_rng(seed)
    k = size / 32
    rows, cols = np.mgrid[:size, :size]
    images, labels = np.zeros((n, size, size), np.float32), np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cy, cx = size / 2 + rng.uniform(-2, 2, 2) * k
        radius = rng.uniform(3, 5) * k
        lab = labels[i]
        lab[np.hypot(rows - cy, cols - (cx - radius - 5 * k)) <= radius * 0.9] = RV
        lab[np.hypot(rows - cy, cols - cx) <= radius + 2 * k] = MYO
        lab[np.hypot(rows - cy, cols - cx) <= radius] = LV
        images[i] = np.array([0.1, 0.8, 0.35, 0.9], np.float32)[lab] + rng.normal(0, 0.03, lab.shape)
    return np.clip(images, 0, 1).astype(np.float32), labels


pytestmark = pytest.mark.usefixtures("one_thread")


def test_forward_shapes_default_and_paper():
    for config, size in ((CONFIGS["default"], 64), (CONFIGS["paper"], 96)):
        model = Segmenter(config).eval()
        with torch.no_grad():
            assert model(torch.rand(2, 1, size, size)).shape == (2, 4, size, size)
    with pytest.raises(ValueError, match="divisible"):
        SegmenterConfig(image_size=62, channels=(8, 16, 32))


def test_paper_config_takes_a_training_step():
    config = CONFIGS["paper"]
    model = Segmenter(config).train()
    recipe = SEGMENTER_RECIPES["paper"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr)
    images, labels = phantom(2, size=config.image_size)
    loss = loss_fn(model(torch.from_numpy(images)[:, None]), torch.from_numpy(labels).long(), config, recipe)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)


def test_tiny_overfit_on_disc_phantom():
    torch.manual_seed(0)
    images, labels = phantom(8)
    x, y = torch.from_numpy(images)[:, None], torch.from_numpy(labels).long()
    model = Segmenter(TINY).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = loss_fn(model(x), y, TINY, SegmenterRecipe())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:3]), losses
    dice = dice_per_class(segment_cine(model.eval(), images), labels)
    assert dice.min() > 0.8, dice


def test_augmentation_keeps_labels_on_their_pixels():
    images, labels = phantom(16, size=64)
    valid = torch.ones(16, 1, 64, 64)
    recipe = dataclasses.replace(SEGMENTER_RECIPES["default"], aug_gamma=(1.0, 1.0), aug_contrast=(1.0, 1.0),
                                 aug_brightness=0.0, aug_noise_std=0.0, aug_probability=1.0)
    x, y = augment(torch.from_numpy(images)[:, None], torch.from_numpy(labels).long(), valid, recipe,
                   torch.Generator().manual_seed(0))
    assert x.shape == (16, 1, 64, 64) and y.shape == (16, 64, 64) and y.dtype == torch.int64
    assert not torch.equal(y, torch.from_numpy(labels).long())  # it did move something
    x = x[:, 0]
    assert x[y == LV].mean() > 0.8 and x[y == MYO].mean() < 0.5 and x[y == 0].mean() < 0.2


def test_segment_cine_contract():
    model = Segmenter(TINY).eval()
    rng = np.random.default_rng(0)
    cine = rng.random((16, 32, 32), dtype=np.float32)
    labels = segment_cine(model, cine)
    assert labels.shape == (16, 32, 32) and labels.dtype == np.uint8 and labels.max() < 4
    assert np.array_equal(labels, segment_cine(model, cine))  # deterministic
    batch = rng.random((3, 16, 32, 32), dtype=np.float32)
    batch[1] = cine
    out = segment_cine(model, batch)
    assert out.shape == (3, 16, 32, 32) and out.dtype == np.uint8
    assert (out[1] == labels).mean() > 0.999  # same frames, other batch size: same labels (up to float ties)
    assert np.array_equal(segment_cine(model, torch.from_numpy(cine)), labels)  # a tensor is accepted too
    valid = np.zeros((32, 32), bool)
    valid[4:28, 4:28] = True
    assert not segment_cine(model, cine, valid=valid)[:, ~valid].any()
    fused = Segmenter(TINY).eval()
    fused.load_state_dict(model.state_dict())
    assert (segment_cine(fused.fuse(), cine) == labels).mean() > 0.999


@pytest.mark.parametrize("frames, message", [
    (np.zeros((32, 32), np.float32), "shape"),
    (np.zeros((1, 2, 3, 32, 32), np.float32), "shape"),
    (np.zeros((4, 32, 32), np.uint8), "divide by 255"),
    (np.full((4, 32, 32), np.nan, np.float32), "NaN"),
    (np.full((4, 32, 32), 255.0, np.float32), r"\[0, 1\]"),
    (np.zeros((4, 64, 64), np.float32), "trained on 32x32"),
    (np.zeros((0, 32, 32), np.float32), "empty"),
    ([[0.0]], "numpy array"),
])
def test_segment_cine_rejects_bad_input(frames, message):
    with pytest.raises(ValueError, match=message):
        segment_cine(Segmenter(TINY).eval(), frames)


def test_segment_cine_needs_eval_mode():
    with pytest.raises(ValueError, match="eval"):
        segment_cine(Segmenter(TINY).train(), np.zeros((2, 32, 32), np.float32))


def test_dice_per_class():
    target = np.zeros((2, 4, 4), np.uint8)
    target[0, :2] = LV
    pred = target.copy()
    pred[0, 0] = MYO  # half the LV called MYO
    dice = dice_per_class(pred, target, classes=(RV, MYO, LV))
    assert np.isnan(dice[0]) and dice[1] == 0.0 and dice[2] == pytest.approx(2 * 4 / (4 + 8))
    with pytest.raises(ValueError, match="shapes differ"):
        dice_per_class(pred, target[0])


def test_bundled_weights_load_and_refuse_tampering(tmp_path):
    model = Segmenter.from_pretrained()  # sha256 checked inside
    assert isinstance(model, Segmenter) and not model.training and model.config.image_size == 64
    metrics = model.metrics["metrics"]
    assert {"val", "test"} <= set(metrics) and metrics["val"]["LV"]["dice"] > 0.8
    folder = shutil.copytree(resolve("segmenter"), tmp_path / "segmenter")
    assert (folder / "README.md").read_text().count("CC BY-NC-SA 4.0")
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        Segmenter.from_pretrained(folder)


@pytest.fixture(scope="module")
def val_subset(prepared_default):
    """A handful of real val cines from the prepared dataset."""
    val = prepared_default.split("val")
    return val.subset(np.arange(len(val)) < 12)


def test_bundled_segmenter_on_real_val_cines(val_subset):
    model = Segmenter.from_pretrained()
    labels = segment_cine(model, val_subset.cines.astype(np.float32) / 255.0)  # (N, T, H, W)
    assert labels.shape == val_subset.cines.shape
    ed = dice_per_class(labels[:, 0], val_subset.ed_masks)
    es_pred = segment_cine(model, val_subset.es_images.astype(np.float32)[:, None] / 255.0)[:, 0]
    es = dice_per_class(es_pred, val_subset.es_masks)
    for dice in (ed, es):  # RV, MYO, LV pooled over the handful
        assert dice[2] > 0.8 and dice[1] > 0.6 and dice[0] > 0.6, (ed, es)
