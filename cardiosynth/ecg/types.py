"""The one ECG type every reader returns and every consumer accepts, and the one error for bad input.

Readers differ wildly (lead order, units, rates, lengths); after reading, everything downstream sees the
same thing: 12 standard leads in a fixed order, 500 Hz, 10 s, millivolts (or flagged as uncalibrated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Standard 12-lead order used everywhere in CardioSynth.
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
#: Sampling rate and length every ECG is brought to (what the ECG model expects: 12 x 5000).
FS: int = 500
DURATION_S: float = 10.0
N_SAMPLES: int = int(FS * DURATION_S)


class EcgError(ValueError):
    """Any input that cannot be turned into a usable 12-lead ECG.

    The message is written for the person who uploaded the file (a clinician), not for a programmer:
    it says what is wrong with the recording and, where possible, what to do instead.
    """


@dataclass
class Ecg:
    """A standardised 12-lead ECG.

    ``signal`` is float32 (12, 5000): leads in :data:`LEADS` order, 500 Hz, 10 s. Amplitudes are in mV when
    ``calibrated`` is True; otherwise (e.g. LUDB, whose leads are normalised to 1 "mV" peak to peak) only the
    shape is meaningful, so models normalise each lead at their input. ``valid_samples`` is the number of
    real samples at the start; the rest (if any) is padding. ``metadata`` holds what happened to the
    recording (original rate, length, leads, derived leads, crop/pad choice, device) and never patient data.
    """

    signal: np.ndarray
    fs: int = FS
    leads: tuple[str, ...] = LEADS
    source_format: str = "unknown"
    calibrated: bool = True
    valid_samples: int = N_SAMPLES
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.signal.shape[1] / self.fs

    @property
    def units(self) -> str:
        return "mV" if self.calibrated else "a.u."

    def lead(self, name: str) -> np.ndarray:
        """One lead by its standard name (case-insensitive), e.g. ``ecg.lead("ii")``."""
        lookup = {n.lower(): i for i, n in enumerate(self.leads)}
        if name.lower() not in lookup:
            raise KeyError(f"no lead {name!r}; leads are {', '.join(self.leads)}")
        return self.signal[lookup[name.lower()]]
