"""The motion half of the representation: warping, registration, the PCA motion space, bad input."""

import dataclasses

import numpy as np
import pytest
import torch

from cardiosynth.models.motion import (CONFIGS, MotionEncoding, MotionModel, MotionRegistration, identity_grid, register,
                                      warp_through_cycle)

SMALL = dataclasses.replace(CONFIGS["default"], frames=4, size=32, grid=8, temporal_components=2,
                            registration=MotionRegistration(register_iterations=150, register_lr=0.02),
                            encoder=MotionEncoding(iterations=80))


def disc(centre: tuple[float, float], radius: float = 6.0, size: int = 32) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    distance = torch.sqrt((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2)
    return torch.sigmoid((radius - distance) * 1.5)  # soft edge: registration needs a gradient


def moving_disc_cine(shift: float) -> torch.Tensor:
    """(T, H, W): a disc that moves ``shift`` px to the right per frame."""
    return torch.stack([disc((16.0, 13.0 + shift * t)) for t in range(SMALL.frames)])


def test_zero_motion_is_identity(one_thread):
    ed = torch.rand(2, 32, 32)
    assert torch.allclose(warp_through_cycle(ed, torch.zeros(2, *SMALL.control_shape))[:, 2], ed, atol=1e-5)
    grid = identity_grid(32)
    assert grid.shape == (32, 32, 2) and grid[0, 0, 0] < 0 < grid[0, -1, 0]  # x grows along columns


def test_registration_warps_a_moved_disc_back(one_thread):
    cine = moving_disc_cine(2.0)[None]
    control = register(cine, SMALL)
    assert torch.all(control[:, 0] == 0), "the ED frame is the anchor"
    before = (cine[:, 0:1] - cine).pow(2).mean()
    after = (warp_through_cycle(cine[:, 0], control) - cine).pow(2).mean()
    assert after < 0.1 * before
    # a disc moving right is sampled from the left: dx (control channel 1) at its centre is negative
    assert control[0, -1, 1, 4, 3] < -0.1


def test_temporal_motion_modes_round_trip(one_thread):
    controls = torch.cat([register(moving_disc_cine(s)[None], SMALL) for s in np.linspace(-2, 2, 6)])
    model = MotionModel(SMALL)
    fit = model.fit(controls)
    assert fit["temporal_explained_variance"] > 0.9 and fit["n_training_cines"] == 6
    assert torch.all(model.temporal_basis[:, 0] == 0), "ED never moves"
    codes = model.project(controls)
    assert codes.shape == (6, 2, 2, 8, 8)
    assert torch.allclose(model.control(codes), controls, atol=0.05 * float(controls.abs().max()))
    with torch.inference_mode():  # e.g. frames just decoded by the frame autoencoder
        cine = moving_disc_cine(1.5)[None]
    code = model.encode(cine)
    rebuilt = model.decode(cine[:, 0], code)
    assert rebuilt.shape == cine.shape and 0 <= float(rebuilt.min()) <= float(rebuilt.max()) <= 1
    assert (rebuilt - cine).pow(2).mean() < 0.2 * (cine[:, :1] - cine).pow(2).mean()


def test_bad_input_gets_one_clear_error(one_thread):
    model = MotionModel(SMALL)
    with pytest.raises(ValueError, match="cines must be float"):
        model.encode(torch.rand(1, 5, 32, 32))
    broken = torch.rand(1, 4, 32, 32)
    broken[0, 2, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.encode(broken)
    with pytest.raises(ValueError, match="codes must be"):
        model.decode(torch.rand(1, 32, 32), torch.zeros(1, 7))
    with pytest.raises(ValueError, match="controls must be"):
        model.fit(torch.zeros(3, 5, 2, 8, 8))
    with pytest.raises(ValueError, match="at least 2 training cines"):
        model.fit(torch.zeros(1, *SMALL.control_shape))


def test_separable_upsampling_matches_pytorch_bicubic():
    from cardiosynth.models.motion import displacement

    control = torch.randn(2, 3, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    reference = torch.nn.functional.interpolate(control.flatten(0, 1), size=(32, 32), mode="bicubic",
                                                align_corners=True).view(2, 3, 2, 32, 32)
    assert torch.allclose(displacement(control, 32), reference.permute(0, 1, 3, 4, 2).flip(-1), atol=1e-5)


def test_fit_motion_command_resumes_from_its_registration_cache(tmp_path, monkeypatch, one_thread):
    """``training.fit_motion``: registrations cached per batch (a rerun reads them instead of registering
    again), the bundle loads with its sha256, and the same data give the same weights."""
    from acdc_fixture import write_acdc, write_split

    from cardiosynth.data.prepare import CONFIGS as PREPARE
    from cardiosynth.data.prepare import prepare_acdc
    from cardiosynth.models.motion import MotionModel
    from cardiosynth.weights import read_config
    from training import fit_motion

    monkeypatch.setenv("CARDIOSYNTH_CACHE", str(tmp_path / "cache"))
    patients = {"patient001": "NOR", "patient002": "DCM"}
    root = write_acdc(tmp_path / "acdc", patients)
    prepare_acdc(root, PREPARE["default"], tmp_path / "prepared", write_split(tmp_path / "split.csv", patients),
                 progress=False)
    config = dataclasses.replace(CONFIGS["default"], registration=MotionRegistration(register_iterations=5))
    first = fit_motion.fit(config, tmp_path / "motion", str(tmp_path / "prepared"), "test")
    cached = sorted((tmp_path / "cache" / "runs").glob("motion_*/controls_*.safetensors"))
    assert cached and first["n_training_cines"] >= 2
    from cardiosynth.render import registration

    monkeypatch.setattr(registration, "register", lambda *a, **k: pytest.fail("registered again despite the cache"))
    sha = read_config(tmp_path / "motion")["sha256"]
    fit_motion.fit(config, tmp_path / "motion", str(tmp_path / "prepared"), "test")
    assert read_config(tmp_path / "motion")["sha256"] == sha
    assert MotionModel.from_pretrained(tmp_path / "motion").temporal_basis.shape == (5, 16)
