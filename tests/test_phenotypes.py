import math

import numpy as np
import pandas as pd
import pytest

from cardiosynth import phenotypes as ph


def test_schema_has_uk_biobank_ids_and_derivations():
    assert ph.BY_NAME["LVEDV"].ukb_field == 24100
    assert ph.BY_NAME["LVEF"].ukb_field == 24103
    assert ph.BY_NAME["RVEF"].ukb_field == 24109
    assert set(ph.INDEPENDENT) == {"LVEDV", "LVESV", "LVM", "RVEDV", "RVESV"}
    assert ph.BY_NAME["LVEF"].derived_from == ("LVEDV", "LVESV")
    for p in ph.SCHEMA:
        low, high = p.plausible_range
        assert low < high and p.unit and p.description


@pytest.mark.parametrize("column, expected", [
    ("24100-2.0", (24100, 2)), ("f.24101.3.0", (24101, 3)), ("p24105_i2", (24105, 2)),
    ("p24106_i2_a0", (24106, 2)), ("24109", (24109, None)), ("LVEDV", None), ("eid", None),
])
def test_parse_ukb_column(column, expected):
    assert ph.parse_ukb_column(column) == expected


def test_uk_biobank_extract_maps_in(tmp_path):
    path = tmp_path / "ukb.csv"
    pd.DataFrame({
        "eid": [1, 2], "24100-2.0": [150.0, 120.0], "24101-2.0": [60.0, 50.0], "24105-2.0": [100.0, 90.0],
        "24106-2.0": [160.0, 130.0], "24107-2.0": [70.0, 60.0], "24100-3.0": [999.0, 999.0],
        "31-0.0": [0, 1],
    }).to_csv(path, index=False)
    with pytest.warns(UserWarning, match="31-0.0"):
        table = ph.read_phenotype_table(path)
    assert list(table.columns[:1]) == ["eid"]
    assert table["LVEDV"].tolist() == [150.0, 120.0]  # instance 2 (first imaging visit) preferred
    np.testing.assert_allclose(table["LVSV"], [90.0, 70.0])
    np.testing.assert_allclose(table["LVEF"], [60.0, 100 * 70 / 120])
    with pytest.warns(UserWarning, match="24100-2.0"):
        repeat = ph.read_phenotype_table(path, instance=3, required=("LVEDV",))
    assert repeat["LVEDV"].tolist() == [999.0, 999.0]


def test_acdc_style_aliases_and_given_derived_values_are_kept():
    raw = pd.DataFrame({"patient": ["a"], "LVEDV_ml": [100.0], "LVESV_ml": [40.0], "LVEF_pct": [61.0],
                        "LVM_g": [90.0], "RVEDV_ml": [110.0], "RVESV_ml": [50.0]})
    table = ph.read_phenotype_table(raw)
    assert table.loc[0, "LVEF"] == 61.0  # given value wins over the computed 60
    assert table.loc[0, "RVEF"] == pytest.approx(100 * 60 / 110)


def test_missing_required_columns_are_named():
    raw = pd.DataFrame({"LVEDV": [100.0], "LVESV": [40.0]})
    with pytest.raises(ph.PhenotypeError, match=r"LVM \(UK Biobank field 24105\).*RVEDV.*RVESV"):
        ph.read_phenotype_table(raw)


def test_unreadable_or_absent_table(tmp_path):
    with pytest.raises(ph.PhenotypeError, match="not found"):
        ph.read_phenotype_table(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ph.PhenotypeError, match="Could not read"):
        ph.read_phenotype_table(empty)


def test_validation_messages_name_the_phenotype_and_range():
    assert ph.out_of_range({"LVEDV": 150.0, "LVEF": 60.0}) == []
    problems = ph.out_of_range({"LVEDV": 5000.0, "LVEF": float("nan"), "XYZ": 1.0})
    assert any("LVEDV = 5000 mL is outside the plausible range 20-600 mL" in p for p in problems)
    assert any("LVEF is missing" in p for p in problems)
    assert any("XYZ is not a known phenotype" in p for p in problems)
    with pytest.raises(ph.PhenotypeError):
        ph.validate({"LVEDV": -1.0})


def test_real_acdc_phenotypes_are_within_plausible_ranges(acdc_root):
    table = ph.read_phenotype_table(pd.read_csv(acdc_root / "phenotypes.csv")[
        ["patient", "group", "LVEDV_ml", "LVESV_ml", "LVSV_ml", "LVEF_pct", "LVM_g",
         "RVEDV_ml", "RVESV_ml", "RVSV_ml", "RVEF_pct"]])
    assert len(table) == 85
    for _, row in table.iterrows():
        assert ph.out_of_range({n: row[n] for n in ph.NAMES}) == [], row["patient"]


def test_derive_is_one_rule_for_floats_arrays_and_series():
    assert ph.derive(120.0, 50.0) == (70.0, 100.0 * 70.0 / 120.0)
    sv, ef = ph.derive(0.0, 3.0)  # an empty ventricle: EF undefined, not a division error
    assert sv == -3.0 and math.isnan(ef)
    edv, esv = np.array([120.0, 200.0], np.float32), np.array([50.0, 150.0], np.float32)
    sv, ef = ph.derive(edv, esv)
    assert sv.dtype == ef.dtype == np.float32 and np.array_equal(ef, np.float32(100.0) * (edv - esv) / edv)
    sv, ef = ph.derive(pd.Series(edv.astype(float)), pd.Series(esv.astype(float)))
    assert isinstance(ef, pd.Series) and ef.tolist() == [100.0 * 70.0 / 120.0, 25.0]
    assert ph.ejection_fraction(200.0, 50.0) == 25.0
