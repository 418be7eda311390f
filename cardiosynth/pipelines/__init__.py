"""End-to-end generators built from the trained models: phenotypes -> cine (CPGG), ECG -> cine, and the phenotype
prior (stage 1: sample, complete and score phenotype sets).

``EcgToCine`` and ``EcgToCineOutput`` load on first use (the ECG readers and models add about a second to an
import that the phenotype path does not need)."""

from cardiosynth.phenotype_prior import PhenotypePrior
from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine, PhenotypeToCineOutput

__all__ = ["EcgToCine", "EcgToCineOutput", "PhenotypePrior", "PhenotypeToCine", "PhenotypeToCineOutput"]
_LAZY = {"EcgToCine": "cardiosynth.pipelines.ecg_to_cine", "EcgToCineOutput": "cardiosynth.pipelines.ecg_to_cine"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
