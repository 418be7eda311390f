"""Coverage-guided fuzzing (atheris / libFuzzer) of every ECG reader: ``python -m fuzz TARGET``.

Above the library on purpose: nothing in ``cardiosynth`` imports it. ``python -m fuzz.campaign`` runs every
harness for a fixed number of inputs and writes the counts to ``reports/ecg_fuzz.json``.
"""
