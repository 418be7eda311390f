"""DICOM waveforms whose channels are ECG leads, whatever the SOP class, read with ``pydicom``.

A hospital's archive holds ECGs under several storage classes: 12-lead, General and Ambulatory ECG, and
Hemodynamic Waveform Storage from cath-lab systems that record the leads beside pressures. What makes a
channel an ECG lead is its source code (SCP-ECG "5.6.3-9-N", MDC "2:N") or its meaning ("Lead I"), so
leads are found channel by channel; pressures and other channels are left out and named in the metadata.
Of several multiplex groups the rhythm is read, never the median beats: a median beat is one averaged
cycle, not a recording.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pydicom
from pydicom.waveforms.numpy_handler import WAVEFORM_DTYPES

from ..leads import standard_lead_name
from ..standardise import Recording
from ..types import EcgError
from ._common import SCP_LEAD_CODES, damaged, mv_per_unit

WAVEFORM_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "general ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "ambulatory ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.4": "general 32-bit ECG",
    "1.2.840.10008.5.1.4.1.1.9.2.1": "hemodynamic",
    "1.2.840.10008.5.1.4.1.1.9.3.1": "cardiac electrophysiology",
    "1.2.840.10008.5.1.4.1.1.9.5.1": "arterial pulse",
    "1.2.840.10008.5.1.4.1.1.9.6.1": "respiratory",
    "1.2.840.10008.5.1.4.1.1.9.6.2": "multi-channel respiratory",
    "1.2.840.10008.5.1.4.1.1.9.8.1": "body position",
}
# Lead code prefixes: SCP-ECG's coding scheme as DICOM writes it, and ISO/IEEE 11073 MDC's partition 2.
_LEAD_CODE_PREFIXES = ("5.6.3-9-", "2:")
_BEAT_GROUP = ("MEDIAN", "REPRESENTATIVE", "AVERAGE", "TEMPLATE")


def _value(ds, keyword: str, default=None):
    """One element's value, refusing a sequence where the standard has a single value: pydicom prints a
    sequence with every nested item, and a damaged file nested deep took a minute to print (fuzzer finding)."""
    element = ds.data_element(keyword) if keyword in ds else None
    if element is None or element.value is None:
        return default
    if element.VR == "SQ":
        raise EcgError(f"This DICOM file is damaged: its {keyword} holds a sequence instead of a value.")
    return element.value


def _text(ds, keyword: str) -> str:
    return str(_value(ds, keyword, "") or "")


def _sequence(ds, keyword: str) -> list:
    """The items of a sequence element ([] when absent); a value where a sequence belongs is refused."""
    element = ds.data_element(keyword) if keyword in ds else None
    if element is None or element.value is None:
        return []
    if element.VR != "SQ":
        raise EcgError(f"This DICOM file is damaged: its {keyword} is not a sequence.")
    return list(element.value)



def _channel_label(channel) -> str:
    """Lead name from the channel source code (SCP-ECG or MDC lead code first, then its meaning)."""
    sources = _sequence(channel, "ChannelSourceSequence")
    if not sources:
        return _text(channel, "ChannelLabel") or "unlabelled"
    source = sources[0]
    code = _text(source, "CodeValue")
    for prefix in _LEAD_CODE_PREFIXES:
        number = code[len(prefix):]
        if code.startswith(prefix) and number.isdigit() and int(number) in SCP_LEAD_CODES:
            return SCP_LEAD_CODES[int(number)]
    return _text(source, "CodeMeaning") or _text(channel, "ChannelLabel") or code or "unlabelled"


def _units(channel) -> str | None:
    seq = _sequence(channel, "ChannelSensitivityUnitsSequence")
    return _text(seq[0], "CodeValue") if seq else None


def _is_beat_group(group) -> bool:
    return _text(group, "MultiplexGroupLabel").strip().upper().startswith(_BEAT_GROUP)


def _choose_group(groups: list, leads_per_group: list[int]) -> int:
    """The rhythm group: most ECG leads, rhythm before median beats, then the longest recording."""
    def rank(k: int):
        group = groups[k]
        fs = float(_value(group, "SamplingFrequency", 0) or 0)
        duration = int(_value(group, "NumberOfWaveformSamples", 0) or 0) / fs if fs > 0 else 0.0
        return leads_per_group[k], not _is_beat_group(group), duration
    return max(range(len(groups)), key=rank)


def _samples(group, keep: list[int]) -> np.ndarray:
    """(channels, samples) of the kept channels, with sensitivity, its correction factor and baseline applied.

    Decoded here rather than by ``pydicom.Dataset.waveform_array`` so that every group is checked before
    any array is made: a declared size the data does not hold is an error, not a reshape deep in a library.
    """
    n_channels = int(_value(group, "NumberOfWaveformChannels", 0))
    n_samples = int(_value(group, "NumberOfWaveformSamples", 0))
    key = (int(_value(group, "WaveformBitsAllocated", 0)), _text(group, "WaveformSampleInterpretation"))
    if key not in WAVEFORM_DTYPES:
        raise EcgError(f"This DICOM waveform uses {key[0]}-bit '{key[1]}' samples, which are not supported.")
    dtype = np.dtype(WAVEFORM_DTYPES[key])
    data = bytes(_value(group, "WaveformData", b""))
    if n_channels < 1 or n_samples < 1 or len(data) < n_channels * n_samples * dtype.itemsize:
        raise EcgError(f"This DICOM waveform declares {n_channels} channels x {n_samples} samples, but holds "
                       f"only {len(data)} bytes of data; the file is truncated or damaged.")
    raw = np.frombuffer(data, dtype=dtype, count=n_channels * n_samples).reshape(n_samples, n_channels)
    channels = _sequence(group, "ChannelDefinitionSequence")
    out = np.empty((len(keep), n_samples), dtype=np.float64)
    for row, k in enumerate(keep):
        ch = channels[k]
        sensitivity = float(_value(ch, "ChannelSensitivity", 1.0) or 1.0)
        correction = float(_value(ch, "ChannelSensitivityCorrectionFactor", 1.0) or 1.0)
        baseline = float(_value(ch, "ChannelBaseline", 0.0) or 0.0)
        out[row] = raw[:, k] * (sensitivity * correction) + baseline
    return out


LONG_LENGTH_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())  # explicit VR with a 4-byte length


def check_file_meta(content: bytes) -> None:
    """Refuse a File Meta Information group (0002,xxxx) that holds a sequence or an undefined length, or whose
    Group Length (0002,0000) is not a 4-byte number, wherever in the group it stands: pydicom formats the Group
    Length's value into a log message whether or not it logs, and a sequence there took seconds to minutes to
    format (fuzzer findings). A valid file meta group never has either."""
    if content[128:132] != b"DICM":
        return  # no preamble: pydicom refuses the file itself
    position = 132
    while position + 8 <= len(content):
        group, element = struct.unpack_from("<HH", content, position)
        if group != 0x0002:
            return
        vr = content[position + 4:position + 6]
        explicit = vr.isalpha() and vr.isupper()
        if explicit and vr in LONG_LENGTH_VRS:
            if position + 12 > len(content):
                return  # cut off inside the element: pydicom refuses the file itself
            header, length = 12, struct.unpack_from("<I", content, position + 8)[0]
        elif explicit:
            header, length = 8, struct.unpack_from("<H", content, position + 6)[0]
        else:  # implicit VR: a 4-byte length after the tag
            header, length, vr = 8, struct.unpack_from("<I", content, position + 4)[0], b"UL"
        if vr == b"SQ" or length == 0xFFFFFFFF or (element == 0 and (vr != b"UL" or length != 4)):
            raise EcgError(f"This DICOM file's header is damaged: its File Meta Information element "
                           f"(0002,{element:04X}) is declared as {vr.decode(errors='replace')} of {length} bytes, "
                           "which a DICOM header never holds.")
        position += header + length


def read_dicom(content: bytes) -> Recording:
    """Read the ECG leads of the rhythm group of any DICOM waveform object."""
    check_file_meta(content)
    with damaged("DICOM"):
        ds = pydicom.dcmread(io.BytesIO(content))
        sop = _text(ds, "SOPClassUID")
        kind = WAVEFORM_SOP_CLASSES.get(sop, "waveform")
        groups = _sequence(ds, "WaveformSequence")
        if not groups:
            modality = _text(ds, "Modality") or "non-waveform"
            raise EcgError(
                f"This DICOM file does not contain an ECG waveform (it is a {modality} object); "
                "please export the ECG as 'ECG Waveform Storage'."
            )
        labels_of = [[_channel_label(ch) for ch in _sequence(g, "ChannelDefinitionSequence")] for g in groups]
        leads_of = [[k for k, label in enumerate(labels) if standard_lead_name(label)] for labels in labels_of]
        if not any(leads_of):
            found = sorted({label for labels in labels_of for label in labels})
            raise EcgError(
                f"This DICOM {kind} waveform has no ECG lead channels (its channels are: "
                f"{', '.join(found[:12]) or 'none'}); an ECG needs channels such as Lead I, Lead II, V1-V6."
            )
        index = _choose_group(groups, [len(k) for k in leads_of])
        group, keep = groups[index], leads_of[index]
        channels = _sequence(group, "ChannelDefinitionSequence")
        fs = float(_value(group, "SamplingFrequency", 0) or 0)
        if not np.isfinite(fs) or fs <= 0:
            raise EcgError(f"This DICOM waveform states a sampling frequency of {fs:g} Hz.")
        samples = _samples(group, keep)
        units = [_units(channels[k]) for k in keep]
        labels = [labels_of[index][k] for k in keep]
        left_out = [label for k, label in enumerate(labels_of[index]) if k not in keep]
        # inside the guard too: pydicom decodes an element when it is first read, and a damaged one raises
        manufacturer = _text(ds, "Manufacturer").strip()
        model = _text(ds, "ManufacturerModelName").strip()
    factors = [mv_per_unit(u) for u in units]
    calibrated = all(f is not None for f in factors)
    scale = np.array([f if f is not None else 1.0 for f in factors])
    return Recording(
        labels=labels,
        signal=samples * scale[:, None],
        fs=fs,
        source_format="dicom",
        calibrated=calibrated,
        metadata={
            "dicom_sop_class": kind,
            "waveform_group": _text(group, "MultiplexGroupLabel") or str(index),
            "units_in_file": units,
            **({"channels_left_out": left_out} if left_out else {}),
            **({"device": f"{manufacturer} {model}".strip()} if manufacturer or model else {}),
        },
    )
