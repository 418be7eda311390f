"""Philips Sierra / PhilipsECG XML (v1.03, v1.04), decoded with the ``sierraecg`` package.

The waveforms are XLI-compressed and the limb leads are stored as residuals; sierraecg undoes both. It does
not return the amplitude resolution, so we read that from the XML ourselves.
"""

from __future__ import annotations

import io
from xml.etree.ElementTree import Element

import numpy as np
import sierraecg

from ..standardise import Recording
from ..types import EcgError
from ._common import child_text, damaged, find_first

DEFAULT_UV_PER_LSB = 5.0


def _resolution_uv(root: Element) -> float:
    """Amplitude resolution in uV per LSB (``signalresolution`` in v1.03, ``resolution`` in v1.04)."""
    signal = find_first(root, "signalcharacteristics")
    for name in ("signalresolution", "resolution"):
        text = child_text(signal, name) if signal is not None else None
        if text:
            try:
                return float(text)
            except ValueError:
                break
    return DEFAULT_UV_PER_LSB


def read_philips(content: bytes, root: Element) -> Recording:
    with damaged("Philips XML"):
        try:
            parsed = sierraecg.read_file(io.BytesIO(content))
        except sierraecg.UnsupportedXmlFileError as err:
            raise EcgError(f"This Philips ECG XML version is not supported ({err}).") from None
        leads = [lead for lead in parsed.leads if len(lead.samples)]
        if not leads:
            raise EcgError("This Philips ECG XML contains no waveform samples.")
        lengths = {len(lead.samples) for lead in leads}
        if len(lengths) > 1:
            raise EcgError("The leads in this Philips ECG XML have different lengths; the file may be damaged.")
        signal = np.stack([np.asarray(lead.samples, dtype=np.float64) for lead in leads])
        fs = float(leads[0].sampling_freq)
    uv = _resolution_uv(root)
    return Recording(
        labels=[lead.label for lead in leads],
        signal=signal * uv * 1e-3,
        fs=fs,
        source_format="philips_xml",
        metadata={"document": f"{parsed.doc_type} {parsed.doc_ver}", "uv_per_lsb": uv},
    )
