"""The synthetic cines a study mixes in: made once per generator and count by the bulk synthesis command (or,
for ECG -> cine, one cine per LUDB training ECG in turn), cached, and read back as arrays with their conditions.

Both runs resume: the phenotype -> cine pool is a :func:`cardiosynth.pipelines.synthesize.synthesize` folder;
the ECG -> cine pool writes one ``.npz`` per cine atomically and skips those present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cardiosynth import phenotypes as ph
from cardiosynth.data.ludb import load_table
from cardiosynth.export import load_npz_cine, save_cine
from cardiosynth.paths import cache_dir
from cardiosynth.pipelines.ecg_to_cine import EcgToCine
from cardiosynth.pipelines.rendering import ExemplarRendering, RenderedHeart
from cardiosynth.pipelines.synthesize import CONDITIONS_FILE, synthesize
from cardiosynth.render.bank import AnatomyBank
from cardiosynth.weights import WEIGHTS_DIR

GENERATORS = ("cpgg", "cpgg-decoded", "augmented", "ecg", "none")


@dataclass
class SyntheticPool:
    cines: np.ndarray  # (N, T, H, W) float32 in [0, 1]
    conditions: pd.DataFrame  # the phenotypes each cine was asked for (ph.NAMES) and its slice_position
    generator: str
    sha: str  # the generator's weights digest, for the report

    def __len__(self) -> int:
        return len(self.cines)


def pool_folder(generator: str, n: int, seed: int, cache: Path | None = None) -> Path:
    return (cache or cache_dir() / "pretraining") / f"{generator}_n{n}_seed{seed}"


def synthetic_pool(generator: str, n: int, seed: int = 0, weights: str | Path = WEIGHTS_DIR,
                   folder: Path | None = None, progress: bool = True, device: str = "cpu") -> SyntheticPool:
    """``n`` cines of ``generator`` (``cpgg`` or ``ecg``), made (or finished) now if the cache lacks them."""
    folder = folder or pool_folder(generator, n, seed)
    if generator in ("cpgg", "cpgg-decoded"):
        return _phenotype_pool(folder, n, seed, weights, progress, device, decoded=generator == "cpgg-decoded")
    if generator == "augmented":
        return _augmented_pool(folder, n, seed, progress)
    if generator == "ecg":
        return _ecg_pool(folder, n, seed, weights, progress, device)
    raise ValueError(f"generator must be one of {', '.join(GENERATORS[:2])} to make synthetic cines")


def _phenotype_pool(folder: Path, n: int, seed: int, weights, progress: bool, device: str,
                    decoded: bool = False) -> SyntheticPool:
    summary = synthesize(folder, n=n, seed=seed, fmt="npz", chunk_size=16, weights=weights, progress=progress,
                         device=device, decoded=decoded)
    if not summary["complete"]:
        raise RuntimeError(f"synthesis in {folder} is incomplete: {summary}")
    table = pd.read_csv(folder / CONDITIONS_FILE, keep_default_na=False)
    cines = np.stack([load_npz_cine(folder / name)[0].frames for name in table["file"]]).astype(np.float32)
    sha = json.loads((folder / "synthesis.json").read_text())["weights_sha256"]
    return SyntheticPool(cines, table[[*ph.NAMES, "slice_position"]].astype(float),
                         "cpgg-decoded" if decoded else "cpgg", sha)


def _augmented_pool(folder: Path, n: int, seed: int, progress: bool) -> SyntheticPool:
    """The "any extra data" control: the real training cines augmented by the renderer's own deformations, with
    no generator. Cine i: a bank exemplar drawn uniformly, its anatomy scaled at random (each scale
    log-normal, SD 0.1), the renderer's novelty deformation, its own registered motion scaled by a factor
    uniform in [0.75, 1.25]; conditions: the exemplar's own phenotypes and slice position."""
    bank = AnatomyBank.from_pretrained()
    rendering = ExemplarRendering(bank)
    generator = torch.Generator().manual_seed(seed)
    cines, rows = [], []
    for _ in tqdm(range(n), desc="augmented pool", unit="cine", disable=not progress):
        index = int(torch.randint(len(bank), (1,), generator=generator))
        request = {name: bank.phenotype(index, name) * float(torch.exp(torch.randn(1, generator=generator) * 0.3))
                   for name in ("LVEDV", "LVM", "RVEDV")}  # volumes: 0.3 in log volume = 0.1 in log length
        anatomy, scales = rendering.renderer.anatomy_map(index, request, generator)
        heart = RenderedHeart(index, anatomy, scales, generator)
        factor = 0.75 + 0.5 * float(torch.rand(1, generator=generator))
        cine = rendering.render(heart, bank.control[index].double() * factor, "exemplar", bank.config.spacing_mm,
                                float(bank.slice_position[index]), "augmented", {})
        cines.append(cine.frames)
        rows.append({**{name: bank.phenotype(index, name) for name in ph.NAMES},
                     "slice_position": float(bank.slice_position[index])})
    return SyntheticPool(np.stack(cines), pd.DataFrame(rows), "augmented", bank.sha256)


def _ecg_pool(folder: Path, n: int, seed: int, weights, progress: bool, device: str) -> SyntheticPool:
    """Cine i: LUDB training ECG i mod (number of them), generation seed ``seed * 1_000_003 + i``, slice position
    drawn uniform base..apex from ``seed``; its anatomy from a phenotype VAE draw for the generation seed (the
    pipeline's default before issue 39, whose default is one typical heart for every cine)."""
    records = load_table()
    records = records[records["split"] == "train"].reset_index(drop=True)
    positions = np.random.default_rng(seed).uniform(0, 1, n)
    pipe = EcgToCine.from_pretrained(weights, device=device)
    folder.mkdir(parents=True, exist_ok=True)
    rows, read = [], {}  # each record read and analysed once (a record serves every len(records)-th cine)
    for i in tqdm(range(n), desc="ECG -> cine pool", unit="cine", disable=not progress):
        path = folder / f"cine_{i:07d}.npz"
        if not path.is_file():
            record = records.iloc[i % len(records)]
            if i % len(records) not in read:
                read[i % len(records)] = pipe.analyse(record["path"])
            draw = seed * 1_000_003 + i
            out = pipe(read[i % len(records)], seed=draw, slice_position=float(positions[i]), phenotype_seed=draw)
            anatomy = out.conditions["anatomy"]
            save_cine(out.cine, path, {"record": int(record["record"]), **{k: anatomy[k] for k in ph.NAMES}})
        rows.append(load_npz_cine(path))
    cines = np.stack([cine.frames for cine, _ in rows]).astype(np.float32)
    conditions = pd.DataFrame([{**{k: float(info[k]) for k in ph.NAMES}, "slice_position": cine.slice_position}
                               for cine, info in rows])
    return SyntheticPool(cines, conditions, "ecg", pipe.sha)
