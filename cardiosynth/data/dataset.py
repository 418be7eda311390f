"""Load a prepared dataset (``dataset.npz`` + ``slices.csv`` + ``config.json``) for training and evaluation.

Reading only: preparing one (and :func:`~cardiosynth.data.prepare.load_or_prepare`, which prepares on first use)
is :mod:`cardiosynth.data.prepare`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cardiosynth.cine import Cine
from cardiosynth.data.geometry import PrepareConfig
from cardiosynth.paths import DataNotFoundError, cache_dir


@dataclass
class PreparedDataset:
    """Arrays aligned with ``table`` row by row. Cines are uint8; :meth:`cine` gives float [0, 1]."""

    cines: np.ndarray  # (N, T, H, W) uint8
    valid: np.ndarray  # (N, H, W) bool
    ed_masks: np.ndarray  # (N, H, W) uint8
    es_masks: np.ndarray  # (N, H, W) uint8
    es_images: np.ndarray  # (N, H, W) uint8
    table: pd.DataFrame
    config: PrepareConfig

    def __len__(self) -> int:
        return len(self.table)

    def frames(self, i: int) -> np.ndarray:
        return self.cines[i].astype(np.float32) / 255.0

    def cine(self, i: int) -> Cine:
        row = self.table.iloc[i]
        return Cine(
            frames=self.frames(i),
            spacing_mm=(self.config.spacing_mm, self.config.spacing_mm),
            slice_position=float(row["slice_position"]),
            valid=self.valid[i],
            source=f"real:{row['subject']}/slice{int(row['slice'])}",
            metadata=source_geometry(row),
        )

    def subset(self, mask) -> "PreparedDataset":
        """Rows where ``mask`` holds (e.g. ``ds.table.split == "train"``), table re-indexed from 0."""
        idx = np.flatnonzero(np.asarray(mask))
        return PreparedDataset(self.cines[idx], self.valid[idx], self.ed_masks[idx], self.es_masks[idx],
                               self.es_images[idx], self.table.iloc[idx].reset_index(drop=True), self.config)

    def split(self, name: str) -> "PreparedDataset":
        return self.subset(self.table["split"] == name)


def source_geometry(row: pd.Series) -> dict:
    """What a prepared real cine keeps of its source's geometry: the slice thickness (mm), when the dataset was
    prepared with it recorded (``source_slice_thickness_mm``, written by ``prepare`` since issue 24). The
    source affine is not kept: prepare resamples and crops the slice, so it no longer describes the grid."""
    thickness = float(row.get("source_slice_thickness_mm", np.nan))
    return {"slice_thickness_mm": thickness} if np.isfinite(thickness) and thickness > 0 else {}


def prepared_folder(name: str = "default") -> Path:
    return cache_dir() / "prepared" / f"acdc_{name}"


def load_prepared(folder_or_name: str | Path = "default") -> PreparedDataset:
    """Load by config name (from the cache) or by folder; a clear error says how to create it."""
    folder = Path(folder_or_name)
    if not (folder / "dataset.npz").is_file():
        folder = prepared_folder(str(folder_or_name))
    if not (folder / "dataset.npz").is_file():
        raise DataNotFoundError(
            f"No prepared dataset at {folder}. Create it with: python -m cardiosynth.data prepare "
            f"--config {folder_or_name if str(folder_or_name) in ('default', 'paper') else 'default'}"
        )
    with np.load(folder / "dataset.npz", allow_pickle=False) as arrays:
        data = {key: arrays[key] for key in arrays.files}
    config = PrepareConfig(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in json.loads((folder / "config.json").read_text()).items()})
    table = pd.read_csv(folder / "slices.csv")
    if len(table) != len(data["cines"]):
        raise ValueError(f"{folder}: slices.csv has {len(table)} rows but dataset.npz {len(data['cines'])} cines")
    return PreparedDataset(table=table, config=config, **data)
