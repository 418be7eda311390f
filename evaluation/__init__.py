"""The evaluation wing: every benchmark, evaluator, load test, study and figure command, above the library.

Nothing in ``cardiosynth`` imports from here (``.importlinter`` checks it, in the test suite); these commands
import the library, and print JSON or write reports under ``reports/``.

    python -m evaluation.evaluate              automated Turing test, anatomy checks, control, memorisation
    python -m evaluation.bench                 seconds per cine of a generator (or the measurer), JSON
    python -m evaluation.ecg_bench             ECG parse + process time per file, JSON
    python -m evaluation.ecg_evaluate          R peaks and QT against LUDB's annotations
    python -m evaluation.ecg_timing            ECG -> cine: does end-systole follow the ECG's QT/RR?
    python -m evaluation.edit_control          editing a real heart's LVEF: how far the reading moves
    python -m evaluation.pretraining           does synthetic data help a downstream classifier?
    python -m evaluation.app_bench             the app's start-up and click-to-result latency
    python -m evaluation.review_app_load       many readers at once through the running app
    python -m evaluation.review_store_load     the reader study's store under load and SIGKILL
    python -m evaluation.showcase              the README's picture: cines across LVEDV and LVEF
    python -m evaluation.motion_report         anatomy + motion round trip of held-out cines; the motion card's section
    python -m evaluation.vae3d_report          the 3D-VAE's reconstruction sheet and reports/vae3d/metrics.json
    python -m evaluation.output_fingerprints   sha256 of the pipelines' outputs on fixed requests (refactors)
"""
