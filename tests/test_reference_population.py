"""The app's bundled reference population (issue 40): versioned, with its sha256 and licence beside it, and the
same values ACDC's training split gives when the data is present."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from cardiosynth import phenotypes as ph
from cardiosynth.app.phenotype_explorer import _real_training_patients
from cardiosynth.paths import data_root
from cardiosynth.weights import REFERENCE_POPULATION
from training.export_reference_population import VERSION, reference_population


def test_the_bundled_table_is_what_its_readme_says():
    table = pd.read_csv(REFERENCE_POPULATION)
    assert list(table.columns) == ["patient", *ph.NAMES] and len(table) == 60 and table["patient"].is_unique
    readme = REFERENCE_POPULATION.with_suffix(".md").read_text()
    assert hashlib.sha256(REFERENCE_POPULATION.read_bytes()).hexdigest() in readme
    assert f"version {VERSION}" in readme and "CC BY-NC-SA 4.0" in readme


def test_the_app_reads_the_bundled_table_not_the_training_data(monkeypatch):
    monkeypatch.setenv("CARDIOSYNTH_DATA", "/nonexistent")
    real = _real_training_patients()
    assert real is not None and list(real.columns) == list(ph.NAMES) and len(real) == 60


@pytest.mark.skipif(not (data_root() / "acdc" / "phenotypes.csv").is_file(), reason="ACDC data not present")
def test_the_bundled_table_matches_acdc_bit_for_bit():
    bundled, source = pd.read_csv(REFERENCE_POPULATION), reference_population()
    assert list(bundled["patient"]) == list(source["patient"])
    assert np.array_equal(bundled[list(ph.NAMES)].to_numpy(float), source[list(ph.NAMES)].to_numpy(float))


def test_an_altered_table_is_refused_and_the_app_goes_on_without_it(tmp_path, monkeypatch):
    """Checked like weights: the sha256 its card records; the app then draws the VAE samples only."""
    import cardiosynth.app.phenotype_explorer as explorer_module
    from cardiosynth.weights import WeightsError, checked_reference_population

    table, card = tmp_path / "reference_population.csv", tmp_path / "reference_population.md"
    card.write_text(REFERENCE_POPULATION.with_suffix(".md").read_text())
    table.write_text(REFERENCE_POPULATION.read_text().replace("patient", "patient", 1) + "\n")
    with pytest.raises(WeightsError, match="does not match the sha256"):
        checked_reference_population(table)
    monkeypatch.setattr(explorer_module, "REFERENCE_POPULATION", table)
    assert _real_training_patients() is None


def test_its_card_rebuilds_byte_for_byte_from_the_library():
    """The card comes from the library (cards belong to what they describe, not to the command that writes them)."""
    from cardiosynth.models.cards.reference_population import model_card
    from cardiosynth.weights import sha256_of

    table = pd.read_csv(REFERENCE_POPULATION)
    assert model_card(len(table), sha256_of(REFERENCE_POPULATION), VERSION) == \
        REFERENCE_POPULATION.with_suffix(".md").read_text()
