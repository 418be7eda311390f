"""Instruments that judge generated cines: segmentation-based measurements, a phenotype estimator,
realism / adherence / memorisation metrics, an evaluator for any generator and a benchmark harness."""
