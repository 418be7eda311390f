"""What each fuzz harness feeds its bytes to.

One target per reader, called directly so that mutated bytes reach its parser without first having to pass
the format sniffing; ``standardise``, fed a :class:`Recording` built from the bytes (any labels, rate, shape
and values a reader could return); and ``read_ecg``, the whole path from bytes (sniffing, dispatch, reader,
standardisation). The contract every target checks: any input ends in a result (a ``Recording`` or an
``Ecg``) or one :class:`EcgError`; anything else (another exception, a hang, runaway memory) is a finding.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from fuzz.seeds import ASSETS, EXAMPLES, KEEP_SAMPLES

TARGETS = ("read_ecg", "standardise", *EXAMPLES)
_LABELS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "Lead II", "MDC_ECG_LEAD_V1",
           "C3", "DIII", "avf", "Pressure", "", "I", "v6 (mV)"]


def with_scp_checksums(data: bytes) -> bytes:
    """The input with its SCP-ECG record and section CRCs recomputed: a mutated byte would otherwise fail the
    CRC check and never reach the parser behind it (the check itself is covered by the unit tests)."""
    import binascii
    import struct

    if len(data) < 22:
        return data
    out = bytearray(data)
    pointers_length = struct.unpack_from("<I", out, 10)[0]
    for at in range(22, min(6 + pointers_length, len(out)) - 9, 10):
        _, length, index = struct.unpack_from("<HII", out, at)
        start = index - 1
        if 6 <= start and 16 <= length and start + length <= len(out):
            struct.pack_into("<H", out, start, binascii.crc_hqx(bytes(out[start + 2:start + length]), 0xFFFF))
    if 6 + pointers_length <= len(out) and pointers_length >= 16:  # section 0 last: it covers the pointers
        struct.pack_into("<H", out, 6, binascii.crc_hqx(bytes(out[8:6 + pointers_length]), 0xFFFF))
    length = min(struct.unpack_from("<I", out, 2)[0], len(out))
    struct.pack_into("<H", out, 0, binascii.crc_hqx(bytes(out[2:length]), 0xFFFF))
    return bytes(out)


def recording_from_bytes(data: bytes):
    """A reader's possible output, drawn from the fuzzer's bytes: rate, labels, shape, values, calibration."""
    import atheris
    import numpy as np

    from cardiosynth.ecg.standardise import Recording

    fdp = atheris.FuzzedDataProvider(data)
    fs = fdp.PickValueInList([500.0, 1000.0, 250.0, 128.0, fdp.ConsumeRegularFloat(), fdp.ConsumeFloat(), None])
    n_leads = fdp.ConsumeIntInRange(0, 16)
    labels = [fdp.PickValueInList(_LABELS) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(8)
              for _ in range(n_leads)]
    n_samples = fdp.ConsumeIntInRange(0, 12_000)
    raw = fdp.ConsumeBytes(8 * n_leads * 64)
    values = np.frombuffer(raw[: len(raw) // 8 * 8], dtype=np.float64)
    if fdp.ConsumeBool() and values.size:  # raw doubles: NaN, inf, 1e308 included
        signal = np.resize(values, (n_leads, n_samples))
    else:  # plausible mV with a given scale
        rng = np.random.default_rng(fdp.ConsumeIntInRange(0, 2**32 - 1))
        signal = rng.normal(0, fdp.PickValueInList([0.5, 1e-3, 1e3]), (n_leads, n_samples))
    return Recording(labels=labels, signal=signal, fs=fs, source_format="fuzz", calibrated=fdp.ConsumeBool())


def make_target(name: str) -> Callable[[bytes], object]:
    """The function a harness calls with each input; imported lazily so that atheris can instrument it."""
    from cardiosynth.ecg import read_ecg
    from cardiosynth.ecg.readers import read_recording
    from cardiosynth.ecg.readers import _common, cardiosoft, dicom, edf, hl7, muse, philips, physionet, table
    from cardiosynth.ecg.standardise import standardise

    def xml(reader):
        return lambda data: reader(_common.parse_xml(data))

    if name == "read_ecg":
        return lambda data: read_ecg(data)
    if name == "standardise":
        return lambda data: standardise(recording_from_bytes(data))
    if name == "dicom":
        return dicom.read_dicom
    if name == "edf":
        return lambda data: edf.read_edf(content=data)
    if name == "scp":
        from cardiosynth.ecg.readers import scp

        return lambda data: scp.read_scp(with_scp_checksums(data))
    if name == "philips":
        return lambda data: philips.read_philips(data, _common.parse_xml(data))
    if name in ("muse", "hl7", "cardiosoft"):
        return xml({"muse": muse.read_muse, "hl7": hl7.read_hl7, "cardiosoft": cardiosoft.read_cardiosoft}[name])
    if name == "csv":
        return lambda data: table.read_csv(data, fs=500.0)
    if name == "npy":
        return lambda data: read_recording(b"\x93NUMPY" + data[6:], fs=500.0)
    if name == "wfdb":
        signal = (ASSETS / "ludb" / "2.dat").read_bytes()[: KEEP_SAMPLES * 12 * 2]  # 12 leads, 16-bit
        folder = Path(tempfile.mkdtemp(prefix="cardiosynth-fuzz-wfdb-"))
        (folder / "2.dat").write_bytes(signal)

        def wfdb_header(data: bytes):
            (folder / "2.hea").write_bytes(data)
            return physionet.read_wfdb(folder / "2.hea")
        return wfdb_header
    raise ValueError(f"unknown fuzz target {name!r}; choose one of {', '.join(TARGETS)}")
