"""Designing a study: which real cines, which synthetic ones, rendered once through ``render.py`` and stored.

Real cases come from a held-out split only (val or test): a training cine may have been memorised by the
generator, and a reader shown a copy would judge the same heart twice. Synthetic cases are generated with
phenotypes sampled from the phenotype VAE ("vae") or with the real cases' own phenotypes ("matched"); either
way their slice positions are drawn from the real cases', so the mix of basal and apical slices is the same
in both groups. Cases are rendered in random order; a study is created completely or not at all.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cardiosynth import phenotypes as ph
from cardiosynth.cine import Cine
from cardiosynth.data.dataset import PreparedDataset
from cardiosynth.phenotype_prior import PhenotypePrior
from cardiosynth.review.access import (
    display_code,
    new_study_code,
    new_token,
    token_hash,
)
from cardiosynth.review.errors import ReviewError
from cardiosynth.review.render import RenderSettings, render_case
from cardiosynth.review.store import Store

HELD_OUT_SPLITS = ("val", "test")
CONDITION_MODES = ("vae", "matched")
MAX_CASES_PER_GROUP = 500


@dataclass(frozen=True)
class CreatedStudy:
    """Returned once: the admin token is not stored anywhere in readable form."""

    code: str
    admin_token: str
    folder: Path
    n_real: int
    n_synthetic: int

    @property
    def display_code(self) -> str:
        return display_code(self.code)


def _check_count(n, what: str) -> int:
    try:
        ok = not isinstance(n, bool) and int(n) == n and 1 <= int(n) <= MAX_CASES_PER_GROUP
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ReviewError(f"The number of {what} cases must be a whole number from 1 to {MAX_CASES_PER_GROUP}; "
                          f"got {n}.")
    return int(n)


def choose_real(dataset: PreparedDataset, split: str, n: int, seed: int = 0) -> tuple[list[Cine], pd.DataFrame]:
    """``n`` real held-out cines, spread over patients (one slice of each patient before a second of any)."""
    if split not in HELD_OUT_SPLITS:
        raise ReviewError(f"Real cases must come from held-out cines (split 'val' or 'test'), not '{split}': "
                          "the generator may have memorised training cines.")
    n = _check_count(n, "real")
    held_out = dataset.split(split)
    if n > len(held_out):
        raise ReviewError(f"The {split} split has only {len(held_out)} cines; ask for at most that many real cases.")
    shuffled = np.random.default_rng(seed).permutation(len(held_out))
    rank = held_out.table.iloc[shuffled].groupby("subject").cumcount().to_numpy()
    chosen = shuffled[np.argsort(rank, kind="stable")][:n]
    return [held_out.cine(int(i)) for i in chosen], held_out.table.iloc[chosen].reset_index(drop=True)


def synthetic_conditions(mode: str, n: int, real_table: pd.DataFrame, seed: int = 0,
                         temperature: float = 1.0) -> pd.DataFrame:
    """The generator's requests: the nine phenotypes, slice_position and seed, one row per synthetic case."""
    if mode not in CONDITION_MODES:
        raise ReviewError(f"Synthetic phenotypes must be 'vae' (sampled) or 'matched' (the real cases'); got '{mode}'.")
    n = _check_count(n, "synthetic")
    rng = np.random.default_rng(seed)
    if mode == "matched":  # the real cases' own rows, in random order, cycled when more are asked for
        rows = np.resize(rng.permutation(len(real_table)), n)
        table = real_table.iloc[rows][[*ph.NAMES, "slice_position"]].reset_index(drop=True)
    else:
        table = PhenotypePrior.from_pretrained().sample(n, temperature=temperature, seed=seed)[list(ph.NAMES)]
        table = table.reset_index(drop=True)
        table["slice_position"] = rng.choice(real_table["slice_position"].to_numpy(float), n)
    table["seed"] = seed * 100_003 + np.arange(n)
    return table


def generate(generator, conditions: pd.DataFrame) -> list[Cine]:
    """Run any generator (``generate(conditions) -> list[Cine]``) and check that it kept the contract."""
    cines = list(generator.generate(conditions))
    if len(cines) != len(conditions) or not all(isinstance(c, Cine) for c in cines):
        raise ReviewError(f"The generator '{getattr(generator, 'name', generator)}' returned {len(cines)} cines "
                          f"for {len(conditions)} requests; it must return one Cine per request.")
    return cines


def _describe(cine: Cine) -> dict:
    return {"source": cine.source, "source_shape": list(cine.shape), "spacing_mm": list(cine.spacing_mm),
            "slice_position": float(cine.slice_position)}


def create_study(store: Store, root: str | Path, real: list[Cine], synthetic: list[Cine],
                 settings: RenderSettings = RenderSettings(), title: str = "", design: dict | None = None,
                 real_provenance: list[dict] | None = None, synthetic_provenance: list[dict] | None = None
                 ) -> CreatedStudy:
    """Render every case into ``root/<code>/`` and store the study; on any failure nothing is left behind."""
    if not real or not synthetic:
        raise ReviewError("A study needs at least one real and one synthetic cine.")
    if not all(isinstance(c, Cine) for c in [*real, *synthetic]):
        raise ReviewError("Every case must be a Cine.")
    cases = [(cine, "real", extra) for cine, extra in zip(real, real_provenance or [{}] * len(real))]
    cases += [(cine, "synthetic", extra)
              for cine, extra in zip(synthetic, synthetic_provenance or [{}] * len(synthetic))]
    random.SystemRandom().shuffle(cases)  # file dates and disk order must not follow real-then-synthetic
    root = Path(root).resolve()  # stored absolute: the app may run from another folder
    code = new_study_code()
    while store.study(code) is not None or (root / code).exists():
        code = new_study_code()
    partial, folder = root / f".{code}.partial", root / code
    partial.mkdir(parents=True)
    records = []
    try:
        for cine, truth, extra in cases:
            path = render_case(cine, partial, settings)
            records.append({"case_id": path.stem, "file": path.name, "truth": truth,
                            "provenance": {**_describe(cine), **extra}})
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    admin_token = new_token()
    settings_record = {"render": settings.as_dict(), "design": {**(design or {}), "n_real": len(real),
                                                                "n_synthetic": len(synthetic)}}
    try:
        store.add_study(code, str(title or "").strip()[:200], settings_record, token_hash(admin_token), str(folder),
                        records)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return CreatedStudy(code, admin_token, folder, len(real), len(synthetic))


def design_study(store: Store, root: str | Path, dataset: PreparedDataset, generator, n_real: int, n_synthetic: int,
                 split: str = "val", conditions: str = "vae", seed: int = 0,
                 settings: RenderSettings = RenderSettings(), title: str = "", temperature: float = 1.0
                 ) -> CreatedStudy:
    """The whole design: real held-out cines, synthetic ones from ``generator``, one rendering path."""
    real, real_table = choose_real(dataset, split, n_real, seed)
    requests = synthetic_conditions(conditions, n_synthetic, real_table, seed, temperature)
    synthetic = generate(generator, requests)
    real_provenance = [{"split": split, "subject": str(row["subject"]), "group": str(row["group"]),
                        "phenotypes": {name: float(row[name]) for name in ph.NAMES}}
                       for _, row in real_table.iterrows()]
    generator_name = str(getattr(generator, "name", type(generator).__name__))
    synthetic_provenance = [{"generator": generator_name, "seed": int(row["seed"]),
                             "phenotypes": {name: float(row[name]) for name in ph.NAMES},
                             **({"exemplar": cine.metadata["exemplar"]} if "exemplar" in cine.metadata else {})}
                            for cine, (_, row) in zip(synthetic, requests.iterrows())]
    design = {"split": split, "generator": generator_name, "conditions": conditions, "seed": int(seed),
              "phenotype_temperature": float(temperature)}
    return create_study(store, root, real, synthetic, settings, title, design, real_provenance, synthetic_provenance)
