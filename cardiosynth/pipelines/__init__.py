"""End-to-end generators built from the trained models: phenotypes -> cine (CPGG)."""

from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine, PhenotypeToCineOutput

__all__ = ["PhenotypeToCine", "PhenotypeToCineOutput"]
