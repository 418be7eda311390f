"""GE CardioSoft XML (``<CardiologyXML>``), the format of UK Biobank resting ECGs (field 20205).

No library reads it, so this is a small parser: ``StripData`` holds ``SampleRate``, ``Resolution``
(uV per LSB) and one comma-separated ``WaveformData lead="..."`` per lead; the median beats under
``RestingECGMeasurements/MedianSamples`` are ignored. There is no public sample file, so this follows the
published structure and is tested on files the tests write.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

import numpy as np

from ..standardise import Recording
from ..types import EcgError
from ._common import child, damaged, find_first, local, mv_per_unit


def read_cardiosoft(root: Element) -> Recording:
    strip = find_first(root, "StripData")
    if strip is None:
        raise EcgError("This CardioSoft XML file has no 10-second rhythm strip (StripData); "
                       "exercise-test exports are not supported.")
    with damaged("CardioSoft XML"):
        rate = child(strip, "SampleRate")
        fs = float(rate.text) if rate is not None and rate.text else None
        resolution = child(strip, "Resolution")
        per_lsb = float(resolution.text) if resolution is not None and resolution.text else 1.0
        unit = (resolution.get("units") if resolution is not None else None) or "uVperLsb"
        factor = mv_per_unit(unit)
        labels, leads = [], []
        for el in strip:
            if local(el.tag) == "WaveformData":
                labels.append(el.get("lead", "?"))
                leads.append(np.array([v for v in (el.text or "").replace(",", " ").split()], dtype=np.float64))
    if not leads:
        raise EcgError("The rhythm strip in this CardioSoft XML file contains no leads.")
    if len({len(x) for x in leads}) > 1:
        raise EcgError("The leads in this CardioSoft XML file have different lengths; the file may be damaged.")
    return Recording(
        labels=labels,
        signal=np.stack(leads) * per_lsb * (factor if factor is not None else 1.0),
        fs=fs,
        source_format="cardiosoft_xml",
        calibrated=factor is not None,
    )
