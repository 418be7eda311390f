"""ECG ingestion: read any common 12-lead format into one :class:`Ecg`, process it with neurokit2
(R-peaks, heart rate, quality, QT, cardiac phase, one clean cycle) and plot it.

>>> from cardiosynth.ecg import read_ecg, process_ecg, plot_ecg
>>> ecg = read_ecg("record.xml")          # 12 x 5000, 500 Hz, mV, leads by name
>>> result = process_ecg(ecg)             # never raises for odd rhythms: see result.warnings
>>> fig = plot_ecg(ecg, result)           # plotly figure, usable in Gradio (gr.Plot)
"""

from .types import DURATION_S, FS, LEADS, N_SAMPLES, Ecg, EcgError  # noqa: I001 - types first
from .readers import DEFAULT_MAX_BYTES, SUPPORTED_FORMATS, read_ecg
from .process import EcgAnalysis, process_ecg
from .plot import plot_ecg

__all__ = ["Ecg", "EcgError", "EcgAnalysis", "LEADS", "FS", "DURATION_S", "N_SAMPLES", "DEFAULT_MAX_BYTES",
           "SUPPORTED_FORMATS", "read_ecg", "process_ecg", "plot_ecg"]
