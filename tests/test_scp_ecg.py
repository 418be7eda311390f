"""The SCP-ECG reader: the real example in ../shared, exact round trips of every encoding written by
fuzz/scp_writer.py, and one clear EcgError, naming the section, for each damaged or unsupported record."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from fixtures_ecg import LEADS, synthetic_ecg
from fuzz.scp_writer import (CUSTOM_TABLES, FILE_ORDER, build_record, header_section, huffman_section, patched,
                             pointer_offset, reseal, scp_bytes, scp_sections, section_offset)

from cardiosynth.ecg import N_SAMPLES, EcgError, read_ecg
from cardiosynth.ecg.readers.scp import read_scp

AVM_NV = 2500
STEPS = slice(500, 503)  # where _counts adds steps that need the 8-bit escape


def _counts(n: int = 5000) -> np.ndarray:
    """The synthetic ECG in file lead order as counts of 2.5 uV, with steps that need the 8-bit escape."""
    x = np.rint(synthetic_ecg(500)[[LEADS.index(lead) for lead in FILE_ORDER], :n] * 1e6 / AVM_NV).astype(np.int64)
    x[:, STEPS] += np.array([90, -70, 40])
    return x


def _assert_exact(rec, expected: np.ndarray) -> None:
    assert rec.labels == FILE_ORDER and rec.fs == 500 and rec.calibrated and rec.source_format == "scp_ecg"
    assert np.array_equal(np.rint(rec.signal * 1e6 / AVM_NV), expected)
    assert np.allclose(rec.signal, expected * AVM_NV / 1e6, rtol=0, atol=1e-12)


# --- the real example ----------------------------------------------------------------------------------

def test_shared_example_is_a_standard_ecg(ecg_root):
    # read_scp takes about 15 ms on this file (34 kB, default Huffman table, second differences)
    ecg = read_ecg(ecg_root / "formats" / "scp_ecg" / "Example.scp")
    assert ecg.signal.shape == (12, N_SAMPLES) and ecg.source_format == "scp_ecg" and ecg.calibrated
    assert ecg.metadata["derived_leads"] == [] and ecg.metadata["original_leads"][:3] == ["I", "II", "V1"]
    assert {k: ecg.metadata[k] for k in ("scp_version", "encoding", "huffman", "amplitude_nv_per_count")} == {
        "scp_version": "2.0", "encoding": "second difference", "huffman": "default", "amplitude_nv_per_count": 2500}
    assert ecg.metadata["acquired"] == "2002-11-22T09:10:00" and "ELI250" in ecg.metadata["device"]
    assert 0.3 < np.ptp(ecg.lead("II")) and np.abs(ecg.signal).max() < 5
    one_count = AVM_NV / 1e6  # the file stores each lead rounded to a count: relations hold to about one
    lead_i, lead_ii = ecg.lead("I"), ecg.lead("II")
    assert np.abs(ecg.lead("III") - (lead_ii - lead_i)).max() <= one_count
    assert np.abs(ecg.lead("aVR") + (lead_i + lead_ii) / 2).max() <= one_count
    assert np.abs(ecg.lead("aVL") - (lead_i - lead_ii / 2)).max() <= one_count
    assert np.abs(ecg.lead("aVF") - (lead_ii - lead_i / 2)).max() <= one_count


# --- round trips through the test writer ------------------------------------------------------------------

@pytest.mark.parametrize("encoding", [0, 1, 2])
@pytest.mark.parametrize("huffman", [None, "default", "custom"])
def test_round_trip_is_exact(encoding, huffman):
    x = _counts()
    rec = read_scp(scp_bytes(x, encoding=encoding, huffman=huffman))
    _assert_exact(rec, x)
    assert rec.metadata["encoding"] == ["none", "first difference", "second difference"][encoding]
    assert rec.metadata["huffman"] == (huffman or "none") and not rec.metadata["reference_beat_subtracted"]


@pytest.mark.parametrize("huffman", [None, "default", "custom"])
def test_reference_beat_is_added_back(huffman):
    x = _counts()
    beat = x[:, 300:600].copy()  # 300 samples = 600 ms; any beat works, the reader must undo what was done
    sections = scp_sections(x, huffman=huffman, reference_beat=beat, beat_fiducial=101,
                            qrs_fiducials=(400, 1234, 2100, 4800), zone=(-50, 120))
    rec = read_scp(build_record(sections))
    _assert_exact(rec, x)
    assert rec.metadata["reference_beat_subtracted"]
    flag_cleared = sections[3][:1] + bytes([sections[3][1] & ~1]) + sections[3][2:]
    residual = read_scp(build_record({**sections, 3: flag_cleared})).signal
    assert not np.array_equal(residual, rec.signal)


def test_differences_that_wrap_around_16_bits_decode_exactly():
    x = np.tile([30000, -30000, 29000, -32000], (12, 1250))
    for huffman in (None, "default"):
        _assert_exact(read_scp(scp_bytes(x, encoding=2, huffman=huffman)), x)


def test_read_ecg_orders_leads_and_keeps_no_patient_data():
    ecg = read_ecg(scp_bytes(_counts(), huffman="custom"))
    assert ecg.signal.shape == (12, N_SAMPLES) and ecg.source_format == "scp_ecg"
    expected = synthetic_ecg(500).copy()
    expected[:, STEPS] = ecg.signal[:, STEPS]  # the added steps
    assert np.abs(ecg.signal - expected).max() <= AVM_NV / 2e6 + 1e-9
    assert ecg.metadata["device"] == "Acme Medical MAC5K" and ecg.metadata["acquired"] == "2024-03-14T09:26:53"
    assert "Doe" not in repr(ecg.metadata) and "PATIENT-123" not in repr(ecg.metadata)


def test_other_lead_codes_are_named():
    record = scp_bytes(_counts(1000))
    lead_codes = section_offset(record, 3) + 16 + 2 + 8
    record = patched(patched(record, lead_codes, "<B", 9, 3), lead_codes + 9, "<B", 200, 3)
    assert read_scp(record).labels[:3] == ["V7", "lead 200", "V1"]


# --- device quirks: valid files as devices really write them ----------------------------------------------

CHEST_AND_LIMB = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]  # what 8-lead devices store (limb leads derived)


def _eight_leads(n: int, seed: int = 0) -> np.ndarray:
    """n samples of 8 leads in counts: the synthetic ECG tiled, with a little noise so that no two runs match."""
    x = np.tile(_counts(), (1, -(-n // N_SAMPLES)))[[FILE_ORDER.index(lead) for lead in CHEST_AND_LIMB], :n]
    return x + np.random.default_rng(seed).integers(-3, 4, x.shape)


@pytest.mark.parametrize("huffman", [None, "default", "custom"])
def test_first_sample_numbered_0_is_read_as_1_with_a_warning(huffman):
    """A device numbering the first sample 0 in section 3 ("impossible sample range 0 to 10000" before)."""
    x = _eight_leads(10_000)
    record = scp_bytes(x, leads=CHEST_AND_LIMB, interval_us=1000, huffman=huffman, first_sample=0)
    lead_range = section_offset(record, 3) + 16 + 2
    assert struct.unpack_from("<II", record, lead_range) == (0, 10_000)
    rec = read_scp(record)
    assert rec.labels == CHEST_AND_LIMB and rec.fs == 1000 and np.array_equal(np.rint(rec.signal * 1e6 / AVM_NV), x)
    assert [w for w in rec.metadata["warnings"] if "first sample 0" in w]
    ecg = read_ecg(record)
    assert ecg.metadata["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    assert any("first sample 0" in w for w in ecg.metadata["warnings"])


@pytest.mark.parametrize("huffman", [None, "default"])
def test_byte_counts_capped_at_16_bits_give_the_samples_that_are_there_with_a_warning(huffman):
    """37,855 samples declared; the 16-bit byte count per lead capped at 65,534, and only those bytes stored."""
    n = 37_855 if huffman is None else 120_000  # Huffman packs ~3 bits a sample: more are needed to reach the cap
    x = _eight_leads(n)
    record = scp_bytes(x, leads=CHEST_AND_LIMB, interval_us=1000, encoding=0 if huffman is None else 2,
                       huffman=huffman, byte_count_cap=65534)
    sizes = struct.unpack_from("<8H", record, section_offset(record, 6) + 16 + 6)
    assert set(sizes) == {65534}
    rec = read_scp(record)
    n_read = rec.signal.shape[1]
    if huffman is None:
        assert n_read == 32_767
    assert 30_000 < n_read < n and np.array_equal(np.rint(rec.signal * 1e6 / AVM_NV), x[:, :n_read])
    warning = next(w for w in rec.metadata["warnings"] if "cut" in w)
    assert f"{n:,} samples" in warning and f"{n_read:,}" in warning and "65,534" in warning


def test_byte_counts_under_the_cap_that_hold_too_few_samples_are_still_refused():
    record = scp_bytes(_eight_leads(20_000), leads=CHEST_AND_LIMB, huffman=None, byte_count_cap=30_000)
    with pytest.raises(EcgError, match="too few"):
        read_scp(record)


@pytest.mark.parametrize("model, strings, expected", [
    (b"\x01\0", (b"\x01",) * 5, None),  # control bytes where names belong: no name, not "\x01"
    (b"ELI250", (b"unknown", b"unknown", b"unknown", b"ECGConversion", b"ECGConversion"), "ECGConversion ELI250"),
    (b"\x01\x02", (b"1.0", b"SN", b"sw", b"scp", b"Acme"), "Acme"),
    (b"MAC5K\0", (b"", b"", b"", b"", b""), "MAC5K"),
])
def test_device_names_are_printable_text_or_absent(model, strings, expected):
    record = scp_bytes(_counts(1000), header=header_section(model=model, strings=strings))
    assert read_scp(record).metadata.get("device") == expected


def test_the_devices_qt_comes_from_section_7():
    assert read_scp(scp_bytes(_counts(1000), measured=(434, 854))).metadata["device_qt_ms"] == 420
    for not_measured in ((29999, 854), (434, 29998), (854, 434)):  # not computed, rejected, impossible
        assert "device_qt_ms" not in read_scp(scp_bytes(_counts(1000), measured=not_measured)).metadata


def test_shared_example_carries_the_devices_qt(ecg_root):
    """The SCP and HL7 examples are one recording: both say QT 420 ms (section 7; an MDC_ECG_TIME_PD_QT note)."""
    formats = ecg_root / "formats"
    assert read_ecg(formats / "scp_ecg" / "Example.scp").metadata["device_qt_ms"] == 420
    assert read_ecg(formats / "hl7_aecg" / "Example_aECG.xml").metadata["device_qt_ms"] == 420


# --- damaged and unsupported records ----------------------------------------------------------------------

def _small(**options) -> bytes:
    return scp_bytes(_counts(1000), **options)


def _with_section(record: bytes, sid: int, offset: int, fmt: str, value: int) -> bytes:
    """The record with ``value`` written ``offset`` bytes into section ``sid``'s body, CRCs re-sealed."""
    return patched(record, section_offset(record, sid) + 16 + offset, fmt, value, sid)


def _flipped(record: bytes, offset: int) -> bytearray:
    out = bytearray(record)
    out[offset] ^= 0xFF
    return out


def _without(sid: int) -> bytes:
    sections = scp_sections(_counts(1000))
    del sections[sid]
    return build_record(sections)


def _all_leads_end_at(record: bytes, end: int) -> bytes:
    for k in range(12):
        record = _with_section(record, 3, 2 + 9 * k + 4, "<I", end)
    return record


def _lead_bytes_moved() -> bytes:
    """Lead I's last 10 Huffman bytes counted as lead II's: lead I's data end early."""
    record = _small()
    lead_i = struct.unpack_from("<H", record, section_offset(record, 6) + 16 + 6)[0]
    record = _with_section(record, 6, 6, "<H", lead_i - 10)
    return _with_section(record, 6, 8, "<H", struct.unpack_from("<H", record, section_offset(record, 6) + 24)[0] + 10)


def _custom_table(prefix_bits: int = 4, switch_to: int = 2) -> bytes:
    table = [("0", 0, 0, False), ("1" * (prefix_bits - 1) + "0", 0, 16, False), ("1" * prefix_bits, switch_to, 0, True)]
    sections = scp_sections(_counts(1000), huffman=None)
    return build_record({**sections, 2: huffman_section([table, CUSTOM_TABLES[1]])})


def _subtraction_flag_without_zones() -> bytes:
    record = _small()
    return _with_section(record, 3, 1, "<B", record[section_offset(record, 3) + 17] | 1)


def _beat_at_another_rate() -> bytes:
    x = _counts()
    record = scp_bytes(x, reference_beat=x[:, :300], beat_fiducial=101, qrs_fiducials=(400,), zone=(-50, 50))
    return _with_section(record, 5, 2, "<H", 4000)


BAD_RECORDS = {  # name -> (record, words the message must contain)
    "bad record CRC": (lambda: _flipped(_small(), -1), ["record CRC"]),
    "bad section CRC": (lambda: reseal(_flipped(_small(), section_offset(_small(), 6) + 40)), ["section 6", "CRC"]),
    "truncated file": (lambda: _small()[:-50], ["truncated"]),
    "record shorter than a section": (lambda: b"\x00" * 16 + b"SCPECG" + b"\x00" * 200, ["SCP-ECG", "damaged"]),
    "declared length beyond the file": (lambda: patched(_small(), pointer_offset(6) + 2, "<I", len(_small()), 0),
                                        ["section 6", "outside"]),
    "declared index beyond the file": (lambda: patched(_small(), pointer_offset(6) + 6, "<I", len(_small()) - 20, 0),
                                       ["section 6", "outside"]),
    "2 GB declared section length": (lambda: patched(_small(), pointer_offset(6) + 2, "<I", 2**31, 0), ["section 6"]),
    "2 GB declared record length": (lambda: patched(_small(), 2, "<I", 2**31), ["truncated"]),
    "2 GB declared lead length": (lambda: _all_leads_end_at(_small(), 2**31), ["section 3", "Holter"]),
    "section header disagrees with section 0": (lambda: _with_section(_small(), 6, -14, "<H", 7), ["section 6"]),
    "section 6 missing": (lambda: _without(6), ["section 6"]),
    "section 3 missing": (lambda: _without(3), ["section 3"]),
    "unknown encoding": (lambda: _with_section(_small(), 6, 4, "<B", 3), ["section 6", "encoding 3"]),
    "zero sample interval": (lambda: _with_section(_small(), 6, 2, "<H", 0), ["section 6"]),
    "bimodal compression": (lambda: _with_section(_small(), 6, 5, "<B", 1), ["section 6", "bimodal"]),
    "Huffman data end early": (_lead_bytes_moved, ["section 6, lead I", "ends after"]),
    "raw lead shorter than declared": (lambda: _all_leads_end_at(_small(huffman=None), 4000), ["section 6", "too few"]),
    "byte counts beyond the section": (lambda: _with_section(_small(), 6, 6, "<H", 60000), ["section 6"]),
    "switch to a missing Huffman table": (lambda: _custom_table(switch_to=3), ["section 2", "table 3"]),
    "Huffman code longer than 16 bits": (lambda: _custom_table(prefix_bits=20), ["section 2", "20"]),
    "no Huffman table": (lambda: _with_section(_small(), 2, 0, "<H", 0), ["section 2"]),
    "leads of different lengths": (lambda: _with_section(_small(), 3, 2 + 9 + 4, "<I", 900), ["section 3"]),
    "subtraction without sections 4 and 5": (_subtraction_flag_without_zones, ["section 4"]),
    "reference beat at another rate": (_beat_at_another_rate, ["section 5", "bimodal"]),
    "header field past its section": (lambda: _with_section(_small(), 1, 1, "<H", 5000), ["section 1"]),
}


@pytest.mark.parametrize("name", list(BAD_RECORDS))
def test_bad_record_gives_one_clear_error(name):
    make, words = BAD_RECORDS[name]
    with pytest.raises(EcgError) as info:
        read_ecg(bytes(make()))
    message = str(info.value)
    assert all(word in message for word in words), message
    assert message[0].isupper() and message.endswith((".", ")")) and len(message) < 600
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_random_damage_never_escapes_as_another_error():
    """Bytes changed at random inside sections 0-6 (CRCs re-sealed, so the parser goes past them): every
    record either reads or raises EcgError, quickly."""
    rng = np.random.default_rng(1)
    base = _small(reference_beat=_counts(1000)[:, :300], beat_fiducial=101, qrs_fiducials=(400,), zone=(-50, 50))
    for _ in range(300):
        sid = int(rng.integers(0, 7))
        start = section_offset(base, sid)
        length = struct.unpack_from("<I", base, start + 4)[0]
        out = bytearray(base)
        first = start + 16 + (10 if sid == 0 else 0)  # section 0's entry for itself locates it for reseal
        for offset in rng.integers(first, start + length, size=int(rng.integers(1, 4))):
            out[offset] = int(rng.integers(0, 256))
        try:
            read_scp(reseal(out, sid))
        except EcgError:
            pass
