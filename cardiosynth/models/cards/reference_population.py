"""Card of the phenotype explorer's reference population (``weights/phenotype_vae/reference_population.csv``):
its version, source, sha256 (checked on load, :func:`cardiosynth.weights.checked_reference_population`) and
licence."""

from __future__ import annotations

from cardiosynth import phenotypes as ph
from cardiosynth.data.splits import SPLIT_FILE
from cardiosynth.weights import REFERENCE_POPULATION


def model_card(n_patients: int, sha256: str, version: int) -> str:
    return f"""# Reference population of the phenotype explorer (version {version})

`{REFERENCE_POPULATION.name}`: the nine phenotypes ({", ".join(ph.NAMES)}) of the {n_patients} real ACDC
training patients, one row per patient (the `patient` column is ACDC's identifier), in `phenotypes.csv` order.
The app draws them as tick marks under the population plot, beside the phenotype VAE's samples; it reads this
table and needs no training data at start-up.

- **Version.** {version}; sha256 of the CSV `{sha256}`.
- **Source.** ACDC (Bernard et al., IEEE TMI 2018) `phenotypes.csv` (ground-truth volumes and mass from the
  expert masks), restricted to the training patients of the committed split (`cardiosynth/data/{SPLIT_FILE.name}`):
  the patients the phenotype VAE was fitted on.
- **Command.** `python -m training.export_reference_population`
- **Licence.** CC BY-NC-SA 4.0, inherited from ACDC (research, non-commercial use; cite the ACDC paper).
"""
