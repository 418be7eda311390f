"""DICOM ECG waveforms (12-lead, general and ambulatory ECG Waveform Storage), read with ``pydicom``."""

from __future__ import annotations

import io

import numpy as np
import pydicom

from ..standardise import Recording
from ..types import EcgError
from ._common import SCP_LEAD_CODES, damaged, mv_per_unit

ECG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "general ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "ambulatory ECG",
}


def _channel_label(channel) -> str:
    """Lead name from the channel source code (SCP-ECG code "5.6.3-9-N" first, then its meaning)."""
    source = channel.ChannelSourceSequence[0]
    code = str(getattr(source, "CodeValue", ""))
    if code.startswith("5.6.3-9-"):
        try:
            return SCP_LEAD_CODES.get(int(code.rsplit("-", 1)[1]), str(source.CodeMeaning))
        except ValueError:
            pass
    return str(getattr(source, "CodeMeaning", code))


def _units(channel) -> str | None:
    seq = getattr(channel, "ChannelSensitivityUnitsSequence", None)
    return str(seq[0].CodeValue) if seq else None


def read_dicom(content: bytes) -> Recording:
    """Read the rhythm (longest) waveform group of a DICOM ECG; median beats are ignored."""
    with damaged("DICOM"):
        ds = pydicom.dcmread(io.BytesIO(content))
        sop = str(getattr(ds, "SOPClassUID", ""))
        if sop not in ECG_SOP_CLASSES or "WaveformSequence" not in ds:
            kind = getattr(ds, "Modality", "") or "non-waveform"
            raise EcgError(
                f"This DICOM file does not contain an ECG waveform (it is a {kind} object); "
                "please export the ECG as 'ECG Waveform Storage'."
            )
        groups = list(ds.WaveformSequence)
        labels_of = [str(getattr(g, "MultiplexGroupLabel", "")).upper() for g in groups]
        durations = [g.NumberOfWaveformSamples / float(g.SamplingFrequency) for g in groups]
        index = labels_of.index("RHYTHM") if "RHYTHM" in labels_of else int(np.argmax(durations))
        group = groups[index]
        samples = ds.waveform_array(index).T  # applies sensitivity, correction factor and baseline
        channels = list(group.ChannelDefinitionSequence)
        labels = [_channel_label(ch) for ch in channels]
        units = [_units(ch) for ch in channels]
        fs = float(group.SamplingFrequency)
    factors = [mv_per_unit(u) for u in units]
    calibrated = all(f is not None for f in factors)
    scale = np.array([f if f is not None else 1.0 for f in factors])
    manufacturer = str(getattr(ds, "Manufacturer", "")).strip()
    model = str(getattr(ds, "ManufacturerModelName", "")).strip()
    return Recording(
        labels=labels,
        signal=samples * scale[:, None],
        fs=fs,
        source_format="dicom",
        calibrated=calibrated,
        metadata={
            "dicom_sop_class": ECG_SOP_CLASSES[sop],
            "waveform_group": labels_of[index] or str(index),
            "units_in_file": units,
            **({"device": f"{manufacturer} {model}".strip()} if manufacturer or model else {}),
        },
    )
