"""Each reader on a small file written here with the format's own library (or ElementTree for the XML
dialects without one), on the shipped assets, and on the real examples in ../shared when present."""

from __future__ import annotations

import hashlib
import io
import re

import numpy as np
import pytest
from fixtures_ecg import (LEADS, cardiosoft_bytes, csv_bytes, dicom_bytes, hl7_bytes, muse_bytes, npy_bytes,
                          synthetic_ecg, write_edf, write_wfdb)

from cardiosynth.ecg import FS, N_SAMPLES, Ecg, EcgError, read_ecg
from cardiosynth.ecg.leads import standard_lead_name
from cardiosynth.ecg.process import process_ecg
from cardiosynth.ecg.readers import read_recording, sniff
from cardiosynth.paths import REPO_ROOT

ASSETS = REPO_ROOT / "assets" / "ecg"


def _check_standard(ecg: Ecg, fmt: str, tol: float | None = 0.01) -> None:
    assert ecg.source_format == fmt
    assert ecg.signal.shape == (12, N_SAMPLES) and ecg.signal.dtype == np.float32
    assert ecg.fs == FS and list(ecg.leads) == LEADS
    assert np.all(np.isfinite(ecg.signal))
    if tol is not None:  # written at 500 Hz from the synthetic ECG: values and lead order must survive
        assert np.max(np.abs(ecg.signal - synthetic_ecg(500))) < tol


def test_wfdb(tmp_path):
    header = write_wfdb(tmp_path)
    ecg = read_ecg(header)
    _check_standard(ecg, "wfdb")
    assert ecg.calibrated
    assert read_ecg(tmp_path / "rec.dat").signal.tobytes() == ecg.signal.tobytes()


def test_edf_path_and_bytes_with_shuffled_channels(tmp_path):
    path = write_edf(tmp_path / "ecg.edf", order=[6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5])
    from_path = read_ecg(path)
    _check_standard(from_path, "edf", tol=0.01)
    from_bytes = read_ecg(path.read_bytes())
    assert np.array_equal(from_path.signal, from_bytes.signal)


def test_edf_resampled_and_microvolts(tmp_path):
    signal = synthetic_ecg(250) * 1000  # uV
    ecg = read_ecg(write_edf(tmp_path / "ecg.edf", fs=250, signal=signal, dimension="uV"))
    _check_standard(ecg, "edf", tol=None)
    assert ecg.metadata["original_fs"] == 250 and ecg.metadata["resampled"]
    assert 1.0 < np.ptp(ecg.lead("II")) < 3.0  # back in mV


def test_dicom():
    ecg = read_ecg(dicom_bytes(fs=500, signal=synthetic_ecg(500)))
    _check_standard(ecg, "dicom")
    assert ecg.metadata["waveform_group"] == "RHYTHM"


def test_dicom_1000hz_is_resampled():
    ecg = read_ecg(dicom_bytes(fs=1000))
    _check_standard(ecg, "dicom", tol=None)
    assert ecg.metadata["original_fs"] == 1000
    assert abs(process_ecg(ecg).heart_rate_bpm - 72) < 3


_SCP_CODES = [("SCPECG", f"5.6.3-9-{n}") for n in (1, 2, 61, 62, 63, 64, 3, 4, 5, 6, 7, 8)]
_MDC_CODES = [("MDC", f"2:{n}") for n in (1, 2, 61, 62, 63, 64, 3, 4, 5, 6, 7, 8)]
_NUMBERED = [f"channel {k}" for k in range(12)]  # meanings that are not lead names: only the codes tell


@pytest.mark.parametrize("sop_class, name", [
    ("1.2.840.10008.5.1.4.1.1.9.1.2", "general ECG"),
    ("1.2.840.10008.5.1.4.1.1.9.1.3", "ambulatory ECG"),
    ("1.2.840.10008.5.1.4.1.1.9.2.1", "hemodynamic"),
])
@pytest.mark.parametrize("codes", [None, _SCP_CODES, _MDC_CODES], ids=["meaning", "scp-code", "mdc-code"])
def test_dicom_any_waveform_class_with_ecg_leads(sop_class, name, codes):
    """Leads are found by their channel source code or meaning, whatever the storage class; a hemodynamic
    object's pressure channel is left out; the rhythm group is read even when median beats come first."""
    signal = synthetic_ecg(500)
    content = dicom_bytes(fs=500, signal=signal, sop_class=sop_class, codes=codes,
                          labels=_NUMBERED if codes else None, extra_channels=("Pressure",),
                          median_first=True, baseline_uv=-100.0)
    ecg = read_ecg(content)
    _check_standard(ecg, "dicom")
    assert ecg.metadata["dicom_sop_class"] == name
    assert ecg.metadata["waveform_group"] == "RHYTHM"
    assert ecg.metadata["channels_left_out"] == ["Pressure"]


def test_dicom_waveform_without_ecg_leads_names_its_channels():
    content = dicom_bytes(fs=500, signal=np.zeros((2, 5000)), labels=["Aortic pressure", "Left ventricular pressure"],
                          sop_class="1.2.840.10008.5.1.4.1.1.9.2.1")
    with pytest.raises(EcgError, match="no ECG lead channels.*Aortic pressure"):
        read_ecg(content)


def test_dicom_declared_size_beyond_the_data_is_refused():
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO

    ds = dcmread(DicomBytesIO(dicom_bytes(fs=500, signal=synthetic_ecg(500))))
    ds.WaveformSequence[0].NumberOfWaveformSamples = 2**31 - 1
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(EcgError, match="truncated or damaged"):
        read_ecg(buffer.getvalue())


def test_hl7_reorders_leads_and_skips_representative_beat():
    ecg = read_ecg(hl7_bytes())
    _check_standard(ecg, "hl7_aecg")
    assert ecg.metadata["original_leads"][2] == "MDC_ECG_LEAD_V1"


def test_muse_derives_limb_leads():
    ecg = read_ecg(muse_bytes())
    _check_standard(ecg, "ge_muse_xml")
    assert ecg.metadata["derived_leads"] == ["III", "aVR", "aVL", "aVF"]


def test_cardiosoft_ukbiobank():
    _check_standard(read_ecg(cardiosoft_bytes()), "cardiosoft_xml")


@pytest.mark.parametrize("kind", ["preface", "time", "argument"])
def test_csv_sampling_rate_sources(kind):
    content = csv_bytes(preface=kind == "preface", time_column=kind == "time")
    ecg = read_ecg(content, fs=500 if kind == "argument" else None)
    _check_standard(ecg, "csv")


def test_csv_semicolon_columns_shuffled_with_units():
    import pandas as pd

    frame = pd.DataFrame(synthetic_ecg().T * 1000, columns=[f"{n} (uV)" for n in LEADS])
    frame = frame[list(reversed(frame.columns))]
    content = frame.to_csv(index=False, sep=";").encode()
    _check_standard(read_ecg(content, fs=500), "csv")


def _limb_only_headerless(fs: int = 800) -> bytes:
    """A device's headerless export: no lead-name row, the limb leads in mV, V1-V6 left empty."""
    return "\n".join(",".join([f"{v:.4f}" for v in row[:6]] + [""] * 6) for row in synthetic_ecg(fs).T).encode()


def test_headerless_table_with_empty_chest_leads_reads_with_lead_order_and_rate():
    content = _limb_only_headerless()
    with pytest.raises(EcgError, match="--lead-order .* --fs"):  # empty columns no longer hide the hint
        read_ecg(content)
    ecg = read_ecg(content, fs=800, leads=LEADS)
    assert ecg.metadata["original_fs"] == 800 and ecg.metadata["flat_leads"] == LEADS[6:]
    assert not ecg.signal[6:].any() and 1.0 < np.ptp(ecg.lead("II")) < 3.0
    as_written = read_recording(content, fs=800, leads=LEADS).signal
    assert np.abs(as_written[:6] - synthetic_ecg(800)[:6]).max() <= 5e-5 and not as_written[6:].any()
    assert any("V1, V2, V3, V4, V5, V6 hold no values" in w for w in ecg.metadata["warnings"])
    assert any("taken as millivolts" in w for w in ecg.metadata["warnings"])  # the empty leads do not hide it


def test_a_one_lead_table_is_told_it_has_one_lead():
    content = ("time,II\n" + "\n".join(f"{k / 500:.3f},{v:.4f}" for k, v in enumerate(synthetic_ecg()[1]))).encode()
    with pytest.raises(EcgError, match="only 1 lead"):
        read_ecg(content)


def test_a_time_column_rounded_to_milliseconds_gives_the_rate_from_its_span():
    """240 Hz written in whole ms: steps of 4 and 5 ms, read as 240 Hz (with or without ``fs``), with a warning."""
    x = synthetic_ecg(240)
    rows = (f"{round(k * 1000 / 240)}," + ",".join(f"{v:.4f}" for v in row) for k, row in enumerate(x.T))
    content = ("time_ms," + ",".join(LEADS) + "\n" + "\n".join(rows)).encode()
    for fs in (None, 240):
        ecg = read_ecg(content, fs=fs)
        assert ecg.metadata["original_fs"] == 240
        assert [w for w in ecg.metadata["warnings"] if "rounded to 1 ms" in w and "240 Hz" in w]
    jittered = content.replace(b"\n2083,", b"\n2086,", 1)  # one time 3 ms off: not rounding, irregular
    assert jittered != content
    with pytest.raises(EcgError, match="irregular"):
        read_ecg(jittered)


def test_numpy_array_both_orientations_and_npy():
    x = synthetic_ecg()
    _check_standard(read_ecg(x, fs=500), "array")
    _check_standard(read_ecg(x.T, fs=500), "array")
    _check_standard(read_ecg(npy_bytes(x), fs=500), "array")


def test_array_with_named_leads_and_extra_channels_recorded():
    x = np.vstack([synthetic_ecg(), synthetic_ecg()[:3]])
    ecg = read_ecg(x, fs=500, leads=LEADS + ["V4R", "V8", "V9"])
    _check_standard(ecg, "array")
    assert ecg.metadata["dropped_channels"] == ["V4R", "V8", "V9"]


def test_crop_and_pad_are_recorded():
    long = np.tile(synthetic_ecg(), 2)  # 20 s
    start = read_ecg(long, fs=500)
    centre = read_ecg(long, fs=500, crop="centre")
    assert start.metadata["crop"] == {"mode": "start", "from_s": 0.0, "to_s": 10.0}
    assert centre.metadata["crop"]["from_s"] == 5.0
    short = read_ecg(synthetic_ecg()[:, :3000], fs=500)
    assert short.valid_samples == 3000 and short.metadata["pad"]["added_s"] == 4.0
    assert short.signal.shape == (12, N_SAMPLES)


def test_lead_name_spellings():
    cases = {"Lead I (Einthoven)": "I", "MDC_ECG_LEAD_AVR": "aVR", "avf": "aVF", "DII": "II", "C3": "V3",
             "Lead V6 (Wilson)": "V6", "lead 2": "II", "V4R": None, "2": None, "time": None}
    assert {k: standard_lead_name(k) for k in cases} == cases


def test_sniffing_ignores_extension(tmp_path):
    content = muse_bytes()
    assert sniff(content) == "ge_muse_xml"
    path = tmp_path / "looks_like.csv"
    path.write_bytes(content)
    assert read_ecg(path).source_format == "ge_muse_xml"


# --- shipped assets (no ../shared needed) --------------------------------------------------------------

def _asset_table() -> list[tuple[str, str]]:
    text = (ASSETS / "README.md").read_text()
    return re.findall(r"^\| `([^`]+)` \|.*\| `?([0-9a-f]{64})`? \|$", text, flags=re.M)


def test_assets_listed_with_correct_sha256_and_small():
    rows = _asset_table()
    assert rows, "assets/ecg/README.md lists no files"
    total = 0
    for name, digest in rows:
        data = (ASSETS / name).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert total < 2_000_000


@pytest.mark.parametrize("name", ["Example_aECG.xml", "waveform_ecg.dcm", "129DYPRG.XML", "ludb/2.hea", "ludb/88.hea"])
def test_assets_parse_to_plausible_ecg(name):
    ecg = read_ecg(ASSETS / name)
    result = process_ecg(ecg)
    assert 40 <= result.heart_rate_bpm <= 150


# --- real examples in ../shared ------------------------------------------------------------------------

EXPECTED = {  # format folder -> reader key
    "dicom": "dicom", "hl7_aecg": "hl7_aecg", "philips_sierra_xml": "philips_xml", "ge_muse_xml": "ge_muse_xml",
    "edf": "edf", "csv": "csv", "scp_ecg": "scp_ecg",
}


def test_real_format_examples(ecg_root):
    files = sorted(p for p in (ecg_root / "formats").glob("*/*") if p.is_file())
    assert files
    seen = set()
    for path in files:
        folder = path.parent.name
        ecg = read_ecg(path)
        assert ecg.source_format == EXPECTED[folder], path.name
        assert ecg.calibrated, path.name
        result = process_ecg(ecg)
        assert result.heart_rate_bpm is not None and 30 <= result.heart_rate_bpm <= 200, path.name
        seen.add(folder)
    assert seen == set(EXPECTED)


def test_real_edf_flat_chest_leads(ecg_root):
    ecg = read_ecg(ecg_root / "formats" / "edf" / "contec_0000050.ECG.edf")
    assert ecg.metadata["flat_leads"] == ["V1", "V2", "V3", "V4", "V5", "V6"]
    assert ecg.metadata["crop"]["from_s"] == 0.0
    result = process_ecg(ecg)
    assert result.lead_agreement["V1"] is None and result.r_peaks.size > 5


def test_real_ludb_is_flagged_uncalibrated(ecg_root):
    ecg = read_ecg(ecg_root / "ludb" / "2.hea")
    assert not ecg.calibrated
    assert np.allclose(np.ptp(ecg.signal, axis=1), 1.0, atol=1e-3)


def test_real_muse_matches_device_heart_rate(ecg_root):
    # MUSE stores the device's own measurement: VentricularRate 48 bpm for example1
    ecg = read_ecg(ecg_root / "formats" / "ge_muse_xml" / "braveheart_example1.xml")
    assert abs(process_ecg(ecg).heart_rate_bpm - 48) <= 2
