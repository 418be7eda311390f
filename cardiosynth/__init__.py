"""CardioSynth: synthetic cine cardiac MRI under phenotype and ECG control.

Layout follows the data flow: ``data`` (read, prepare) -> ``models`` -> ``pipelines`` -> ``app.py``,
with ``ecg`` (ECG ingestion) and ``measure`` (judging outputs) beside them.
"""

__version__ = "0.1.0"
