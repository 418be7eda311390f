"""MAR with per-token diffusion loss: tokens, schedules, shapes, determinism, conditioning, and the training loop
on random latents (the real anatomy + motion codes are not needed to show the model and the loop work)."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torchrun_check import run_two_ranks

from cardiosynth import phenotypes as ph
from cardiosynth.models.mar import (CONFIGS, MAR, MARConfig, MARSampler, PhenotypeScaler, decoding_schedule,
                                    patchify, sample_mask_ratio, unpatchify)
from cardiosynth.weights import WeightsError, write_weights
from training.recipes import MARRecipe

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(sampler: dict | None = None, scaler: PhenotypeScaler | None = None, **architecture) -> MARConfig:
    """Latent 4x4x4x4, patch 2x2x2 -> 8 tokens of 32; one layer each side; scaler = identity."""
    base = dict(spacing_mm=2.2, latent_channels=4, latent_frames=4, latent_size=4, patch_t=2, patch_s=2, width=64,
                encoder_depth=1, decoder_depth=1, heads=2, buffer_size=2, dropout=0.0, denoiser_width=64,
                denoiser_blocks=2)
    return MARConfig(**{**base, **architecture},
                     sampler=MARSampler(**{"sampling_steps": 10, "num_iter": 4, **(sampler or {})}),
                     scaler=PhenotypeScaler(mean=(0.0,) * 9, std=(1.0,) * 9) if scaler is None else scaler)


def tiny_recipe(**changes) -> MARRecipe:
    """The training tests' recipe: 2 epochs of batch 2, validated each epoch, no augmented copies."""
    return MARRecipe(**{"epochs": 2, "batch_size": 2, "warmup_steps": 5, "eval_every": 1, "augment_copies": 0,
                        **changes})


def rows(values: list[float], positions: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Schema-unit conditions (phenotypes (N, 9), positions (N,)); with the identity scaler, value v is v SD
    from the mean for every phenotype."""
    return (torch.tensor([[value] * len(ph.NAMES) for value in values], dtype=torch.float64),
            torch.tensor(positions, dtype=torch.float64))


def train_steps(model: MAR, latents, phen, pos, steps: int, lr: float, **loss_options) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        loss = model.loss(latents, phen, pos, generator, **loss_options)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def test_patchify_round_trip_and_token_layout():
    for config in (CONFIGS["default"], CONFIGS["vae3d"], CONFIGS["paper"]):
        x = torch.randn(2, *config.latent_shape)
        tokens = patchify(x, config.patch_t, config.patch_s)
        assert tokens.shape == (2, config.num_tokens, config.token_dim)
        assert torch.equal(unpatchify(tokens, config.latent_channels, config.grid, config.patch_t, config.patch_s), x)
        # token 0 is the first p_t x p_s x p_s block of every channel
        pt, ps = config.patch_t, config.patch_s
        assert torch.equal(tokens[0, 0], x[0, :, :pt, :ps, :ps].reshape(-1))
    assert (CONFIGS["default"].num_tokens, CONFIGS["default"].token_dim) == (64, 72)
    assert (CONFIGS["paper"].num_tokens, CONFIGS["paper"].token_dim) == (144, 80)
    assert (CONFIGS["vae3d"].num_tokens, CONFIGS["vae3d"].token_dim) == (64, 128)  # the bundled de novo MAR


def test_default_shapes_and_paper_config():
    torch.manual_seed(0)
    model = MAR(dataclasses.replace(CONFIGS["default"], encoder_depth=1, decoder_depth=1))
    x = torch.randn(2, *CONFIGS["default"].latent_shape)
    loss = model.loss(x, torch.randn(2, 9), torch.rand(2))
    assert loss.dim() == 0 and torch.isfinite(loss)
    with torch.device("meta"):  # the real sizes, counted without allocating them
        full_default, paper = MAR(CONFIGS["default"]).count_parameters(), MAR(CONFIGS["paper"]).count_parameters()
    assert 12e6 < full_default < 17e6  # DESIGN budget ~10 M, + the 512-wide denoiser
    assert 150e6 < paper < 230e6  # MAR-B-like: 24 blocks of 768 + denoiser 3 x 1024
    small_paper = dataclasses.replace(CONFIGS["paper"], encoder_depth=1, decoder_depth=1, width=96, heads=4,
                                      denoiser_width=64, buffer_size=4,
                                      scaler=PhenotypeScaler(mean=(0.0,) * 9, std=(1.0,) * 9))
    model = MAR(small_paper)
    loss = model.loss(torch.randn(1, 20, 1, 24, 24), torch.randn(1, 9), torch.rand(1))
    assert torch.isfinite(loss)
    out = model.eval().generate(*rows([0.0], [0.5]), num_iter=2, cfg=2.0, sampling_steps=2, seed=0)
    assert out.shape == (1, 20, 1, 24, 24)


def test_mask_ratio_sampler_range():
    ratios = sample_mask_ratio(20000, torch.Generator().manual_seed(0), minimum=0.7, std=0.25)
    assert ratios.min() >= 0.7 and ratios.max() <= 1.0
    # truncated normal N(1, 0.25) on [0.7, 1]: mean 1 + 0.25 (phi(-1.2) - phi(0)) / (Phi(0) - Phi(-1.2)) = 0.867
    assert abs(float(ratios.mean()) - 0.867) < 0.005
    assert (ratios > 0.9).sum() > (ratios < 0.8).sum()  # density grows towards fully masked


def test_decoding_schedule():
    for tokens, steps in ((256, 8), (256, 16), (180, 16), (8, 4), (8, 8)):
        masked = decoding_schedule(tokens, steps)
        assert len(masked) == steps and masked[-1] == 0
        assert all(m >= 1 for m in masked[:-1])  # at least one token stays masked until the last step
        assert all(a > b for a, b in zip([tokens] + masked, masked))  # every step unmasks at least one
    assert decoding_schedule(256, 8)[0] == math.floor(256 * math.cos(math.pi / 2 / 8))


def test_training_loss_decreases_on_tiny_overfit():
    torch.manual_seed(0)
    model = MAR(tiny())
    latents, phen, pos = torch.randn(2, 4, 4, 4, 4), torch.randn(2, 9), torch.rand(2)

    def fixed_loss():
        model.eval()
        with torch.no_grad():
            return float(model.loss(latents, phen, pos, torch.Generator().manual_seed(7)))

    before = fixed_loss()
    train_steps(model, latents, phen, pos, steps=100, lr=2e-3, condition_dropout=0.0)
    assert fixed_loss() < 0.5 * before


def test_generation_is_deterministic_and_cfg_runs():
    torch.manual_seed(0)
    model = MAR(tiny()).eval()
    conditions = rows([0.5, -0.5], [0.2, 0.8])
    a = model.generate(*conditions, cfg=3.0, seed=0)
    assert a.shape == (2, 4, 4, 4, 4) and torch.isfinite(a).all()
    assert torch.equal(a, model.generate(*conditions, cfg=3.0, seed=0))
    assert not torch.allclose(a, model.generate(*conditions, cfg=3.0, seed=1))
    for cfg, schedule in ((1.0, "linear"), (2.0, "constant")):
        assert model.generate(*conditions, cfg=cfg, cfg_schedule=schedule, seed=0).shape == a.shape
    assert model.generate(None, num_samples=3, seed=0).shape == (3, 4, 4, 4, 4)
    one = model.generate(conditions[0][:1].numpy(), [0.2], seed=0)  # arrays work as well as tensors
    assert one.shape == (1, 4, 4, 4, 4)


def test_known_channels_are_kept_exactly_and_the_rest_drawn():
    """Editing: the first channels given, the others generated; different seeds change only the drawn ones."""
    torch.manual_seed(0)
    model = MAR(tiny()).eval()
    conditions = rows([0.5, -0.5], [0.2, 0.8])
    known = torch.randn(2, 4, 4, 4, 4)
    a = model.generate(*conditions, seed=0, known=known, known_channels=1)
    b = model.generate(*conditions, seed=1, known=known, known_channels=1)
    assert torch.allclose(a[:, :1], known[:, :1], atol=1e-5) and torch.allclose(b[:, :1], known[:, :1], atol=1e-5)
    assert not torch.allclose(a[:, 1:], b[:, 1:]) and torch.isfinite(a).all()
    with pytest.raises(ValueError, match="known_channels"):
        model.generate(*conditions, known=known, known_channels=4)


@pytest.mark.parametrize("order", ["temporal", "reverse"])
def test_temporal_decoding_orders_fill_one_time_step_after_another(order, monkeypatch):
    """decoding_order "temporal" decodes the first latent time step's tokens first, then the next...; "reverse"
    the last one first. Checked on the masks each decoding step leaves."""
    from cardiosynth.models import mar as mar_module

    model = MAR(tiny(latent_frames=8, sampler={"num_iter": 6, "decoding_order": order})).eval()  # 4 time steps x 2 x 2 = 16 tokens
    masks, mask_by_order = [], mar_module.mask_by_order
    monkeypatch.setattr(mar_module, "mask_by_order", lambda *args: masks.append(mask_by_order(*args)) or masks[-1])
    model.generate(*rows([0.0], [0.5]), cfg=1.0, seed=0)
    time_step = torch.arange(model.config.num_tokens) // (model.config.grid[1] * model.config.grid[2])
    if order == "reverse":
        time_step = time_step.max() - time_step
    decoded_when = torch.zeros(model.config.num_tokens, dtype=torch.long)
    still_masked = torch.ones(model.config.num_tokens, dtype=torch.bool)
    for k, mask in enumerate(masks):
        decoded_when[still_masked & ~mask[0]] = k
        still_masked = mask[0]
    assert len(masks) == 6 and not still_masked.any()
    earlier = time_step[:, None] < time_step[None, :]
    assert (decoded_when[:, None] <= decoded_when[None, :])[earlier].all()  # an earlier time step is never later
    with pytest.raises(ValueError, match="decoding_order"):
        tiny(sampler={"decoding_order": "raster"})


def test_conditions_missing_or_nan_are_clear_errors():
    model = MAR(tiny()).eval()
    phenotypes, position = rows([0.0], [0.5])
    with pytest.raises(ValueError, match=r"Expected phenotypes \(N, 9\).*LVEDV"):
        model.generate(phenotypes[:, :8], position)
    bad = phenotypes.clone()
    bad[0, ph.NAMES.index("RVEF")] = float("nan")
    with pytest.raises(ValueError, match="NaN.*RVEF"):
        model.generate(bad, position)
    with pytest.raises(ValueError, match="1 phenotype rows but 2 slice positions"):
        model.generate(phenotypes, torch.tensor([0.2, 0.4]))
    with pytest.raises(ValueError, match="NaN"):
        model.loss(torch.randn(1, 4, 4, 4, 4), torch.full((1, 9), float("nan")), torch.rand(1))
    with pytest.raises(ValueError, match="expects scaled latents"):
        model.loss(torch.randn(1, 4, 8, 4, 4), torch.zeros(1, 9), torch.rand(1))
    with pytest.raises(ValueError, match="num_samples"):
        model.generate(None)
    with pytest.raises(ValueError, match="no phenotype scaler"):
        MAR(tiny(scaler=PhenotypeScaler())).generate(phenotypes, position)
    assert torch.equal(model.generate(phenotypes, seed=0), model.generate(phenotypes, position, seed=0))  # default 0.5


def test_conditioning_steers_generation():
    """Two latents with opposite conditions, overfitted: each condition must generate latents nearer its own."""
    torch.manual_seed(0)
    model = MAR(tiny())
    targets = torch.randn(2, 4, 4, 4, 4)
    conditions = rows([1.0, -1.0], [0.2, 0.8])
    phen, pos = model.standardise(*conditions)
    train_steps(model, targets, phen, pos, steps=400, lr=2e-3, condition_dropout=0.1, diffusion_batch_mul=8)
    out = model.generate(torch.cat([conditions[0]] * 2), torch.cat([conditions[1]] * 2), cfg=2.0, temperature=0.5, seed=0)
    distance = torch.cdist(out.flatten(1), targets.flatten(1))  # (4 samples, 2 targets)
    assert (distance[[0, 2], 0] < distance[[0, 2], 1]).all() and (distance[[1, 3], 1] < distance[[1, 3], 0]).all()


def test_fit_bundle_resume_and_load(tmp_path):
    from training.train_mar import fit

    config, recipe = tiny(), tiny_recipe(epochs=2, ema_decay=0.9)
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(2, 6, 4, 4, 4, 4, generator=generator)  # 2 versions (clean + 1 augmented) of 6 cines
    val = torch.randn(3, 4, 4, 4, 4, generator=generator)
    conditions = (torch.randn(2, 6, 9, generator=generator), torch.rand(6, generator=generator))  # per version
    val_conditions = (torch.randn(3, 9, generator=generator), torch.rand(3, generator=generator))
    run = tmp_path / "run"
    ema, best = fit(config, recipe, train, conditions, val, val_conditions, run, device="cpu", progress=False)
    assert np.isfinite(best["val_loss"]) and (run / "best.safetensors").is_file()
    log = [line for line in (run / "log.jsonl").read_text().splitlines() if line]
    assert len(log) == 2
    # resume from "last": continues at epoch 2 of 3
    longer = dataclasses.replace(recipe, epochs=3)
    ema, best = fit(config, longer, train, conditions, val, val_conditions, run, resume=True, device="cpu",
                    progress=False)
    assert len((run / "log.jsonl").read_text().splitlines()) == 3
    frame_ae = write_weights(tmp_path / "frame_ae", torch.nn.Linear(2, 2), {"stats": {"latent_scale": 1.0}}, "")
    motion = write_weights(tmp_path / "motion", torch.nn.Linear(2, 2), {}, "")
    other = write_weights(tmp_path / "other_motion", torch.nn.Linear(3, 3), {}, "")
    folder = ema.save_pretrained(tmp_path / "mar", "# card", depends_on={"frame_ae": frame_ae, "motion": motion})
    loaded = MAR.from_pretrained(folder, frame_ae=frame_ae, motion=motion)
    assert torch.equal(loaded.generate(*rows([0.0], [0.5]), seed=3), ema.generate(*rows([0.0], [0.5]), seed=3))
    with pytest.raises(WeightsError, match="was trained with motion"):
        MAR.from_pretrained(folder, frame_ae=frame_ae, motion=other)


def test_a_time_budget_stops_training_after_the_first_step_and_still_selects(tmp_path):
    from training.train_mar import fit

    config = tiny()
    generator = torch.Generator().manual_seed(0)
    train, val = torch.randn(1, 6, 4, 4, 4, 4, generator=generator), torch.randn(3, 4, 4, 4, 4, generator=generator)
    conditions = (torch.randn(6, 9, generator=generator), torch.rand(6, generator=generator))
    val_conditions = (torch.randn(3, 9, generator=generator), torch.rand(3, generator=generator))
    _, best = fit(config, tiny_recipe(epochs=50), train, conditions, val, val_conditions, tmp_path / "run",
                  device="cpu", progress=False, max_minutes=0.0)
    assert best["step"] == 1 and np.isfinite(best["val_loss"])  # stopped at once, validated, selected


def test_zoom_augmentation_scales_volumes_not_ejection_fraction():
    """A warp that zooms the heart by s must be conditioned on volumes and mass x s^2 (EF unchanged); the factor
    comes from the affine itself, checked against the area of a warped disk."""
    from training.augment import random_affine, warp
    from training.train_mar import area_factor, condition_tensors

    theta = random_affine(16, torch.Generator().manual_seed(0), scale_range=(0.8, 1.25), max_shift=0.0)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    disk = (((yy - 31.5) ** 2 + (xx - 31.5) ** 2) < 12 ** 2).float()[None, None].repeat(16, 1, 1, 1)
    measured = warp(disk, theta).sum((1, 2, 3)) / disk.sum((1, 2, 3))
    factors = area_factor(theta)
    assert factors.min() < 0.9 and factors.max() > 1.1  # the draw zooms both ways
    assert torch.allclose(measured, factors, rtol=0.03)

    config = tiny()  # the identity scaler
    table = pd.DataFrame([{"LVEDV": 150.0, "LVESV": 60.0, "LVSV": 90.0, "LVEF": 60.0, "LVM": 120.0, "RVEDV": 140.0,
                           "RVESV": 70.0, "RVSV": 70.0, "RVEF": 50.0, "slice_position": 0.4}])
    versions = np.array([[1.0], [1.21]])
    phen, positions = condition_tensors(table, config, versions)
    assert phen.shape == (2, 1, 9) and positions.tolist() == pytest.approx([0.4])
    clean, zoomed = (dict(zip(ph.NAMES, row[0].tolist())) for row in phen)
    assert zoomed["LVEDV"] == pytest.approx(150 * 1.21) and zoomed["LVM"] == pytest.approx(120 * 1.21)
    assert zoomed["LVEF"] == clean["LVEF"] == 60.0 and zoomed["RVEF"] == 50.0
    assert zoomed["LVSV"] / zoomed["LVEDV"] == pytest.approx(clean["LVSV"] / clean["LVEDV"])
    assert torch.equal(condition_tensors(table, config)[0], phen[0])


def test_missing_weights_say_how_to_train(tmp_path):
    with pytest.raises(WeightsError, match="python -m training.train_mar"):
        MAR.from_pretrained(tmp_path / "nothing")


def test_fit_runs_under_torchrun_ddp_on_cpu(tmp_path):
    """Two Gloo processes end with the same weights; 8 cines / 2 ranks / batch 2 = 2 steps an epoch."""
    log = run_two_ranks("""
from test_mar import tiny, tiny_recipe
from training.train_mar import fit
g = torch.Generator().manual_seed(0)
train = torch.randn(1, 8, 4, 4, 4, 4, generator=g)
conditions = (torch.randn(8, 9, generator=g), torch.rand(8, generator=g))
ema, best = fit(tiny(), tiny_recipe(epochs=2, batch_size=2), train, conditions, train[0, :2],
                (conditions[0][:2], conditions[1][:2]), RUN, device="cpu", progress=False)
""", tmp_path)
    assert len(log) == 2 and log[-1]["step"] == 4
