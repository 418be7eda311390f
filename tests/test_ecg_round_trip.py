"""Valid files read back exactly: what the fuzz contract cannot see.

The fuzzers accept a refusal (one EcgError) as a pass, so a reader that refused valid files would pass them. Here
random recordings (rates, lengths, amplitudes and, for SCP-ECG, every encoding) are written with the project's own
writers (fuzz/scp_writer.py, the XML, DICOM and table writers of fixtures_ecg), including what devices really
write (an SCP first sample numbered 0, 16-bit byte counts capped, a headerless table with empty leads, a time
column in whole milliseconds), and must read back to the very samples written, and standardise without refusal.
"""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_ecg import LEADS, cardiosoft_bytes, dicom_bytes, hl7_bytes, muse_bytes
from fuzz.scp_writer import FILE_ORDER, scp_bytes

from cardiosynth.ecg import read_ecg
from cardiosynth.ecg.readers import read_recording

SEEDS = range(4)
RATES = (250, 500, 1000)


def _recording(seed: int, n_leads: int = 12, quantum_mv: float = 2.5e-3) -> tuple[np.ndarray, int]:
    """Counts (n_leads, n): a random walk with beats added, 2.5-12 s at a random rate, up to ~±3 mV."""
    rng = np.random.default_rng(seed)
    fs = int(rng.choice(RATES))
    n = int(rng.uniform(2.5, 12.0) * fs)
    walk = np.cumsum(rng.integers(-3, 4, (n_leads, n)), axis=1)
    beats = np.zeros(n)
    beats[:: int(fs * rng.uniform(0.5, 1.3))] = 1.0
    kernel = np.hanning(max(3, fs // 25))
    spikes = np.convolve(beats, kernel, mode="same") * rng.uniform(0.5, 2.0, (n_leads, 1)) / quantum_mv
    counts = np.rint(walk + spikes).astype(np.int64)
    return np.clip(counts, -30000, 30000), fs


def _same(recording, labels, expected_mv) -> None:
    order = [recording.labels.index(label) for label in labels]
    assert np.allclose(recording.signal[order], expected_mv, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("encoding", [0, 1, 2])
@pytest.mark.parametrize("huffman", [None, "default", "custom"])
@pytest.mark.parametrize("first_sample", [1, 0])
def test_scp_ecg(seed, encoding, huffman, first_sample):
    counts, fs = _recording(seed)
    content = scp_bytes(counts, interval_us=1_000_000 // fs, encoding=encoding, huffman=huffman,
                        first_sample=first_sample)
    rec = read_recording(content)
    assert rec.labels == FILE_ORDER and rec.fs == fs
    _same(rec, FILE_ORDER, counts * 2.5e-3)
    read_ecg(content)


@pytest.mark.parametrize("huffman", [None, "default"])
def test_scp_ecg_capped_byte_counts_read_to_the_cut(huffman):
    counts, _ = _recording(0, n_leads=8)
    counts = np.tile(counts, (1, 40))[:, : 36_000 if huffman is None else 150_000]
    leads = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    content = scp_bytes(counts, leads=leads, interval_us=1000, encoding=0, huffman=huffman, byte_count_cap=65534)
    rec = read_recording(content)
    n = rec.signal.shape[1]
    assert (n == 32_767 if huffman is None else 10_000 < n < counts.shape[1])
    assert any("recording was cut" in w for w in rec.metadata["warnings"])
    _same(rec, leads, counts[:, :n] * 2.5e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_ge_muse(seed):
    counts, fs = _recording(seed, n_leads=12, quantum_mv=4.88e-3)
    stored = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    signal = counts * 4.88e-3
    rec = read_recording(muse_bytes(fs=fs, signal=signal, leads=stored))
    assert rec.fs == fs
    _same(rec, stored, signal[[LEADS.index(lead) for lead in stored]])


@pytest.mark.parametrize("seed", SEEDS)
def test_hl7_aecg(seed):
    counts, fs = _recording(seed)
    rec = read_recording(hl7_bytes(fs=fs, signal=counts * 2.5e-3))
    assert rec.fs == pytest.approx(fs)
    _same(rec, [f"MDC_ECG_LEAD_{lead.upper()}" for lead in LEADS], counts * 2.5e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_dicom(seed):
    counts, fs = _recording(seed, quantum_mv=1.25e-3)
    signal = counts * 1.25e-3
    content = dicom_bytes(fs=fs, signal=signal)
    rec = read_recording(content)
    assert rec.fs == fs
    assert np.allclose(rec.signal, signal, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_cardiosoft(seed):
    counts, fs = _recording(seed, quantum_mv=5e-3)
    rec = read_recording(cardiosoft_bytes(fs=fs, signal=counts * 5e-3))
    assert rec.fs == fs
    assert np.allclose(rec.signal, counts * 5e-3, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_headerless_table_with_empty_leads_and_a_time_column_in_whole_ms(seed):
    counts, fs = _recording(seed, n_leads=6, quantum_mv=1e-3)  # limb leads in uV, chest leads left empty
    times = np.rint(np.arange(counts.shape[1]) * 1000 / fs).astype(int)
    lines = (",".join([str(t)] + [str(v) for v in row] + [""] * 6) for t, row in zip(times, counts.T))
    content = "\n".join(lines).encode()
    order = ["time_ms", *LEADS]
    rec = read_recording(content, leads=order, units="uV")
    assert rec.fs == fs
    _same(rec, LEADS[:6], counts * 1e-3)
    assert not rec.signal[[rec.labels.index(lead) for lead in LEADS[6:]]].any()
    ecg = read_ecg(content, leads=order, units="uV")
    assert ecg.metadata["flat_leads"] == LEADS[6:]
