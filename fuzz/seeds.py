"""Seed corpora: the shared example files of each format, shortened to 0.4 s of signal.

The examples are 10-s recordings of 35-900 kB; at that size one input takes 5-10 ms to parse and
standardise, so a million inputs would take a day. Shortening the recording keeps every structure the
parser walks (headers, lead definitions, encodings, groups) while making an input many times cheaper, so
the fuzzer spends its inputs on the parser, not on decoding samples. (Standardisation, which refuses
recordings under 2 s, has its own harness.) Each shortened seed is built with the format's own rules
(counts and lengths in the header updated), so it still parses.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fuzz.xli_writer import xli_chunk

from cardiosynth.paths import REPO_ROOT, data_root

SHARED_FORMATS = data_root() / "ecg" / "formats"
ASSETS = REPO_ROOT / "assets" / "ecg"
KEEP_SECONDS = 0.4
KEEP_SAMPLES = int(KEEP_SECONDS * 500)  # text formats and WFDB examples are 500 Hz


def short_dicom(content: bytes, lean: bool = False) -> bytes:
    """Every multiplex group cut to the first samples; ``lean`` also drops the waveform annotations (240
    sequence items in the shared example, most of pydicom's parsing time)."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(content))
    if lean and "WaveformAnnotationSequence" in ds:
        del ds.WaveformAnnotationSequence
    for group in ds.WaveformSequence:
        n = min(int(KEEP_SECONDS * float(group.SamplingFrequency)), int(group.NumberOfWaveformSamples))
        width = int(group.WaveformBitsAllocated) // 8 * int(group.NumberOfWaveformChannels)
        group.WaveformData = bytes(group.WaveformData)[: n * width]
        group.NumberOfWaveformSamples = n
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def short_text(content: bytes) -> bytes:
    """The preface and header lines, then the first samples."""
    lines = content.splitlines()
    header = next(k for k, line in enumerate(lines) if line[:1].isalpha() and b"," in line)
    return b"\n".join(lines[: header + 1 + KEEP_SAMPLES]) + b"\n"


def short_hl7(content: bytes) -> bytes:
    """Keep the first samples of every ``<digits>`` list."""
    def cut(match: re.Match) -> bytes:
        return match.group(1) + b" ".join(match.group(2).split()[:KEEP_SAMPLES]) + match.group(3)
    return re.sub(rb"(<digits>)(.*?)(</digits>)", cut, content, flags=re.S)


def short_muse(content: bytes) -> bytes:
    """Cut every base64 ``WaveFormData`` to the first samples and update the lead sample counts."""
    def cut(match: re.Match) -> bytes:
        samples = np.frombuffer(base64.b64decode(match.group(2)), dtype="<i2")[:KEEP_SAMPLES]
        return match.group(1) + base64.b64encode(samples.tobytes()) + match.group(3)
    content = re.sub(rb"(<WaveFormData>)(.*?)(</WaveFormData>)", cut, content, flags=re.S)
    return re.sub(rb"<LeadSampleCountTotal>\d+</LeadSampleCountTotal>",
                  b"<LeadSampleCountTotal>%d</LeadSampleCountTotal>" % KEEP_SAMPLES, content)


def short_edf(content: bytes) -> bytes:
    """The first data records only (the record count in the header says how many)."""
    header_bytes = int(content[184:192])
    record_seconds = float(content[244:252])
    n_signals = int(content[252:256])
    offset = 256 + n_signals * 216
    per_record = sum(int(content[offset + 8 * k: offset + 8 * k + 8]) for k in range(n_signals))
    n_records = int(np.ceil(KEEP_SECONDS / record_seconds))
    return content[:236] + str(n_records).encode().ljust(8) + content[244:header_bytes + 2 * per_record * n_records]


def short_scp(content: bytes) -> list[bytes]:
    """The record's first samples written again (fuzz.scp_writer): as stored (second differences, default
    Huffman table), uncompressed, and with the two custom switching tables, so each decoder path has a seed."""
    from cardiosynth.ecg.readers.scp import read_scp
    from fuzz.scp_writer import scp_bytes

    record = read_scp(content)
    avm_nv = record.metadata["amplitude_nv_per_count"]
    counts = np.round(record.signal[:, :KEEP_SAMPLES] * 1e6 / avm_nv).astype(np.int64)
    options = dict(leads=record.labels, avm_nv=avm_nv, interval_us=round(1e6 / record.fs))
    return [scp_bytes(counts, **options), scp_bytes(counts, encoding=0, huffman=None, **options),
            scp_bytes(counts, encoding=1, huffman="custom", **options)]


def _xml_text(content: bytes) -> tuple[str, str]:
    """The document as text and the codec it was written in (the shared examples are UTF-8 and UTF-16)."""
    codec = "utf-16" if content[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    return content.decode(codec), codec


def short_philips(content: bytes) -> list[bytes]:
    """The stored leads cut to the first samples, written again XLI-compressed (fuzz.xli_writer) and as
    uncompressed 16-bit samples, so both decoder paths have a seed; the duration attribute follows."""
    from cardiosynth.ecg.readers.philips import MAX_LEADS, reconstitute_limb_leads, xli_decode

    text, codec = _xml_text(content)
    match = re.search(r"(<parsedwaveforms)([^>]*)>(.*?)(</parsedwaveforms>)", text, flags=re.S)
    rate = int(re.search(r"<samplingrate>\s*(\d+)", text).group(1))
    attributes = match.group(2)
    stored = [lead[:KEEP_SAMPLES] for lead in xli_decode(base64.b64decode(match.group(3)), MAX_LEADS, 10**6)]
    leads = [lead.copy() for lead in stored]
    reconstitute_limb_leads(leads)  # uncompressed files store the leads themselves, not XLI's residuals
    attributes = re.sub(r'durationperchannel="\d+"', f'durationperchannel="{KEEP_SAMPLES * 1000 // rate}"',
                        attributes)
    uncompressed = re.sub(r'compression="XLI"', 'compression="Uncompressed"',  # v1.04
                          re.sub(r'\s*compressmethod="XLI"', "", attributes.replace('compressflag="True"',
                                                                                   'compressflag="False"')))
    variants = [(attributes, b"".join(xli_chunk(lead) for lead in stored)),
                (uncompressed, np.stack(leads).astype("<i2").tobytes())]
    out = []
    for head, payload in variants:
        body = f"{match.group(1)}{head}>{base64.b64encode(payload).decode()}{match.group(4)}"
        out.append((text[: match.start()] + body + text[match.end():]).encode(codec))
    return out


def short_wfdb_header(content: bytes) -> bytes:
    """The record line's sample count set to match the shortened signal file the harness uses."""
    first, rest = content.split(b"\n", 1)
    fields = first.split()
    fields[3] = str(KEEP_SAMPLES).encode()
    return b" ".join(fields) + b"\n" + rest


SHORTEN: dict[str, Callable[[bytes], bytes]] = {
    "dicom": short_dicom, "csv": short_text, "hl7": short_hl7, "muse": short_muse, "edf": short_edf,
    "wfdb": short_wfdb_header,
}
# Example files per target (globs under the shared folder, then the repository's assets) and how to shorten
# them; a target without a shortener uses the file as it is.
EXAMPLES: dict[str, tuple[list[str], str | None]] = {
    "dicom": (["dicom/*.dcm", "waveform_ecg.dcm"], "dicom"),
    "edf": (["edf/*.edf"], "edf"),
    "scp": (["scp_ecg/*.scp"], None),
    "muse": (["ge_muse_xml/*.xml"], "muse"),
    "philips": (["philips_sierra_xml/*.XML", "philips_sierra_xml/*.xml"], None),
    "hl7": (["hl7_aecg/*.xml", "Example_aECG.xml"], "hl7"),
    "csv": (["csv/*.csv"], "csv"),
    "wfdb": (["ludb/2.hea"], "wfdb"),  # the harness pairs every header with 2.dat
    "cardiosoft": ([], None),
    "npy": ([], None),
}


def _leads() -> np.ndarray:
    """12 leads x 0.4 s of a 1-Hz sine in mV, for the formats without a shared example."""
    return np.sin(2 * np.pi * np.arange(KEEP_SAMPLES) / 500)[None].repeat(12, 0) * np.arange(1, 13)[:, None] / 6


def _cardiosoft_seed() -> bytes:
    from cardiosynth.ecg.types import LEADS

    strips = "".join(f'<WaveformData lead="{lead}">' + ",".join(str(int(v)) for v in row / 0.005) + "</WaveformData>"
                     for lead, row in zip(LEADS, _leads()))
    return ('<?xml version="1.0" encoding="UTF-8"?><CardiologyXML><StripData><NumberOfLeads>12</NumberOfLeads>'
            '<SampleRate units="Hz">500</SampleRate><Resolution units="uVperLsb">5</Resolution>'
            f"{strips}</StripData></CardiologyXML>").encode()


def _edf_seed(bdf: bool = False, plus: bool = False, dimension: str = "mV") -> bytes:
    """12 leads x 0.4 s (``_leads``) as an EDF file written by hand (pyedflib writes only to disk): BDF's 24-bit
    samples, EDF+ with its annotation channel and equipment, or a unit the reader does not know, so that the
    harness starts from the reader's other paths too, not only from the shared (plain EDF) example."""
    width, digital_max = (3, 2**23 - 1) if bdf else (2, 2**15 - 1)
    leads = _leads()
    labels = list(_lead_names()) + (["EDF Annotations"] if plus else [])
    per_record = [KEEP_SAMPLES] * 12 + ([30] if plus else [])

    def field(value, size: int) -> bytes:
        return str(value).ljust(size)[:size].encode("ascii")

    recording = "Startdate 01-JAN-2024 X X Cardiograph-9" if plus else "Startdate X X X X"
    patient = "X X X X" if plus else "X"
    header = b"".join([b"\xffBIOSEMI" if bdf else field(0, 8), field(patient, 80), field(recording, 80),
                       field("01.01.24", 8), field("00.00.00", 8), field(256 * (len(labels) + 1), 8),
                       field("EDF+C" if plus else ("24BIT" if bdf else ""), 44), field(1, 8),
                       field(KEEP_SECONDS, 8), field(len(labels), 4)])
    columns = [[field(label, 16) for label in labels], [field("", 80)] * len(labels),
               [field(dimension, 8)] * 12 + ([field("", 8)] if plus else []),
               [field(-10, 8)] * len(labels), [field(10, 8)] * len(labels),
               [field(-digital_max - 1, 8)] * len(labels), [field(digital_max, 8)] * len(labels),
               [field("", 80)] * len(labels), [field(n, 8) for n in per_record], [field("", 32)] * len(labels)]
    header += b"".join(b"".join(column) for column in columns)
    digital = np.round(leads / 10 * digital_max).astype(np.int64)
    data = b"".join(int(v).to_bytes(width, "little", signed=True) for lead in digital for v in lead)
    if plus:
        data += b"+0\x14\x14\x00".ljust(30 * width, b"\x00")
    return header + data


def _lead_names() -> tuple[str, ...]:
    from cardiosynth.ecg.types import LEADS

    return LEADS


def _cardiosoft_variants() -> list[bytes]:
    """The CardioSoft seed as UK Biobank files vary: median beats beside the strip, the resolution in another
    unit or absent, lower-case lead names."""
    seed = _cardiosoft_seed().decode()
    median = ("<RestingECGMeasurements><MedianSamples><WaveformData lead=\"I\">1,2,3</WaveformData>"
              "</MedianSamples></RestingECGMeasurements>")
    return [s.encode() for s in (
        seed.replace("<StripData>", median + "<StripData>"),
        seed.replace('<Resolution units="uVperLsb">5</Resolution>', '<Resolution units="mVperLsb">0.005</Resolution>'),
        seed.replace('<Resolution units="uVperLsb">5</Resolution>', ""),
        re.sub(r'lead="(\w+)"', lambda m: f'lead="{m.group(1).lower()}"', seed),
    )]


def _npy_seed() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, _leads().astype("<f4"))
    return buffer.getvalue()


def seeds(target: str) -> list[bytes]:
    """The seed inputs of a target; ``read_ecg`` (the sniffing) gets every reader's seeds."""
    if target == "read_ecg":
        return [s for name in EXAMPLES for s in seeds(name)]
    if target == "standardise":
        return [b"\x00" * 64, bytes(range(256)) * 4]
    patterns, shorten = EXAMPLES[target]
    files: list[Path] = []
    for root in (SHARED_FORMATS, ASSETS):
        for pattern in patterns:
            files += sorted(p for p in root.glob(pattern) if p.is_file())
    out = [SHORTEN[shorten](p.read_bytes()) if shorten else p.read_bytes() for p in files]
    if target == "dicom":
        out += [short_dicom(p.read_bytes(), lean=True) for p in files]
    if target == "scp":  # the full record is kept too: short ones are ~50x faster, the full one is the original
        out += [seed for p in files for seed in short_scp(p.read_bytes())]
    if target == "philips":  # short ones only: a full file's 5,500 samples x 12 leads of LZW is ~40x slower
        out = [seed for p in files for seed in short_philips(p.read_bytes())]
    if target == "cardiosoft":
        out += [_cardiosoft_seed(), *_cardiosoft_variants()]
    if target == "edf":
        out += [_edf_seed(bdf=True), _edf_seed(plus=True), _edf_seed(dimension="counts")]
    if target == "npy":
        out.append(_npy_seed())
    return out
