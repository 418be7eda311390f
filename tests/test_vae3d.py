"""3D-VAE: shapes (default and paper), a tiny overfit, determinism, the scaled-latent helpers, bad input,
masked metrics, and the bundled weights (sha256 check, stored latent scale, quality on real val cines)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from cardiosynth.models.latents import LatentStats
from cardiosynth.models.vae3d import (
    CONFIGS,
    VAE3D,
    VAE3DConfig,
    decode_cines,
    encode_cines,
    masked_metrics,
)
from cardiosynth.weights import WeightsError, resolve
from training.common import seed_everything
from training.recipes import VAE3D_RECIPES, VAE3DRecipe
from training.train_vae3d import augment, loss_terms

TINY = VAE3DConfig(frames=8, size=16, latent_channels=4, f_t=2, f_s=4, channels=(8, 16, 16), enc_blocks=(0, 1, 1),
                   dec_blocks=(1, 1, 1), groups=4)
TINY_RECIPE = VAE3DRecipe(crop_frames=8, crop_size=16, aug_noise_std=0.0)


pytestmark = pytest.mark.usefixtures("one_thread")


def phantom(n: int = 4, frames: int = 8, size: int = 16, seed: int = 0) -> np.ndarray:
    """Beating discs: (n, T, H, W) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    out = np.zeros((n, frames, size, size), np.float32)
    for i in range(n):
        cy, cx = size / 2 + rng.uniform(-1.5, 1.5, 2)
        for t in range(frames):
            radius = size * (0.22 + 0.08 * np.cos(2 * np.pi * t / frames))
            out[i, t] = 0.15 + 0.7 * (np.hypot(rows - cy, cols - cx) <= radius)
    return out


def test_default_shapes():
    config = CONFIGS["default"]
    assert config.latent_shape == (4, 8, 16, 16)
    model = VAE3D(config).eval()
    with torch.no_grad():
        recon, mean, logvar = model(torch.rand(2, 1, 16, 64, 64), sample=False)
    assert recon.shape == (2, 1, 16, 64, 64) and mean.shape == logvar.shape == (2, 4, 8, 16, 16)


def test_paper_config_builds_and_takes_a_training_step():
    config = CONFIGS["paper"]
    assert config.latent_shape == (16, 25, 12, 12)
    with torch.device("meta"):  # full-size forward on the meta device: shapes without the arithmetic
        meta = VAE3D(config)
        mean, _ = meta.encode(torch.rand(1, 1, 50, 96, 96))
        assert mean.shape == (1, 16, 25, 12, 12)
        assert meta.decode(mean).shape == (1, 1, 50, 96, 96)
    model = VAE3D(config).train()  # one training step as the trainer takes it (random crops of augmented cines)
    recipe = VAE3D_RECIPES["paper"]
    recipe.check_crops(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr)
    generator = torch.Generator().manual_seed(0)
    x, v = augment(torch.rand(1, 50, 96, 96), torch.ones(1, 96, 96, dtype=torch.bool), recipe, generator)
    assert x.shape == (1, recipe.crop_frames, recipe.crop_size, recipe.crop_size)
    terms = loss_terms(model, x, v, recipe, generator)
    optimizer.zero_grad()
    terms["total"].backward()
    optimizer.step()
    assert torch.isfinite(terms["total"])


def test_config_validation():
    with pytest.raises(ValueError, match="power of 2"):
        VAE3DConfig(f_s=3)
    with pytest.raises(ValueError, match="levels"):
        VAE3DConfig(f_s=8, channels=(32, 64, 128))
    with pytest.raises(ValueError, match="divisible"):
        VAE3DConfig(frames=15)
    VAE3D_RECIPES["default"].check_crops(CONFIGS["default"])
    with pytest.raises(ValueError, match="crop_frames / crop_size"):
        VAE3DRecipe(crop_frames=32).check_crops(CONFIGS["default"])  # more frames than the cine has
    with pytest.raises(ValueError, match="crop_frames / crop_size"):
        VAE3DRecipe(crop_size=50).check_crops(CONFIGS["default"])  # not divisible by f_s = 4


def test_tiny_overfit_loss_decreases():
    seed_everything(0)
    cines = torch.from_numpy(phantom(4))
    valid = torch.ones(4, 16, 16, dtype=torch.bool)
    model = VAE3D(TINY).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        terms = loss_terms(model, cines, valid, TINY_RECIPE, generator)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        losses.append(float(terms["l1"].detach()))
    assert np.mean(losses[-5:]) < 0.4 * np.mean(losses[:3]), losses


def _train_steps(seed: int, steps: int = 3) -> dict[str, torch.Tensor]:
    generator = seed_everything(seed)
    model = VAE3D(TINY).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cines, valid = torch.from_numpy(phantom(4)), torch.ones(4, 16, 16, dtype=torch.bool)
    for _ in range(steps):
        x, v = augment(cines, valid, TINY_RECIPE, generator)
        loss = loss_terms(model, x, v, TINY_RECIPE, generator)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.state_dict()


def test_training_is_deterministic_given_the_seed():
    a, b, c = _train_steps(0), _train_steps(0), _train_steps(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_padding_is_ignored_by_loss_and_metrics():
    seed_everything(0)
    model = VAE3D(TINY).eval()
    cines = torch.from_numpy(phantom(2))
    valid = torch.zeros(2, 16, 16, dtype=torch.bool)
    valid[:, 2:14, 2:14] = True
    other = cines.clone()
    other[:, :, ~valid[0]] = 1.0  # change only padded pixels of the *reconstruction* side
    m1 = masked_metrics(cines, cines, valid)
    assert torch.allclose(m1["ssim"], torch.ones(2), atol=1e-5) and (m1["psnr"] > 90).all()
    m2 = masked_metrics(other, cines, valid)
    assert torch.allclose(m1["psnr"], m2["psnr"]) and torch.allclose(m1["ssim"], m2["ssim"])
    with torch.no_grad():
        l_a = loss_terms(model, cines, valid, TINY_RECIPE, sample=False)
    assert torch.isfinite(l_a["total"])


def test_round_trip_helpers_shape_range_and_scale():
    model = VAE3D(TINY).eval()
    frames = phantom(3)
    z = encode_cines(model, frames)
    assert z.shape == (3, *TINY.latent_shape) and z.dtype == torch.float32
    out = decode_cines(model, z)
    assert out.shape == (3, 8, 16, 16) and out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    scaled = VAE3D(dataclasses.replace(TINY, stats=LatentStats(latent_scale=2.0))).eval()
    scaled.load_state_dict(model.state_dict())
    assert torch.allclose(encode_cines(scaled, frames), 2 * z, atol=1e-6)
    assert torch.allclose(decode_cines(scaled, 2 * z), out, atol=1e-5)
    assert torch.equal(encode_cines(model, torch.from_numpy(frames)), z)  # tensors accepted too


@pytest.mark.parametrize("frames, message", [
    (np.zeros((8, 16, 16), np.float32), "one cine"),
    (np.zeros((2, 8, 16, 17), np.float32), "shape"),
    (np.zeros((2, 8, 16, 16), np.uint8), "divide uint8 by 255"),
    (np.full((2, 8, 16, 16), np.nan, np.float32), "NaN"),
    (np.full((2, 8, 16, 16), 255.0, np.float32), r"\[0, 1\]"),
    (np.zeros((0, 8, 16, 16), np.float32), "empty"),
    ([[0.0]], "numpy array or torch tensor"),
])
def test_encode_cines_rejects_bad_input(frames, message):
    with pytest.raises(ValueError, match=message):
        encode_cines(VAE3D(TINY).eval(), frames)


def test_decode_and_encode_reject_bad_shapes():
    model = VAE3D(TINY).eval()
    with pytest.raises(ValueError, match="scaled latents"):
        decode_cines(model, torch.zeros(1, 3, 4, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        decode_cines(model, torch.full((1, *TINY.latent_shape), float("nan")))
    with pytest.raises(ValueError, match="divisible"):
        model.encode(torch.zeros(1, 1, 7, 16, 16))
    with pytest.raises(ValueError, match="dtype"):
        model.encode(torch.zeros(1, 1, 8, 16, 16, dtype=torch.uint8))


def test_bundled_weights_load_and_refuse_tampering(tmp_path):
    model = VAE3D.from_pretrained()  # sha256 checked inside
    assert isinstance(model, VAE3D) and not model.training
    assert model.config.latent_shape == CONFIGS["default"].latent_shape
    assert model.config.stats.latent_scale != 1.0 and np.isfinite(model.config.stats.latent_scale)
    metrics = model.metrics["metrics"]
    assert metrics["val"]["psnr"]["mean"] > 22 and metrics["test"]["ssim"]["mean"] > 0.75
    folder = shutil.copytree(resolve("vae3d"), tmp_path / "vae3d")
    assert "CC BY-NC-SA 4.0" in (folder / "README.md").read_text()
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        VAE3D.from_pretrained(folder)


def test_bundled_weights_reconstruct_real_val_cines(prepared_default):
    val = prepared_default.split("val")
    idx = np.arange(len(val))[:4]
    frames = val.cines[idx].astype(np.float32) / 255.0
    model = VAE3D.from_pretrained()
    z = encode_cines(model, frames)
    assert 0.3 < float(z.std()) < 3.0  # scaled latents are roughly unit-scale
    recon = decode_cines(model, z)
    metrics = masked_metrics(recon, torch.from_numpy(frames), torch.from_numpy(val.valid[idx]))
    assert (metrics["psnr"] > 19).all() and (metrics["ssim"] > 0.65).all(), metrics
