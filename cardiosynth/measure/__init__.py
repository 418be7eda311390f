"""Instruments that judge generated cines: segmentation-based measurements, a phenotype estimator, realism
(the automated Turing test), anatomy checks, adherence / memorisation metrics and timing. The commands that
run them over a generator (the evaluator, the benchmarks) live in the top-level ``evaluation`` wing."""
