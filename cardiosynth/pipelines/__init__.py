"""End-to-end generators built from the trained models: phenotypes -> cine (CPGG), and the phenotype prior
(stage 1: sample, complete and score phenotype sets)."""

from cardiosynth.pipelines.phenotype_prior import PhenotypePrior
from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine, PhenotypeToCineOutput

__all__ = ["PhenotypePrior", "PhenotypeToCine", "PhenotypeToCineOutput"]
