"""Generators behind the evaluator, and the references every real generator must beat: the registry of named
generators (:func:`build_generator`) that the evaluation commands and the reader study (``cardiosynth.review``)
build on. It lives with the pipelines, not in ``cardiosynth.measure``: the instruments only measure the cines
they are given.

The contract (docs/design.md): ``generate(conditions) -> list[Cine]``, where ``conditions`` is a DataFrame with
the schema's phenotype columns, ``slice_position`` and ``seed`` (one row per requested cine). The seed
contract: a seed seeds one call of a trained generator, so the rows that share a seed are drawn together (in
table order) and the same table always gives the same cines; on CPU, bit for bit.

- ``RealCines``: real held-out cines, requested with their own phenotypes -> the real-data ceilings.
- ``VaeReconstructedCines`` (``vae-recon``): the same cines through the 3D-VAE -> the ceiling of any
  generator that works in its latent space (a bias here is the VAE's, not the MAR's or the flow's).
- ``AnatomyMotionReconstructedCines`` (``recon``): the same cines through the anatomy + motion
  representation (ED frame through the frame autoencoder, warped by its fitted motion code) -> the ceiling of
  any generator that draws in that space.
- ``RenderedRegistration`` (``render-recon``): each held-out cine's own real ED frame warped by its own full
  registration through the renderer -> the ceiling of every rendered generator (no model involved).
- ``NearestTrainingCine``: copies the training cine closest to the request (fails the memorisation check).
- ``cpgg``: the trained PhenotypeToCine pipeline (``cardiosynth.pipelines``), the product itself: cines rendered
  from the anatomy bank's real exemplars (``cpgg-mar``: with the MAR's motion; ``cpgg-decoded``: the published
  path, every frame decoded from the MAR's 3D-VAE latents).
- ``GroupMeanCine``: the mean cine of the request's nearest diagnostic group at that slice level (no
  diversity: fails the Fréchet and adherence checks).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from cardiosynth import phenotypes as ph
from cardiosynth.cine import Cine
from cardiosynth.data.dataset import PreparedDataset
from cardiosynth.models.anatomy_motion import AnatomyMotionCodec
from cardiosynth.models.motion import CONFIGS as MOTION_CONFIGS
from cardiosynth.models.vae3d import VAE3D, decode_cines, encode_cines
from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine
from cardiosynth.render.fields import motion_positions
from cardiosynth.render.registration import registered_controls
from cardiosynth.render.sampling import resample

#: every name build_generator knows, with its optional weights argument
KNOWN_GENERATORS = ("real, vae-recon[:folder], recon[:ae,motion], render-recon, edit[:folder], edit-mar[:folder], "
                    "nearest-train, group-mean, cpgg[:folder], cpgg-mar[:folder], cpgg-decoded[:folder]")


class Generator(Protocol):
    name: str

    def generate(self, conditions: pd.DataFrame) -> list[Cine]: ...


@dataclass(frozen=True)
class Sampler:
    """Sampler settings a command asks for instead of the defaults saved with the weights (``None``: keep the
    default): MAR decoding steps K, guidance scale, temperature. Only the trained generators draw samples."""

    steps: int | None = None
    cfg: float | None = None
    temperature: float | None = None

    def given(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def label(self) -> str:
        """``@steps=16,cfg=3.0`` (empty for the defaults): appended to the generator's name in reports."""
        return "@" + ",".join(f"{k}={v}" for k, v in self.given().items()) if self.given() else ""


def check_conditions(conditions: pd.DataFrame, needed: tuple[str, ...] = ph.NAMES) -> pd.DataFrame:
    """Refuse empty or incomplete requests with one readable message."""
    if not isinstance(conditions, pd.DataFrame) or len(conditions) == 0:
        raise ValueError("No conditions given: pass a table with one row per requested cine")
    missing = [c for c in (*needed, "slice_position") if c not in conditions]
    if missing:
        raise ValueError(f"The conditions lack columns: {', '.join(missing)}")
    bad = conditions[list(needed) + ["slice_position"]].isna().any(axis=1)
    if bad.any():
        raise ValueError(f"Conditions rows {list(np.flatnonzero(bad))[:10]} contain missing values")
    return conditions


class RealCines:
    """Returns the real cines of a prepared split, looked up by the ``index`` column of the conditions."""

    name = "real"

    def __init__(self, dataset: PreparedDataset, split: str = "val"):
        self.dataset = dataset.split(split)
        self.name = f"real-{split}"

    def conditions(self) -> pd.DataFrame:
        """This split's own phenotypes, positions and subjects: the requests that give the ceilings."""
        table = self.dataset.table
        out = table[["subject", "group", "slice_position", *ph.NAMES]].copy()
        out["index"] = np.arange(len(table))
        out["seed"] = 0
        return out

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        if "index" not in conditions:
            raise ValueError("RealCines needs the 'index' column made by RealCines.conditions()")
        return [self.dataset.cine(int(i)) for i in conditions["index"]]


class VaeReconstructedCines(RealCines):
    """Real held-out cines encoded and decoded by a 3D-VAE (bundled, or ``vae-recon:<folder>``)."""

    def __init__(self, dataset: PreparedDataset, split: str = "val", folder: str = "vae3d"):
        super().__init__(dataset, split)
        self.vae = VAE3D.from_pretrained(folder)
        self.name = f"vae-recon-{split}" + ("" if folder == "vae3d" else f":{folder}")

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        real = super().generate(conditions)
        decoded = decode_cines(self.vae, encode_cines(self.vae, np.stack([c.frames for c in real]))).numpy()
        return [Cine(frames, c.spacing_mm, c.slice_position, c.valid, source=f"vae-recon:{c.source}")
                for frames, c in zip(decoded, real)]


class AnatomyMotionReconstructedCines(RealCines):
    """Real held-out cines through the anatomy + motion representation (bundled, or ``recon:<ae>,<motion>``)."""

    def __init__(self, dataset: PreparedDataset, split: str = "val", folders: str = "frame_ae,motion"):
        super().__init__(dataset, split)
        self.codec = AnatomyMotionCodec.from_pretrained(*folders.split(","))
        self.name = f"recon-{split}" + ("" if folders == "frame_ae,motion" else f":{folders}")

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        real = super().generate(conditions)
        decoded = self.codec.reconstruct(np.stack([c.frames for c in real])).numpy()
        return [Cine(frames, c.spacing_mm, c.slice_position, c.valid, source=f"recon:{c.source}")
                for frames, c in zip(decoded, real)]


class RenderedRegistration(RealCines):
    """Real held-out cines rebuilt as their own real ED frame warped by their own full registration: the whole
    split is registered once (cached, ``cardiosynth.render.registration``) and rows are looked up by ``index``."""

    def __init__(self, dataset: PreparedDataset, split: str = "val", seed: int = 0):
        super().__init__(dataset, split)
        self.name, self.seed = f"render-recon-{split}", seed
        cines = torch.from_numpy(self.dataset.cines.astype(np.float32) / 255.0)
        self.controls = registered_controls(cines, MOTION_CONFIGS[dataset.config.name], f"registration_{split}",
                                            dataset.config.name, progress=False)

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        real = super().generate(conditions)
        generator = torch.Generator().manual_seed(self.seed)
        size = real[0].frames.shape[-1]
        return [Cine(resample(c.frames[0], motion_positions(self.controls[int(i)], size), c.valid, generator=generator),
                     c.spacing_mm, c.slice_position, c.valid, source=f"render-recon:{c.source}")
                for c, i in zip(real, conditions["index"])]


class EditedRealCines(RealCines):
    """Each real held-out cine edited to its own phenotypes (``edit[:folder]``): the heart's own real ED frame with
    its own registered motion scaled to the asked LVEF (``edit-mar``: the motion the anatomy + motion MAR draws
    for its values). ``render-recon`` (the same frame with the same registration, unscaled) is its ceiling."""

    def __init__(self, dataset: PreparedDataset, split: str = "val", folder: str | None = None, device: str = "auto",
                 sampler: Sampler = Sampler(), motion: str = "own"):
        super().__init__(dataset, split)
        self.pipe = PhenotypeToCine.from_pretrained(*([folder] if folder else []), device=device)
        self.sampler, self.motion = sampler, motion
        self.name = ("edit" if motion == "own" else f"edit-{motion}") + f"-{split}" + (f":{folder}" if folder else "") \
            + sampler.label()

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        real = super().generate(conditions)
        out = []
        for cine, (_, row) in zip(real, conditions.iterrows()):
            edited = self.pipe.edit(cine, {"LVEF": float(row["LVEF"])}, phenotypes=row.to_dict(),
                                    seed=int(row.get("seed", 0)), motion=self.motion, **self.sampler.given()).cines[0]
            edited.source = f"edit:{cine.source}"
            out.append(edited)
        return out


class SampledPipeline:
    """The trained phenotype -> cine pipeline (``cpgg[:folder]``) with the command's sampler settings and, for
    rendered cines, the motion (``cpgg-mar``)."""

    def __init__(self, pipe: PhenotypeToCine, name: str, sampler: Sampler = Sampler(), motion: str | None = None):
        self.pipe, self.sampler, self.motion = pipe, sampler, motion
        self.name = name + sampler.label()

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        options = self.sampler.given() if self.motion != "exemplar" else {}
        return self.pipe.generate(conditions, **options, **({"motion": self.motion} if self.motion else {}))


class _TrainingReference:
    """Shared lookup: standardised phenotypes and positions of the training cines."""

    def __init__(self, train: PreparedDataset):
        self.train = train
        values = train.table[list(ph.NAMES)].to_numpy(float)
        self.mean, self.std = values.mean(0), values.std(0) + 1e-8
        self.z = (values - self.mean) / self.std
        self.position = train.table["slice_position"].to_numpy(float)

    def requests(self, conditions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The checked requests as (standardised phenotypes (N, 9), slice positions (N,))."""
        check_conditions(conditions)
        z = (conditions[list(ph.NAMES)].to_numpy(float) - self.mean) / self.std
        return z, conditions["slice_position"].to_numpy(float)


class NearestTrainingCine(_TrainingReference):
    name = "nearest-train"

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        z, position = self.requests(conditions)
        out = []
        for k in range(len(conditions)):
            distance = ((self.z - z[k]) ** 2).sum(1) + ((self.position - position[k]) / 0.1) ** 2
            i = int(np.argmin(distance))
            out.append(Cine(self.train.frames(i), self.train.cine(i).spacing_mm, float(position[k]),
                            self.train.valid[i], source=f"synthetic:nearest-train@{self.train.table.subject[i]}"))
        return out


class GroupMeanCine(_TrainingReference):
    name = "group-mean"

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        z, position = self.requests(conditions)
        groups = self.train.table["group"].to_numpy()
        spacing = (self.train.config.spacing_mm, self.train.config.spacing_mm)
        out = []
        for k in range(len(conditions)):
            group = groups[int(np.argmin(((self.z - z[k]) ** 2).sum(1)))]
            candidates = np.flatnonzero(groups == group)
            gap = np.abs(self.position[candidates] - position[k])
            chosen = candidates[gap <= 0.15] if (gap <= 0.15).sum() >= 3 else candidates[np.argsort(gap)[:10]]
            frames = self.train.cines[chosen].astype(np.float32).mean(0) / 255.0
            out.append(Cine(frames, spacing, float(position[k]), source=f"synthetic:group-mean@{group}"))
        return out


def build_generator(name: str, dataset: PreparedDataset, split: str = "val", device: str = "auto",
                    sampler: Sampler = Sampler()) -> Generator:
    """Generators the evaluation command knows by name (``device`` and ``sampler`` for the trained ones)."""
    if name == "real":
        return RealCines(dataset, split)
    if name == "vae-recon" or name.startswith("vae-recon:"):
        return VaeReconstructedCines(dataset, split, *name.split(":", 1)[1:])
    if name == "recon" or name.startswith("recon:"):
        return AnatomyMotionReconstructedCines(dataset, split, *name.split(":", 1)[1:])
    if name == "render-recon":
        return RenderedRegistration(dataset, split)
    if name == "edit" or name.startswith("edit:"):
        return EditedRealCines(dataset, split, *name.split(":", 1)[1:], device=device, sampler=sampler)
    if name == "edit-mar" or name.startswith("edit-mar:"):
        return EditedRealCines(dataset, split, *name.split(":", 1)[1:], device=device, sampler=sampler, motion="mar")
    train = dataset.split("train")
    if name == "nearest-train":
        return NearestTrainingCine(train)
    if name == "group-mean":
        return GroupMeanCine(train)
    base, _, folder = name.partition(":")  # the trained phenotype -> cine pipeline (cpgg:<folder or hub id>)
    if base in ("cpgg", "cpgg-mar", "cpgg-decoded"):
        pipe = PhenotypeToCine.from_pretrained(*([folder] if folder else []), device=device,
                                               decoded=base == "cpgg-decoded")
        motion = {"cpgg-mar": "mar"}.get(base) if pipe.rendering is not None else None
        return SampledPipeline(pipe, name, sampler, motion)
    raise ValueError(f"Unknown generator {name!r}; known: {KNOWN_GENERATORS}")
