"""The anatomy bank: real training slices, as the renderer needs them, in one weights folder.

Each exemplar is one training slice cine reduced to what rendering reads: its real end-diastolic frame (uint8),
the valid mask of its field of view, its expert ED and ES masks, its patient's phenotypes, its slice position,
its end-systolic frame index and its registered motion (the full control grids of its registration to its own
ED frame, float16). ``python -m training.build_anatomy_bank`` builds it from any prepared dataset (ACDC here; a
UK Biobank extract prepared the same way builds its own). Saved like every weight: ``model.safetensors`` +
``config.json`` (sha256 checked on load) + a card that carries the data's licence, because every synthetic cine
rendered from the bank is made of one exemplar's pixels.

    bank = AnatomyBank.from_pretrained()                # weights/anatomy_bank
    i = bank.choose({"LVEDV": 160, "LVM": 120, "RVEDV": 150, "LVEF": 55}, 0.5, generator)
    bank.exemplar_id(i)                                 # "patient002/slice3": provenance of the cine
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch
from torch import nn

from cardiosynth import phenotypes as ph
from cardiosynth.weights import Pretrained, config_from_dict, read_config, resolve

DATA_LICENCE = """## Licence
Made of ACDC images, which are licensed CC BY-NC-SA 4.0: this bank, and every synthetic cine rendered from it,
carries the same licence (research, non-commercial, share-alike). Cite Bernard et al., IEEE TMI
37(11):2514-2525, 2018 (doi:10.1109/TMI.2018.2837502).
"""


class EmptyBankError(ValueError):
    """An anatomy bank with no exemplar cannot render anything."""


@dataclass(frozen=True)
class ExemplarChoice:
    """How an exemplar is chosen for a request: among the ``neighbours`` nearest by the standardised
    ``features`` and slice position (a position difference of ``position_sd`` counts as one SD), uniformly,
    from the request's seed. Chosen on val (reports/renderer/README.md)."""

    features: tuple[str, ...] = ("LVEDV", "LVM", "RVEDV", "LVEF")
    weights: tuple[float, ...] = (1.0, 1.0, 1.0, 2.0)  # LVEF counts double: scaling an exemplar's motion far tears it
    position_sd: float = 0.1
    neighbours: int = 5


@dataclass(frozen=True)
class AnatomyBankConfig:
    """The bank's shape and where it came from; the exemplars themselves are buffers."""

    name: str = "default"
    exemplars: int = 0
    frames: int = 16
    size: int = 64
    grid: int = 16
    spacing_mm: float = 2.2
    data_config: str = "default"
    phenotypes: tuple[str, ...] = ph.NAMES
    choice: ExemplarChoice = field(default_factory=ExemplarChoice)

    @classmethod
    def from_dict(cls, values: dict) -> "AnatomyBankConfig":
        return config_from_dict(cls, values)


class AnatomyBank(nn.Module, Pretrained):
    """Real exemplars (buffers) and their ids (``config.json``'s ``extra``)."""

    config_class = AnatomyBankConfig
    default_weights = "anatomy_bank"

    def __init__(self, config: AnatomyBankConfig = AnatomyBankConfig()):
        super().__init__()
        self.config = config
        n, t, s, g = config.exemplars, config.frames, config.size, config.grid
        self.register_buffer("ed", torch.zeros(n, s, s, dtype=torch.uint8))
        self.register_buffer("valid", torch.zeros(n, s, s, dtype=torch.uint8))
        self.register_buffer("ed_mask", torch.zeros(n, s, s, dtype=torch.uint8))
        self.register_buffer("es_mask", torch.zeros(n, s, s, dtype=torch.uint8))
        self.register_buffer("es_frame", torch.zeros(n, dtype=torch.int64))
        self.register_buffer("slice_position", torch.zeros(n))
        self.register_buffer("phenotypes", torch.zeros(n, len(config.phenotypes)))
        self.register_buffer("control", torch.zeros(n, t, 2, g, g))
        self.ids: list[str] = []
        self.metrics: dict = {}

    @classmethod
    def from_pretrained(cls, folder_or_name=None, **options) -> "AnatomyBank":
        bank = super().from_pretrained(folder_or_name, **options)
        bank.ids = list(bank.metrics.get("exemplar_ids", []))
        if len(bank.ids) != bank.config.exemplars:
            raise ValueError(f"the anatomy bank lists {len(bank.ids)} exemplar ids for {bank.config.exemplars} exemplars")
        bank.folder = resolve(cls.default_weights if folder_or_name is None else folder_or_name)
        bank.licence = read_config(bank.folder).get("extra", {}).get("licence", "")
        return bank

    def _check_loaded(self, folder_or_name, **options):
        super()._check_loaded(folder_or_name, **options)
        if self.config.exemplars == 0:
            raise EmptyBankError(f"the anatomy bank at {folder_or_name} holds no exemplar; rebuild it with "
                                 "python -m training.build_anatomy_bank")
        return self

    @classmethod
    def from_arrays(cls, config: AnatomyBankConfig, ids: list[str], **arrays) -> "AnatomyBank":
        """A bank from numpy arrays named like the buffers (what the build command makes)."""
        if config.exemplars == 0 or not ids:
            raise EmptyBankError("an anatomy bank needs at least one exemplar (no training slice was given)")
        bank = cls(config)
        for name, value in arrays.items():
            buffer = getattr(bank, name)
            tensor = torch.as_tensor(np.asarray(value)).to(buffer.dtype)
            if tuple(tensor.shape) != tuple(buffer.shape):
                raise ValueError(f"{name} is {tuple(tensor.shape)}; the bank expects {tuple(buffer.shape)}")
            buffer.copy_(tensor)
        bank.ids = list(ids)
        return bank

    def save(self, folder, summary: dict) -> None:
        """Weights folder: the buffers (control grids as float16: 5 MB instead of 10), config, ids and card."""
        state = {k: (v.half() if k == "control" else v) for k, v in self.state_dict().items()}
        extra = {**summary, "exemplar_ids": self.ids, "licence": DATA_LICENCE}
        self.save_pretrained(folder, self.model_card(summary), extra=extra, state=state)

    def model_card(self, summary: dict) -> str:
        c = self.config
        groups = ", ".join(f"{k} {v}" for k, v in sorted(summary.get("groups", {}).items()))
        return f"""# Anatomy bank ({c.name})

Real exemplars for the renderer (`cardiosynth.render`): {c.exemplars} {summary.get("split", "train")}-split slice
cines of {summary.get("patients", "?")} patients ({groups}), {c.frames} frames x {c.size} x {c.size} px at
{c.spacing_mm} mm. Per exemplar: the real end-diastolic frame (uint8), its field-of-view mask, its expert ED and
ES masks, its patient's phenotypes ({", ".join(c.phenotypes)}), its slice position, its ES frame and the
control grids of its registration to its own ED frame ({c.grid} x {c.grid}, float16).

Built by `{summary.get("command", "python -m training.build_anatomy_bank")}` in {summary.get("minutes", "?")} min.

## What a synthetic cine shares with its exemplar
Every default-path synthetic cine is **one exemplar's real ED frame, deformed and moved**: its pixels (texture,
noise, surrounding anatomy, field of view) are that patient's, displaced by a smooth anatomical deformation
(toward the requested volumes and mass, plus a small random deformation) and by motion (the exemplar's own,
scaled, or one a generator drew). Each cine's metadata names the bank and the exemplar (`source`,
`metadata["exemplar"]`). Such a cine is derived from a training patient's image, not anonymous by construction:
the re-identification test (`python -m evaluation.reidentification`) reports how often one is matched to its
training patient, and the pipelines offer a filter that redraws those.

{DATA_LICENCE}"""

    def __len__(self) -> int:
        return self.config.exemplars

    def exemplar_id(self, index: int) -> str:
        return self.ids[int(index)]

    def phenotype(self, index: int, name: str) -> float:
        return float(self.phenotypes[int(index), self.config.phenotypes.index(name)])

    def ed_frame(self, index: int) -> np.ndarray:
        return self.ed[int(index)].numpy().astype(np.float32) / 255.0

    def valid_mask(self, index: int) -> np.ndarray:
        return self.valid[int(index)].numpy().astype(bool)

    def distances(self, request: Mapping[str, float], slice_position: float,
                  exclude_subjects: tuple[str, ...] = ()) -> np.ndarray:
        """Standardised distance of every exemplar to a request (inf for excluded subjects)."""
        choice = self.config.choice
        used = [k for k, n in enumerate(choice.features) if n in request]
        columns = [self.config.phenotypes.index(choice.features[k]) for k in used]
        values = self.phenotypes[:, columns].double().numpy()
        wanted = np.array([float(request[choice.features[k]]) for k in used])
        weights = np.array([choice.weights[k] for k in used])
        spread = values.std(0) + 1e-6
        squared = (weights * ((values - wanted) / spread) ** 2).sum(1)
        squared += ((self.slice_position.double().numpy() - float(slice_position)) / choice.position_sd) ** 2
        if exclude_subjects:
            squared[[i.split("/")[0] in exclude_subjects for i in self.ids]] = np.inf
        return np.sqrt(squared)

    def choose(self, request: Mapping[str, float], slice_position: float, generator: torch.Generator,
               exclude_subjects: tuple[str, ...] = ()) -> int:
        """An exemplar drawn uniformly (from ``generator``) among the ``neighbours`` nearest to the request."""
        distance = self.distances(request, slice_position, exclude_subjects)
        finite = np.flatnonzero(np.isfinite(distance))
        if not len(finite):
            raise EmptyBankError("no exemplar of the anatomy bank is eligible for this request")
        nearest = finite[np.argsort(distance[finite], kind="stable")[:self.config.choice.neighbours]]
        return int(nearest[int(torch.randint(len(nearest), (1,), generator=generator))])
