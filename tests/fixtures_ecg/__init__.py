"""Helpers for the ECG tests: a deterministic synthetic 12-lead ECG and writers that produce small files
in each format, using the format's own library where one exists (wfdb, pyedflib, pydicom, pandas, numpy)
and ElementTree for the XML dialects that have none."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET
from functools import lru_cache

import numpy as np

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@lru_cache(maxsize=None)
def synthetic_ecg(fs: int = 500, duration: float = 10.0, heart_rate: float = 72.0) -> np.ndarray:
    """(12, n) in mV: neurokit2's single-lead simulation, shaped per lead; II - I = III holds exactly."""
    import neurokit2 as nk

    base = nk.ecg_simulate(duration=duration, sampling_rate=fs, heart_rate=heart_rate, noise=0.0,
                           random_state=0)
    base = np.asarray(base, dtype=np.float64)
    lead_i, lead_ii = 0.6 * base, 1.0 * base + 0.05 * np.roll(base, int(0.02 * fs))
    chest = [g * base + s * np.roll(base, int(0.01 * fs * k)) for k, (g, s) in
             enumerate([(-0.5, 0.1), (-0.2, 0.4), (0.5, 0.3), (1.2, 0.1), (1.0, 0.0), (0.8, 0.0)])]
    limb = [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    out = np.stack(limb + chest)
    out.setflags(write=False)  # shared by many tests through the cache: nobody may modify it
    return out


def drawn_ecg(fs: int = 500, rr_s: float = 1.0, qt_s: float = 0.40, pr_gap_s: float = 0.02,
              pacing_spike_before_qrs_s: float | None = None, duration: float = 10.0) -> tuple[np.ndarray, dict]:
    """(12, n) in mV drawn from waves whose edges are known exactly, and the truth: ``qrs_onsets``, ``r_peaks``,
    ``t_ends`` (samples) and ``qt_s``. The P wave (100 ms) ends ``pr_gap_s`` before the QRS onset: close, as in
    the GE MUSE export whose QRS onset a delineator put on the P wave. With ``pacing_spike_before_qrs_s``, a
    2-sample 6 mV pacing spike stands that long before every QRS onset, in every lead (as on a paced ECG whose
    R-peaks sat on the spike). Limb leads keep Einthoven's relations; chest leads are scaled copies."""
    n = round(duration * fs)
    t = np.arange(n) / fs
    base = np.zeros(n)
    onsets = np.arange(0.45, duration - rr_s * 0.8, rr_s)
    qrs = np.array([[0, 0.0], [0.02, -0.1], [0.04, 1.2], [0.06, -0.25], [0.09, 0.0]])  # (s after onset, mV)
    spikes = []
    for onset in onsets:
        base += np.interp(t, onset + qrs[:, 0], qrs[:, 1], left=0, right=0)
        p_end = onset - pr_gap_s
        in_p = (t > p_end - 0.10) & (t < p_end)
        base[in_p] += 0.15 * np.sin(np.pi * (t[in_p] - p_end + 0.10) / 0.10)
        t_end = onset + qt_s
        in_t = (t > t_end - 0.22) & (t < t_end)
        base[in_t] += 0.35 * np.sin(np.pi * (t[in_t] - t_end + 0.22) / 0.22) ** 2
        if pacing_spike_before_qrs_s is not None:
            spikes.append(round((onset - pacing_spike_before_qrs_s) * fs))
    lead_i, lead_ii = 0.6 * base, base
    limb = [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    out = np.stack(limb + [g * base for g in (-0.5, 0.4, 0.8, 1.3, 1.0, 0.8)])
    for spike in spikes:  # a pacing spike is no body surface projection: every lead sees it, in its own sign
        out[:, spike:spike + 2] += 6.0 * np.array([1, 1, 1, -1, 1, 1, 1, 1, 1, 1, 1, 1])[:, None]
    truth = {"qrs_onsets": np.rint(onsets * fs).astype(int), "r_peaks": np.rint((onsets + 0.04) * fs).astype(int),
             "t_ends": np.rint((onsets + qt_s) * fs).astype(int), "qt_s": qt_s, "spikes": np.asarray(spikes)}
    return out, truth


def write_wfdb(folder, name="rec", fs=500, signal=None):
    import wfdb

    signal = synthetic_ecg(fs) if signal is None else signal
    wfdb.wrsamp(name, fs=fs, units=["mV"] * len(signal), sig_name=[n.lower() for n in LEADS[: len(signal)]],
                p_signal=signal.T, fmt=["16"] * len(signal), adc_gain=[1000.0] * len(signal),
                baseline=[0] * len(signal), write_dir=str(folder))
    return folder / f"{name}.hea"


def write_edf(path, fs=500, signal=None, order=None, dimension="mV"):
    import pyedflib

    signal = synthetic_ecg(fs) if signal is None else signal
    order = order or list(range(len(signal)))
    limit = float(np.ceil(5.0 * np.max(np.abs(signal))))
    headers = []
    for k in order:
        headers.append({"label": LEADS[k], "dimension": dimension, "sample_frequency": fs,
                        "physical_max": limit, "physical_min": -limit, "digital_max": 32767,
                        "digital_min": -32768, "transducer": "", "prefilter": ""})
    pyedflib.highlevel.write_edf(str(path), [signal[k] for k in order], headers)
    return path


def dicom_bytes(fs=1000, signal=None, uv_per_lsb=1.25, labels=None, sop_class="1.2.840.10008.5.1.4.1.1.9.1.1",
                codes=None, extra_channels=(), median_first=False, baseline_uv=0.0) -> bytes:
    """A minimal DICOM waveform object (default: 12-lead ECG Waveform Storage) with a RHYTHM group (pydicom).

    ``codes`` gives each channel a (scheme, code value) instead of a meaning-only code; ``extra_channels``
    appends non-ECG channels (e.g. "Pressure") filled with a ramp; ``median_first`` puts a 1.2-s MEDIAN BEAT
    group with the same leads before the rhythm; ``baseline_uv`` is stored as every channel's baseline (and
    subtracted from the stored samples, so the decoded signal is unchanged).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    signal = synthetic_ecg(fs) if signal is None else signal
    labels = list(labels or ["Lead I (Einthoven)", "Lead II", "Lead III", "Lead aVR", "Lead aVL", "Lead aVF",
                             "Lead V1", "Lead V2", "Lead V3", "Lead V4", "Lead V5", "Lead V6"])
    if extra_channels:
        ramp = np.linspace(0, 50, signal.shape[1])[None].repeat(len(extra_channels), 0)
        signal = np.concatenate([signal, ramp])
        labels += list(extra_channels)
    codes = list(codes or [("99TEST", "x")] * len(labels)) + [("99TEST", "p")] * len(extra_channels)
    digital = np.round((signal - baseline_uv * 1e-3) / (uv_per_lsb * 1e-3)).astype("<i2")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["cardiosynth-test"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "ECG" if sop_class.startswith("1.2.840.10008.5.1.4.1.1.9.1.") else "HD"

    def group_of(label, data):
        group = Dataset()
        group.MultiplexGroupLabel = label
        group.SamplingFrequency = fs
        group.NumberOfWaveformChannels = len(data)
        group.NumberOfWaveformSamples = data.shape[1]
        group.WaveformBitsAllocated = 16
        group.WaveformSampleInterpretation = "SS"
        channels = []
        for name, (scheme, value) in zip(labels, codes):
            ch = Dataset()
            source = Dataset()
            source.CodeMeaning = name
            source.CodeValue = value
            source.CodingSchemeDesignator = scheme
            ch.ChannelSourceSequence = [source]
            ch.ChannelSensitivity = uv_per_lsb
            unit = Dataset()
            unit.CodeValue = "uV"
            unit.CodingSchemeDesignator = "UCUM"
            unit.CodeMeaning = "microvolt"
            ch.ChannelSensitivityUnitsSequence = [unit]
            ch.ChannelSensitivityCorrectionFactor = 1
            ch.ChannelBaseline = baseline_uv
            ch.WaveformBitsStored = 16
            channels.append(ch)
        group.ChannelDefinitionSequence = channels
        group.WaveformData = data.T.tobytes()  # interleaved: sample-major
        return group

    rhythm = group_of("RHYTHM", digital)
    ds.WaveformSequence = [group_of("MEDIAN BEAT", digital[:, : int(1.2 * fs)]), rhythm] if median_first else [rhythm]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def hl7_bytes(fs=500, signal=None, order=None, with_beat=True) -> bytes:
    """HL7 aECG with a RHYTHM series (leads in the file order I, II, V1-V6, III, aVR, aVL, aVF)."""
    signal = synthetic_ecg(fs) if signal is None else signal
    order = order or [0, 1, 6, 7, 8, 9, 10, 11, 2, 3, 4, 5]
    ns = "urn:hl7-org:v3"
    ET.register_namespace("", ns)

    def el(parent, tag, **attrib):
        return ET.SubElement(parent, f"{{{ns}}}{tag}", attrib)

    root = ET.Element(f"{{{ns}}}AnnotatedECG")
    for series_tag, code, data in [("series", "RHYTHM", signal)] + (
            [("derivedSeries", "REPRESENTATIVE_BEAT", signal[:, :300])] if with_beat else []):
        series = el(el(root, "component"), series_tag)
        el(series, "code", code=code)
        seq_set = el(el(series, "component"), "sequenceSet")
        time_seq = el(el(seq_set, "component"), "sequence")
        el(time_seq, "code", code="TIME_ABSOLUTE")
        value = el(time_seq, "value")
        el(value, "head", value="20240101120000")
        el(value, "increment", value=f"{1 / fs:g}", unit="s")
        for k in order:
            seq = el(el(seq_set, "component"), "sequence")
            el(seq, "code", code=f"MDC_ECG_LEAD_{LEADS[k].upper()}")
            value = el(seq, "value")
            el(value, "origin", value="0", unit="uV")
            el(value, "scale", value="2.5", unit="uV")
            el(value, "digits").text = " ".join(str(int(v)) for v in np.round(data[k] / 2.5e-3))
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def muse_bytes(fs=500, signal=None, leads=("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"),
               device_qt_ms: float | None = None) -> bytes:
    """GE MUSE RestingECG with a Median and a Rhythm waveform; 8 stored leads, 4.88 uV/LSB; with
    ``device_qt_ms``, the device's own QT in RestingECGMeasurements, as MUSE stores it."""
    signal = synthetic_ecg(fs) if signal is None else signal
    root = ET.Element("RestingECG")
    ET.SubElement(ET.SubElement(root, "MuseInfo"), "MuseVersion").text = "9.0.test"
    if device_qt_ms is not None:
        ET.SubElement(ET.SubElement(root, "RestingECGMeasurements"), "QTInterval").text = f"{device_qt_ms:.0f}"
    for kind, data in [("Median", signal[:, :600]), ("Rhythm", signal)]:
        wf = ET.SubElement(root, "Waveform")
        ET.SubElement(wf, "WaveformType").text = kind
        ET.SubElement(wf, "SampleBase").text = str(fs)
        ET.SubElement(wf, "SampleExponent").text = "0"
        for name in leads:
            lead = ET.SubElement(wf, "LeadData")
            samples = np.round(data[LEADS.index(name)] / 4.88e-3).astype("<i2")
            ET.SubElement(lead, "LeadSampleCountTotal").text = str(samples.size)
            ET.SubElement(lead, "LeadAmplitudeUnitsPerBit").text = "4.88"
            ET.SubElement(lead, "LeadAmplitudeUnits").text = "MICROVOLTS"
            ET.SubElement(lead, "LeadID").text = name
            ET.SubElement(lead, "LeadSampleSize").text = "2"
            ET.SubElement(lead, "WaveFormData").text = base64.b64encode(samples.tobytes()).decode()
    return b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + ET.tostring(root)


def cardiosoft_bytes(fs=500, signal=None) -> bytes:
    """GE CardioSoft / UK Biobank 20205 XML: StripData with comma-separated WaveformData per lead."""
    signal = synthetic_ecg(fs) if signal is None else signal
    root = ET.Element("CardiologyXML")
    ET.SubElement(root, "ObservationType").text = "RestECG"
    strip = ET.SubElement(root, "StripData")
    ET.SubElement(strip, "NumberOfLeads").text = str(len(signal))
    ET.SubElement(strip, "SampleRate", units="Hz").text = str(fs)
    ET.SubElement(strip, "ChannelSampleCountTotal").text = str(signal.shape[1])
    ET.SubElement(strip, "Resolution", units="uVperLsb").text = "5"
    for k, name in enumerate(LEADS[: len(signal)]):
        wd = ET.SubElement(strip, "WaveformData", lead=name.upper())
        wd.text = ",".join(str(int(v)) for v in np.round(signal[k] / 5e-3))
    median = ET.SubElement(ET.SubElement(root, "RestingECGMeasurements"), "MedianSamples")
    ET.SubElement(median, "WaveformData", lead="I").text = "0,1,2"
    return ET.tostring(root, xml_declaration=True, encoding="ISO-8859-1")


def csv_bytes(fs=500, signal=None, time_column=False, preface=False, columns=None) -> bytes:
    import pandas as pd

    signal = synthetic_ecg(fs) if signal is None else signal
    columns = columns or LEADS[: len(signal)]
    frame = pd.DataFrame(signal.T, columns=columns)
    if time_column:
        frame.insert(0, "time_s", np.arange(signal.shape[1]) / fs)
    text = frame.to_csv(index=False, float_format="%.5f")
    if preface:
        text = f"Sampling Rate (Hz): {fs}\nGain (digit/millivolt): 1\n" + text
    return text.encode()


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def edf_bytes(fs=500, signal=None, seconds_per_record=1) -> bytes:
    """A plain EDF file built in memory (pyedflib can only write to disk), +-10 mV over int16."""
    signal = synthetic_ecg(fs) if signal is None else signal
    ns, n = len(signal), signal.shape[1]
    per_record = fs * seconds_per_record
    n_records = n // per_record

    def field(value, width):
        return str(value).ljust(width)[:width].encode("ascii")

    header = b"".join([field(0, 8), field("X X X X", 80), field("Startdate X X X X", 80), field("01.01.24", 8),
                       field("00.00.00", 8), field(256 * (ns + 1), 8), field("", 44), field(n_records, 8),
                       field(seconds_per_record, 8), field(ns, 4)])
    columns = [
        [field(LEADS[k], 16) for k in range(ns)], [field("", 80)] * ns, [field("mV", 8)] * ns,
        [field(-10, 8)] * ns, [field(10, 8)] * ns, [field(-32768, 8)] * ns, [field(32767, 8)] * ns,
        [field("", 80)] * ns, [field(per_record, 8)] * ns, [field("", 32)] * ns,
    ]
    header += b"".join(b"".join(col) for col in columns)
    digital = np.clip(np.round((signal[:, : n_records * per_record] + 10) / 20 * 65535 - 32768), -32768, 32767)
    blocks = digital.astype("<i2").reshape(ns, n_records, per_record).transpose(1, 0, 2)
    return header + blocks.tobytes()
