"""The renderer: identity and shift controls, noise restoration, the anatomical deformation, the anatomy bank
(build, hash-checked load, seeded choice) and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cardiosynth.render.bank import AnatomyBank, AnatomyBankConfig, EmptyBankError
from cardiosynth.render.fields import anatomy_deformation, motion_positions
from cardiosynth.render.renderer import motion_scale
from cardiosynth.render.sampling import KERNELS, identity_positions, noise_sigma, resample
from cardiosynth.weights import WeightsError


def frame(seed: int = 0, size: int = 64) -> np.ndarray:
    """A uint8-levelled test frame: a bright disc on a textured background."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    disc = ((rows - size / 2) ** 2 + (cols - size / 2) ** 2 < 12 ** 2) * 0.5
    return np.round(np.clip(0.2 + disc + rng.normal(0, 0.03, (size, size)), 0, 1) * 255) / 255


@pytest.mark.parametrize("kernel", KERNELS)
def test_zero_displacement_returns_the_source_bit_for_bit(kernel):
    source = frame()
    valid = np.ones_like(source, bool)
    valid[:, -5:] = False
    out = resample(source, identity_positions(64)[None].expand(3, 64, 64, 2), valid, kernel=kernel,
                   generator=torch.Generator().manual_seed(0))
    expected = np.where(valid, source, 0).astype(np.float32)
    assert np.array_equal(out[0], expected) and np.array_equal(out[2], expected)


def test_half_pixel_shift_keeps_the_noise_level_only_with_restoration():
    rng = np.random.default_rng(1)
    source = np.round(np.clip(0.5 + rng.normal(0, 0.05, (64, 64)), 0, 1) * 255) / 255
    shifted = identity_positions(64)[None] + 0.5
    level = noise_sigma(source)
    assert 0.04 < level < 0.06
    for kernel in ("bspline", "keys", "bilinear"):
        plain = resample(source, shifted, kernel=kernel, restore_noise=False)[0][4:-4, 4:-4]
        restored = resample(source, shifted, kernel=kernel, generator=torch.Generator().manual_seed(0))[0][4:-4, 4:-4]
        assert plain.std() < 0.92 * source.std(), kernel  # interpolation averaged the noise away...
        assert abs(restored.std() - source.std()) < 0.08 * source.std(), kernel  # ...and it is given back


def test_bspline_is_sharper_than_bilinear_on_a_smooth_edge():
    rows, cols = np.mgrid[:64, :64]
    smooth = 0.5 + 0.4 * np.sin(cols / 1.6)  # fast enough that interpolation errors exceed the 8-bit step
    shift = identity_positions(64)[None] + torch.tensor([0.0, 0.5], dtype=torch.float64)
    truth = 0.5 + 0.4 * np.sin((cols + 0.5) / 1.6)
    errors = {k: np.abs(resample(smooth, shift, kernel=k, restore_noise=False)[0] - truth)[8:-8, 8:-8].mean()
              for k in KERNELS}
    assert errors["bspline"] < errors["keys"] < errors["bilinear"]


def test_noise_is_seeded():
    source, shift = frame(), identity_positions(64)[None] + 0.3
    a = resample(source, shift, generator=torch.Generator().manual_seed(5))
    b = resample(source, shift, generator=torch.Generator().manual_seed(5))
    c = resample(source, shift, generator=torch.Generator().manual_seed(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("scale", [0.8, 1.25])
def test_deformation_moves_a_disc_area_by_the_asked_factor(scale):
    rows, cols = np.mgrid[:64, :64]
    radius = np.hypot(rows - 31.5, cols - 31.5)
    mask = np.where(radius < 9, 3, np.where(radius < 13, 2, 0)).astype(np.uint8)
    image = (mask == 3).astype(np.float64)
    field = anatomy_deformation(mask, lv_cavity_scale=scale, myocardium_area_scale=1.0, smooth_px=0.0)
    out = resample(image, identity_positions(64)[None] + field[None], kernel="bilinear", restore_noise=False)[0]
    assert (out > 0.5).sum() / (image > 0.5).sum() == pytest.approx(scale ** 2, rel=0.06)
    ring = ((mask > 0).astype(float))
    ring_out = resample(ring, identity_positions(64)[None] + field[None], kernel="bilinear", restore_noise=False)[0]
    myocardium_area = (ring_out > 0.5).sum() - (out > 0.5).sum()
    assert myocardium_area == pytest.approx((mask == 2).sum(), rel=0.1)  # the ring's area kept


def test_motion_scale_reaches_the_requested_contraction():
    assert motion_scale(55, 55, 0.5) == pytest.approx(1.0)
    assert motion_scale(55, 30, 0.5) < 1.0 < motion_scale(55, 70, 0.5)
    assert motion_scale(55, 55, 0.0) == 1.0  # no LV motion to scale


def test_bad_inputs_are_one_clear_error():
    source = frame()
    nan = identity_positions(64)[None].clone()
    nan[0, 3, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        resample(source, nan)
    with pytest.raises(ValueError, match="positions must be"):
        resample(source, identity_positions(32)[None])
    with pytest.raises(ValueError, match="one finite"):
        resample(np.zeros((2, 64, 64)), identity_positions(64)[None])
    with pytest.raises(ValueError, match="kernel"):
        resample(source, identity_positions(64)[None], kernel="lanczos")
    with pytest.raises(ValueError, match="positive"):
        anatomy_deformation(np.zeros((64, 64), np.uint8), lv_cavity_scale=float("nan"))
    with pytest.raises(EmptyBankError):
        AnatomyBank.from_arrays(AnatomyBankConfig(), [])


def tiny_bank(n: int = 6) -> AnatomyBank:
    config = AnatomyBankConfig(exemplars=n, frames=4, size=64, grid=4)
    rng = np.random.default_rng(0)
    phenotypes = rng.uniform(50, 200, (n, len(config.phenotypes))).astype(np.float32)
    phenotypes[:, config.phenotypes.index("LVEF")] = rng.uniform(20, 70, n)
    return AnatomyBank.from_arrays(
        config, [f"patient{i:03d}/slice{i % 3}" for i in range(n)],
        ed=np.stack([np.round(frame(i) * 255) for i in range(n)]).astype(np.uint8),
        valid=np.ones((n, 64, 64), np.uint8), ed_mask=np.zeros((n, 64, 64), np.uint8),
        es_mask=np.zeros((n, 64, 64), np.uint8), es_frame=np.full(n, 2),
        slice_position=np.linspace(0, 1, n).astype(np.float32), phenotypes=phenotypes,
        control=rng.normal(0, 0.01, (n, 4, 2, 4, 4)).astype(np.float32))


def test_bank_saves_loads_and_refuses_altered_weights(tmp_path):
    bank = tiny_bank()
    bank.save(tmp_path / "bank", {"exemplars": 6, "patients": 6, "split": "train"})
    loaded = AnatomyBank.from_pretrained(tmp_path / "bank")
    assert loaded.ids == bank.ids and torch.equal(loaded.ed, bank.ed)
    assert torch.allclose(loaded.control, bank.control, atol=1e-4)  # stored as float16
    card = (tmp_path / "bank" / "README.md").read_text()
    assert "CC BY-NC-SA 4.0" in card and "exemplar" in card
    assert "CC BY-NC-SA" in json.loads((tmp_path / "bank" / "config.json").read_text())["extra"]["licence"]
    weights = tmp_path / "bank" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(WeightsError, match="sha256"):
        AnatomyBank.from_pretrained(tmp_path / "bank")


def test_exemplar_choice_is_seeded_and_among_the_nearest():
    bank = tiny_bank()
    request = {name: float(bank.phenotypes[2, bank.config.phenotypes.index(name)]) for name in ("LVEDV", "LVM",
                                                                                                  "RVEDV", "LVEF")}
    draws = [bank.choose(request, float(bank.slice_position[2]), torch.Generator().manual_seed(s)) for s in range(20)]
    again = [bank.choose(request, float(bank.slice_position[2]), torch.Generator().manual_seed(s)) for s in range(20)]
    assert draws == again
    nearest = set(np.argsort(bank.distances(request, float(bank.slice_position[2])))[:5])
    assert set(draws) <= nearest and len(set(draws)) > 1
    excluded = bank.choose(request, 0.4, torch.Generator().manual_seed(0), exclude_subjects=("patient002",))
    assert bank.exemplar_id(excluded).split("/")[0] != "patient002"


def test_motion_positions_of_zero_control_are_the_identity():
    assert torch.equal(motion_positions(torch.zeros(4, 2, 4, 4), 64), identity_positions(64)[None].expand(4, 64, 64, 2))

