"""Malformed input: every case raises the one typed error, :class:`EcgError`, with a message a clinician
can read; nothing crashes and nothing is written anywhere (all cases are built in memory)."""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_ecg import (LEADS, cardiosoft_bytes, csv_bytes, dicom_bytes, edf_bytes, hl7_bytes, muse_bytes,
                          npy_bytes, synthetic_ecg)

from cardiosynth.ecg import DEFAULT_MAX_BYTES, EcgError, read_ecg
from cardiosynth.ecg.__main__ import main as cli_main
from cardiosynth.paths import REPO_ROOT

ASSET_LUDB = REPO_ROOT / "assets" / "ecg" / "ludb"

ECG = synthetic_ecg()


def _csv(frame: pd.DataFrame, **kw) -> bytes:
    return frame.to_csv(index=False, **kw).encode()


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ECG.T.copy(), columns=LEADS)


def _with_nan() -> bytes:
    frame = _frame()
    frame.iloc[100:110, 3] = np.nan
    return _csv(frame)


def _with_text() -> bytes:
    frame = _frame().astype(object)
    frame.iloc[5, 0] = "lead off"
    return _csv(frame)


def _irregular_time() -> bytes:
    frame = _frame()
    t = np.arange(len(frame)) / 500.0
    t[2500:] += 0.5
    frame.insert(0, "time", t)
    return _csv(frame)


def _xml_bomb() -> bytes:
    return (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b"<RestingECG>&lol2;</RestingECG>")


def _dicom_unknown_vr() -> bytes:
    """Found by the fuzzer (python -m fuzz dicom): an element with an unknown VR, decoded by pydicom only when
    the reader first reads it (the device name, after the waveform)."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO

    ds = dcmread(DicomBytesIO(dicom_bytes(fs=500)))
    ds.ManufacturerModelName = "el250"
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    damaged = buffer.getvalue().replace(b"\x08\x00\x90\x10LO", b"\x08\x00\x90\x10SO", 1)
    assert damaged != buffer.getvalue()
    return damaged


def _dicom_image() -> bytes:
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT image
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, "1.2.3.4", "CT"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _muse_median_only() -> bytes:
    text = muse_bytes().decode("latin-1")
    return text.replace("<WaveformType>Rhythm</WaveformType>", "<WaveformType>Median</WaveformType>").encode("latin-1")


def _muse_truncated_lead() -> bytes:
    text = muse_bytes().decode("latin-1")
    return text.replace("<LeadSampleCountTotal>5000</LeadSampleCountTotal>",
                        "<LeadSampleCountTotal>6000</LeadSampleCountTotal>", 1).encode("latin-1")


def _hl7_unequal_leads() -> bytes:
    text = hl7_bytes(with_beat=False).decode()
    head, sep, tail = text.partition("</digits>")
    return (head + " 1 2 3" + sep + tail).encode()


def _cardiosoft_exercise() -> bytes:
    return cardiosoft_bytes().replace(b"StripData", b"FullDisclosure")


BYTES_CASES = {
    "empty": b"",
    "whitespace only": b"   \n\t  \n",
    "null bytes": b"\x00" * 4096,
    "binary garbage": np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
    "png image": b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
    "jpeg image": b"\xff\xd8\xff\xe0" + b"\x00" * 200,
    "pdf printout": b"%PDF-1.7\n" + b"x" * 200,
    "zip archive": b"PK\x03\x04" + b"\x00" * 200,
    "non-ECG XML": b'<?xml version="1.0"?><note><to>A</to><body>hello</body></note>',
    "HTML page": b"<!DOCTYPE html><html><body>Not found</body></html>",
    "truncated XML": muse_bytes()[:5000],
    "XML entity bomb": _xml_bomb(),
    "MUSE median beats only": _muse_median_only(),
    "MUSE lead shorter than declared": _muse_truncated_lead(),
    "HL7 leads of unequal length": _hl7_unequal_leads(),
    "HL7 without waveform": b'<AnnotatedECG xmlns="urn:hl7-org:v3"><id root="x"/></AnnotatedECG>',
    "CardioSoft exercise export": _cardiosoft_exercise(),
    "truncated DICOM": dicom_bytes()[:2000],
    "DICOM image, not ECG": _dicom_image(),
    "DICOM element with an unknown VR": _dicom_unknown_vr(),
    "truncated EDF": edf_bytes()[:-20_000],
    "EDF header only": edf_bytes()[:256 * 13],
    "EDF header garbage": b"0       " + b"\xff" * 400,
    "SCP-ECG signature without a record": b"\x00" * 16 + b"SCPECG" + b"\x00" * 200,
    "WFDB header without signal": b"rec 12 500 5000\nrec.dat 16 1000/mV 16 0 0 0 0 i\n",
    "CSV without lead names": b"a,b,c\n1,2,3\n4,5,6\n",
    "CSV without sampling rate": csv_bytes(),
    "CSV stating a negative sampling rate": b"Sampling Rate (Hz): -500\n" + csv_bytes(),
    "CSV with irregular time column": _irregular_time(),
    "NPY with 15 unnamed channels": npy_bytes(np.vstack([ECG, ECG[:3]])),
    # found by the fuzzer (python -m fuzz muse): an XML declaration naming an encoding Python does not know
    "XML with an unknown encoding": muse_bytes().replace(b'encoding="ISO-8859-1"', b'encoding="ISO-88u9-1"', 1),
    "NPY declaring a terabyte array": npy_bytes(ECG).replace(b"(12, 5000)", b"(12, 50000000000)", 1),
    "CSV 50,000 columns wide": (",".join(f"c{k}" for k in range(50_000)) + "\n" + "1," * 49_999 + "1\n").encode(),
    "headerless CSV": b"\n".join(b"1,2,3,4,5,6,7,8,9,10,11,12" for _ in range(3000)),
    "NPY object array (pickle)": b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"
                                 + b" " * 60 + b"\n" + b"\x80\x04" + b"\x00" * 30,
}

# CSV problems other than the sampling rate (given here so the intended check is reached)
CSV_CASES = {
    "CSV with NaN": _with_nan(),
    "CSV with text in a cell": _with_text(),
    "CSV with only limb leads": _csv(_frame()[["I", "II", "III"]]),
    "CSV with duplicate leads": _csv(_frame().rename(columns={"III": "II"})),
    "CSV shorter than 2 s": _csv(_frame().iloc[:900]),
    "CSV with one lead named": b"II,x\n" + b"1,2\n" * 3000,
    # found by the fuzzer (python -m fuzz csv): two time columns of one name made pandas return a table
    "CSV with a repeated time column": b"time,time,I,II\n" + b"".join(b"%.3f,%.3f,1,2\n" % (k / 500, k / 500)
                                                                      for k in range(1500)),
}


def _one_bad_sample(value: float) -> np.ndarray:
    x = ECG.copy()
    x[4, 10] = value
    return x


ARRAY_CASES = {
    "NaN samples": (_one_bad_sample(np.nan), {"fs": 500}),
    "infinite samples": (_one_bad_sample(np.inf), {"fs": 500}),
    "all leads flat": (np.zeros((12, 5000)), {"fs": 500}),
    "constant offset (flatline)": (np.full((12, 5000), 0.3), {"fs": 500}),
    "one lead": (ECG[1], {"fs": 500}),
    "15 unnamed leads": (np.vstack([ECG, ECG[:3]]), {"fs": 500}),
    "absent sampling rate": (ECG, {}),
    "zero sampling rate": (ECG, {"fs": 0}),
    "negative sampling rate": (ECG, {"fs": -500}),
    "NaN sampling rate": (ECG, {"fs": float("nan")}),
    "sampling rate too low": (ECG, {"fs": 50}),
    "sampling rate absurd": (ECG, {"fs": 1e6}),
    "sampling rate not a number": (ECG, {"fs": "fast"}),
    "shorter than 2 s": (ECG[:, :750], {"fs": 500}),
    "limb leads only (named)": (ECG[:6], {"fs": 500, "leads": LEADS[:6]}),
    "wrong number of lead names": (ECG, {"fs": 500, "leads": LEADS[:8]}),
    "3-D array": (ECG[None], {"fs": 500}),
    "strings": (np.array([["a"] * 5000] * 12), {"fs": 500}),
    "empty array": (np.zeros((12, 0)), {"fs": 500}),
}


def _snapshot() -> dict[str, set[str]]:
    folders = {Path.cwd(), Path(tempfile.gettempdir()), REPO_ROOT, REPO_ROOT / "assets" / "ecg"}
    return {str(f): set(os.listdir(f)) for f in folders if f.is_dir()}


@pytest.fixture
def writes_nothing(tmp_path, monkeypatch):
    """Nothing written where the reader could write: the working folder, the repository, and a temporary
    folder of this test's own (the machine's /tmp is shared with other processes, which write there)."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    before = _snapshot()
    yield
    assert _snapshot() == before, "a bad-input case wrote a file"


def _check_message(err: EcgError) -> None:
    message = str(err)
    assert isinstance(err, ValueError)  # EcgError is a ValueError: callers may catch either
    assert 15 < len(message) < 600
    assert message[0].isupper() and message.rstrip().endswith((".", ")"))
    assert "Traceback" not in message and "errno" not in message.lower()


@pytest.mark.parametrize("name", list(BYTES_CASES))
def test_bad_bytes(name, writes_nothing):
    with pytest.raises(EcgError) as info:
        read_ecg(BYTES_CASES[name])
    _check_message(info.value)


@pytest.mark.parametrize("name", list(CSV_CASES))
def test_bad_csv(name, writes_nothing):
    with pytest.raises(EcgError) as info:
        read_ecg(CSV_CASES[name], fs=500)
    _check_message(info.value)


@pytest.mark.parametrize("name", list(ARRAY_CASES))
def test_bad_arrays(name, writes_nothing):
    array, kwargs = ARRAY_CASES[name]
    with pytest.raises(EcgError) as info:
        read_ecg(array, **kwargs)
    _check_message(info.value)


def test_oversize_default_limit(writes_nothing):
    with pytest.raises(EcgError, match="MB"):
        read_ecg(b"0" * (DEFAULT_MAX_BYTES + 1))


def test_oversize_configurable(writes_nothing, monkeypatch):
    content = hl7_bytes()
    with pytest.raises(EcgError, match="limit"):
        read_ecg(content, max_bytes=10_000)
    monkeypatch.setenv("CARDIOSYNTH_ECG_MAX_BYTES", "10000")
    with pytest.raises(EcgError, match="limit"):
        read_ecg(content)
    with pytest.raises(EcgError, match="limit"):
        read_ecg(ECG, fs=500, max_bytes=1000)


@pytest.mark.parametrize("path", ["does/not/exist.xml", ".", "requirements.txt", "pytest.ini"])
def test_bad_paths(path, writes_nothing):
    """Missing file, a folder, and real files with the wrong content (text that is not an ECG)."""
    with pytest.raises(EcgError) as info:
        read_ecg(REPO_ROOT / path)
    _check_message(info.value)


def test_corrupted_philips_waveform(writes_nothing):
    content = (REPO_ROOT / "assets" / "ecg" / "129DYPRG.XML").read_bytes()
    start = content.index(b">", content.index(b"<parsedwaveforms")) + 1
    end = content.index(b"</parsedwaveforms>")
    damaged = content[:start] + content[start:(start + end) // 2] + content[end:]  # half the samples lost
    with pytest.raises(EcgError) as info:
        read_ecg(damaged)
    _check_message(info.value)


def test_cli_bad_input_exits_cleanly_and_writes_nothing(writes_nothing, capsys):
    assert cli_main([str(REPO_ROOT / "requirements.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Cannot use this ECG:")


def test_an_hl7_scale_beyond_any_number_is_refused_in_words_only(writes_nothing):
    """1e308 uV per count overflowed to infinity: NumPy printed a RuntimeWarning to stderr before the error."""
    import warnings

    content = hl7_bytes().replace(b'value="2.5" unit="uV"', b'value="1e308" unit="uV"', 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        with pytest.raises(EcgError, match="scale") as info:
            read_ecg(content)
    _check_message(info.value)


def test_an_18_mv_artefact_in_one_lead_is_warned_about():
    x = ECG.copy()
    x[7, 2000:2010] += 18.0
    warnings = read_ecg(x, fs=500).metadata["warnings"]
    assert [w for w in warnings if "18 mV" in w and "lead(s) V2," in w and "artefact" in w], warnings
    assert not [w for w in read_ecg(ECG, fs=500).metadata["warnings"] if "artefact" in w]


def test_at_least_30_cases():
    assert len(BYTES_CASES) + len(CSV_CASES) + len(ARRAY_CASES) >= 30


@pytest.mark.parametrize("record_line, message", [
    ("2 27325042 500 5000", "27,325,042 signals"),  # found by the fuzzer: wfdb built 27 M signal lists (> 2 s)
    # found by the fuzzer too: a name wfdb's parser does not take, so it reads the rate as the signal count
    ("\u00ce\u00df\u00ce\u00c9 005 26090050  062 0900", "26,090,050 signals"),
    ("2 12 -500 5000", "sampling rate of -500 Hz"),  # wfdb would have read it as 250 Hz
    ("2/2 12 500 5000", "multi-segment"),  # found by the fuzzer: segments naming the record recursed (19 s, 6 GB)
    ("2 12 0 5000", "sampling rate of 0 Hz"),
    ("2 12 500 99999999", "Holter"),
])
def test_damaged_wfdb_record_lines_are_refused_before_wfdb_reads_them(tmp_path, record_line, message, writes_nothing):
    for name in ("2.hea", "2.dat"):
        (tmp_path / name).write_bytes((ASSET_LUDB / name).read_bytes())
    header = (tmp_path / "2.hea").read_text().splitlines()
    (tmp_path / "2.hea").write_text("\n".join([record_line, *header[1:]]) + "\n")
    with pytest.raises(EcgError, match=message) as info:
        read_ecg(tmp_path / "2.hea")
    _check_message(info.value)


def test_a_lone_wfdb_header_asks_for_its_signal_file_by_name(tmp_path, writes_nothing):
    """Found in the app: a .hea read without its .dat was "truncated or damaged", naming the server's path."""
    (tmp_path / "2.hea").write_bytes((ASSET_LUDB / "2.hea").read_bytes())
    expected = "This is a WFDB header (2.hea); upload its signal file (2.dat) together with it"
    for source in (tmp_path / "2.hea", (ASSET_LUDB / "2.hea").read_bytes()):
        with pytest.raises(EcgError) as info:
            read_ecg(source)
        assert str(info.value).startswith(expected) and str(tmp_path) not in str(info.value)
        _check_message(info.value)
    (tmp_path / "2.ii").write_bytes((ASSET_LUDB / "2.ii").read_bytes())  # an annotation file is no signal file
    with pytest.raises(EcgError, match=re.escape(expected)):
        read_ecg(tmp_path / "2.hea")


def test_library_errors_lose_server_paths():
    """What a library says about a damaged file reaches the uploader without the server's folders."""
    from cardiosynth.ecg.readers._common import damaged

    with pytest.raises(EcgError) as info:
        with damaged("WFDB"):
            raise FileNotFoundError(2, "No such file or directory", "/tmp/gradio/4f0c2d/2.dat")
    assert "'2.dat'" in str(info.value) and "/tmp" not in str(info.value) and "gradio" not in str(info.value)
    with pytest.raises(EcgError, match=re.escape("gain 1000/mV")):  # units and ratios are not paths
        with damaged("WFDB"):
            raise ValueError("gain 1000/mV")


@pytest.mark.parametrize("signal_file", ["../../etc/passwd", "/etc/passwd", "sub/2.dat", "..", "C:2.dat",
                                         "..\\2.dat"])
def test_a_header_naming_a_signal_file_in_another_folder_is_refused(tmp_path, signal_file, writes_nothing):
    """wfdb opens whatever path a header names: a crafted upload could have read a server's files as samples."""
    (tmp_path / "2.dat").write_bytes((ASSET_LUDB / "2.dat").read_bytes())
    (tmp_path / "2.hea").write_text((ASSET_LUDB / "2.hea").read_text().replace("2.dat", signal_file))
    with pytest.raises(EcgError, match="in another folder") as info:
        read_ecg(tmp_path / "2.hea")
    _check_message(info.value)
    with pytest.raises(EcgError) as info:  # as bytes: refused too (as a header, or as no table at all)
        read_ecg((tmp_path / "2.hea").read_bytes())
    _check_message(info.value)


def test_a_dicom_group_length_that_is_not_a_number_is_refused_before_pydicom_formats_it(writes_nothing):
    """Found by the fuzzer: (0002,0000) declared as a sequence; pydicom formats its value into a log message
    it does not log, which took 4-16 s for the fuzzer's nested sequence."""
    content = bytearray((REPO_ROOT / "assets" / "ecg" / "waveform_ecg.dcm").read_bytes())
    assert content[128:138] == b"DICM\x02\x00\x00\x00UL"
    content[136:138] = b"SQ"
    with pytest.raises(EcgError, match=re.escape("(0002,0000) is declared as SQ")) as info:
        read_ecg(bytes(content))
    _check_message(info.value)


def test_a_dicom_group_length_sequence_anywhere_in_the_file_meta_is_refused(writes_nothing):
    """Found by the fuzzer (the check above only looked at the first element): (0002,0000) declared as a sequence
    of undefined length after two valid file meta elements; pydicom took minutes and gigabytes to format it."""
    asset = (REPO_ROOT / "assets" / "ecg" / "waveform_ecg.dcm").read_bytes()
    meta = (b"\x02\x00\x26\x00UL\x04\x00" + (176).to_bytes(4, "little")   # (0002,0026) UL
            + b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01"           # (0002,0001) OB, version 0001
            + b"\x02\x00\x00\x00SQ\x00\x00\xff\xff\xff\xff")                   # (0002,0000) SQ, undefined length
    content = asset[:132] + meta + asset[132:]
    started = time.perf_counter()
    with pytest.raises(EcgError, match=re.escape("(0002,0000) is declared as SQ")) as info:
        read_ecg(content)
    assert time.perf_counter() - started < 1.0
    _check_message(info.value)
    assert read_ecg(asset).signal.shape[0] == 12  # the valid file still reads


def test_a_library_error_with_a_huge_message_is_cut_before_it_is_cleaned():
    """Found by the fuzzer: the path cleaning ran over a pydicom message of megabytes (20 s)."""
    from cardiosynth.ecg.readers._common import damaged

    with pytest.raises(EcgError) as info:
        with damaged("DICOM"):
            raise ValueError("/a/b/c " * 2_000_000)
    assert len(str(info.value)) < 400 and "/a/b" not in str(info.value)


@pytest.mark.parametrize("fmt, message", [("16:70700007", "skew of 70,700,007"),  # found by the fuzzer (> 2 s)
                                          ("16x5000000", "samples per frame of 5,000,000")])
def test_wfdb_signal_skews_and_frames_beyond_any_record_are_refused(tmp_path, fmt, message, writes_nothing):
    (tmp_path / "2.dat").write_bytes((ASSET_LUDB / "2.dat").read_bytes())
    (tmp_path / "2.hea").write_text((ASSET_LUDB / "2.hea").read_text().replace("2.dat 16 ", f"2.dat {fmt} ", 1))
    with pytest.raises(EcgError, match=re.escape(message)) as info:
        read_ecg(tmp_path / "2.hea")
    _check_message(info.value)


def test_a_dicom_value_damaged_into_a_deep_sequence_is_refused_before_pydicom_prints_it(writes_nothing):
    """Found by the fuzzer: SOPClassUID turned into nested sequences with a damaged item; pydicom's str() of
    it wraps every nesting level's error in the whole traceback so far (41-86 s for 12 kB)."""
    from pydicom import dcmread
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.sequence import Sequence

    from fixtures_ecg import dicom_bytes, synthetic_ecg

    ds = dcmread(DicomBytesIO(dicom_bytes(fs=500, signal=synthetic_ecg(500))))
    inner = Dataset()
    for _ in range(40):
        outer = Dataset()
        outer.add_new(0x0040A043, "SQ", Sequence([inner]))
        inner = outer
    del ds[0x00080016]
    ds.add_new(0x00080016, "SQ", Sequence([inner]))
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    with pytest.raises(EcgError, match="SOPClassUID holds a sequence instead of a value") as info:
        read_ecg(buffer.getvalue())
    _check_message(info.value)

    ds = dcmread(DicomBytesIO(dicom_bytes(fs=500, signal=synthetic_ecg(500))))
    del ds.WaveformSequence[0][0x003A0200]
    ds.WaveformSequence[0].add_new(0x003A0200, "LO", "not a sequence")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    with pytest.raises(EcgError, match="ChannelDefinitionSequence is not a sequence") as info:
        read_ecg(buffer.getvalue())
    _check_message(info.value)
