"""Phenotype VAE (the tensor model) and its prior over phenotype sets: shapes, training signal, determinism, exact
consistency, completion, plausibility, bad input, bundled weights (sha256)."""

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from cardiosynth import phenotypes as ph
from cardiosynth.models.phenotype_vae import (
    CoordinateScaler,
    PhenotypeVAE,
    PhenotypeVAEConfig,
    PhenotypeVAEInference,
    PlausibilityCalibration,
)
from cardiosynth.phenotype_prior import (
    PhenotypePrior,
    from_coordinates,
    in_plausible_range,
    to_coordinates,
)
from cardiosynth.phenotypes import PhenotypeError
from cardiosynth.weights import WeightsError
from training.common import with_epochs
from training.recipes import PHENOTYPE_VAE_RECIPES, PhenotypeVAERecipe

NORMAL = {"LVEDV": 140.0, "LVESV": 55.0, "LVM": 110.0, "RVEDV": 150.0, "RVESV": 70.0}


@pytest.fixture(scope="module")
def prior():
    return PhenotypePrior.from_pretrained()


@pytest.fixture(scope="module")
def acdc_table(acdc_root):
    from cardiosynth.data.acdc import read_phenotype_csv
    from cardiosynth.data.splits import load_split

    table = read_phenotype_csv(acdc_root)
    split = load_split()
    table = table[table["patient"].map(split) == "val"]
    return table[list(ph.NAMES)].reset_index(drop=True)


def assert_consistent(table: pd.DataFrame):
    """Derived phenotypes exactly as the schema defines them, and volumes that make sense."""
    for side in ("LV", "RV"):
        edv, esv, sv, ef = (table[f"{side}{k}"].to_numpy() for k in ("EDV", "ESV", "SV", "EF"))
        np.testing.assert_array_equal(sv, edv - esv)
        np.testing.assert_array_equal(ef, 100.0 * sv / edv)
        assert (esv > 0).all() and (esv < edv).all()


# ----------------------------------------------------------------------------------------- untrained model
def test_coordinates_round_trip():
    table = from_coordinates(to_coordinates(pd.DataFrame([NORMAL])))
    for name, value in NORMAL.items():
        assert table[name].iloc[0] == pytest.approx(value, rel=1e-12)
    assert table["LVEF"].iloc[0] == pytest.approx(100 * 85 / 140, rel=1e-12)
    assert_consistent(from_coordinates(np.random.default_rng(0).normal(size=(50, 5)) * 3))


def test_shapes_and_loss():
    config = PhenotypeVAEConfig(latent_dim=3, hidden=16)
    model = PhenotypeVAE(config)
    s = torch.randn(7, 5)
    mu, logvar = model.encode_tensor(s)
    assert mu.shape == logvar.shape == (7, 3)
    assert model.decode_tensor(mu).shape == (7, 5)
    out = model.loss(s, beta=1.0, samples=4, generator=torch.Generator().manual_seed(0))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    lp = model.log_density_tensor(s, 64, torch.Generator().manual_seed(0))
    assert lp.shape == (7,) and torch.isfinite(lp).all()


def test_tiny_overfit_loss_decreases(one_thread):
    torch.manual_seed(0)
    model = PhenotypeVAE(PhenotypeVAEConfig(latent_dim=2, hidden=16))
    s = torch.randn(12, 5) @ torch.randn(5, 5) * 0.5
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(300):
        out = model.loss(s, beta=1.0, samples=4, generator=g)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 1.0


# ----------------------------------------------------------------------------------------- bundled weights
def test_bundled_weights_load_and_refuse_tampering(prior, tmp_path):
    assert prior.config.phenotypes == ph.NAMES
    assert len(prior.config.scaler.mean) == 5 and len(prior.config.calibration.log_density) > 50
    folder = tmp_path / "tampered"
    shutil.copytree(vae_folder(), folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        PhenotypeVAE.from_pretrained(folder)


def test_config_keeps_its_parts_apart(prior):
    """Architecture at the top; the fitted scaler and calibration and the inference settings one dataclass each,
    nested the same way in config.json; the training recipe beside the config, not in it; --epochs reaches the
    recipe."""
    config = prior.config
    assert isinstance(config.scaler, CoordinateScaler) and isinstance(config.calibration, PlausibilityCalibration)
    assert isinstance(config.inference, PhenotypeVAEInference) and not hasattr(config, "recipe")
    payload = json.loads((vae_folder() / "config.json").read_text())
    saved = payload["config"]
    assert set(saved["scaler"]) == {"mean", "std"}
    assert set(saved["calibration"]) == {"log_density", "source", "training_range"}
    assert "importance_samples" in saved["inference"] and "recipe" not in saved
    assert set(payload["recipe"]) == {f.name for f in dataclasses.fields(PhenotypeVAERecipe)}
    assert PhenotypeVAEConfig.from_dict(dataclasses.asdict(config)) == config
    assert len(config.calibration.training_range) == len(ph.NAMES)
    recipe = PHENOTYPE_VAE_RECIPES["default"]
    shorter = with_epochs(recipe, 7)
    assert shorter.epochs == 7 and shorter.lr == recipe.lr
    with pytest.raises(ValueError, match="one value per coordinate"):
        PhenotypeVAEConfig(scaler=CoordinateScaler(mean=(0.0,) * 4, std=(1.0,) * 4))


def vae_folder():
    from cardiosynth.weights import resolve
    return resolve("phenotype_vae")


def test_sampling_is_deterministic_consistent_and_in_range(prior):
    a, b, c = prior.sample(64, 1.0, seed=5), prior.sample(64, 1.0, seed=5), prior.sample(64, 1.0, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    assert list(a.columns) == list(ph.NAMES)
    assert_consistent(a)
    assert in_plausible_range(prior.sample(500, 1.5, seed=1)).all()
    mean_heart = prior.sample(3, 0.0, seed=0)
    assert np.allclose(mean_heart.to_numpy(), mean_heart.iloc[[0]].to_numpy())
    # temperature controls the spread
    assert prior.sample(400, 0.5, seed=2)["LVEDV"].std() < prior.sample(400, 1.0, seed=2)["LVEDV"].std()


def test_encode_decode(prior, acdc_table):
    z = prior.encode(acdc_table)
    assert z.shape == (len(acdc_table), prior.config.latent_dim)
    rec = prior.decode(z)
    assert rec.shape == (len(acdc_table), len(ph.NAMES))
    assert_consistent(rec)
    # reconstruction is far better than the population spread
    err = np.abs(np.log(rec["LVEDV"].to_numpy() / acdc_table["LVEDV"].to_numpy()))
    assert np.median(err) < 0.15
    np.testing.assert_array_equal(prior.encode(dict(NORMAL)), prior.encode(pd.DataFrame([NORMAL])))


# ----------------------------------------------------------------------------------------- completion
@pytest.mark.parametrize("locks", [
    {"LVEDV": 220.0, "LVEF": 30.0},
    {"LVESV": 80.0},
    {"LVSV": 70.0, "RVEF": 45.0},
    {"LVM": 190.0, "RVEDV": 200.0, "RVESV": 120.0},
    {"LVEDV": 150.0, "LVESV": 60.0, "LVEF": 60.0, "LVM": 120.0, "RVEDV": 150.0, "RVESV": 70.0},
])
def test_completion_honours_locks_and_stays_consistent(prior, locks):
    best = prior.complete(locks, seed=0)
    draws = prior.complete(locks, n=6, temperature=1.0, seed=3)
    for table in (best, draws):
        assert_consistent(table)
        assert in_plausible_range(table).all()
        for name, value in locks.items():
            np.testing.assert_allclose(table[name].to_numpy(), value, rtol=1e-9)
    pd.testing.assert_frame_equal(draws, prior.complete(locks, n=6, temperature=1.0, seed=3))
    pd.testing.assert_frame_equal(best, prior.complete(locks, seed=0))
    if "LVM" not in locks:
        assert draws["LVM"].nunique() == 6  # the rest is resampled


def test_completion_follows_the_locks(prior):
    """Locking a dilated, poorly contracting LV should complete a heavier LV than a small normal one."""
    dcm = prior.complete({"LVEDV": 300.0, "LVEF": 15.0})
    small = prior.complete({"LVEDV": 110.0, "LVEF": 65.0})
    assert dcm["LVM"].iloc[0] > small["LVM"].iloc[0]


def test_completion_of_a_table_with_missing_cells(prior, acdc_table):
    locked = acdc_table.copy()
    locked.loc[:, [n for n in ph.NAMES if n not in ("LVEDV", "LVEF")]] = np.nan
    done = prior.complete(locked)
    assert done.shape == acdc_table.shape and not done.isna().any().any()
    np.testing.assert_allclose(done["LVEDV"], acdc_table["LVEDV"], rtol=1e-12)
    np.testing.assert_allclose(done["LVEF"], acdc_table["LVEF"], rtol=1e-9)
    assert_consistent(done)


# ----------------------------------------------------------------------------------------- plausibility
def test_plausibility_orders_real_above_absurd(prior, acdc_table):
    real = prior.plausibility(acdc_table)
    assert list(real.columns) == ["percentile", "log_density", "status", "reasons"]
    assert (real["status"] != "red").mean() >= 0.9
    absurd = prior.plausibility({"LVEDV": 90, "LVESV": 40, "LVM": 420, "RVEDV": 100, "RVESV": 45})
    assert absurd.status == "red" and absurd.percentile == 0.0
    assert absurd.log_density < real["log_density"].min()
    assert any("LVM" in r and "high" in r for r in absurd.reasons)
    normal = prior.plausibility(NORMAL)
    assert normal.status == "green" and normal.percentile > 20 and not normal.reasons
    assert set(normal.conditional_z) == {"LVEDV", "LVEF", "LVM", "RVEDV", "RVEF"}


def test_plausibility_reports_inconsistent_ef(prior):
    result = prior.plausibility({**NORMAL, "LVEF": 30.0})
    assert result.status == "red"
    assert any("LVEF 30 % is inconsistent with LVEDV 140 mL and LVESV 55 mL" in r for r in result.reasons)


def test_plausibility_is_deterministic(prior):
    assert prior.plausibility(NORMAL).as_dict() == prior.plausibility(NORMAL).as_dict()


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, values, message", [
    ("plausibility", {**NORMAL, "LVX": 3.0}, "LVX is not a known phenotype"),
    ("plausibility", {**NORMAL, "LVM": float("nan")}, "LVM is missing or not a number"),
    ("plausibility", {**NORMAL, "LVEDV": 5000.0}, "outside the plausible range"),
    ("plausibility", {k: v for k, v in NORMAL.items() if k != "LVM"}, "LVM .* is missing"),
    ("plausibility", {"LVEDV": 140.0, "LVM": 110.0, "RVEDV": 150.0, "RVESV": 70.0}, "LV needs two of"),
    ("encode", {**NORMAL, "RVEF": 10.0}, "RVEF 10 % is inconsistent"),
    ("complete", {"LVEDV": 150.0, "LVESV": 60.0, "LVEF": 30.0}, "LVEF 30 % is inconsistent with LVEDV 150 mL"),
    ("complete", {"LVEDV": 100.0, "LVSV": 120.0}, "smaller than LVEDV"),
    ("complete", {"LVEDV": 590.0, "LVEF": 3.0}, "imply LVESV .* outside the plausible range"),
    ("complete", {"RVEF": "high"}, "not a number"),
    ("complete", {"LVEDV": None}, "LVEDV is missing"),
])
def test_bad_input_gives_clear_phenotype_error(prior, call, values, message):
    with pytest.raises(PhenotypeError, match=message):
        getattr(prior, call)(values)


def test_bad_table_column(prior):
    with pytest.raises(PhenotypeError, match="Unknown phenotype columns: LVmass"):
        prior.plausibility(pd.DataFrame([{**NORMAL, "LVmass": 1.0}]))
