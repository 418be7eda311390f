"""Load a prepared dataset (``dataset.npz`` + ``slices.csv`` + ``config.json``) for training and evaluation."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cardiosynth.cine import Cine
from cardiosynth.data.prepare import CONFIGS, PrepareConfig, prepare_acdc
from cardiosynth.paths import DataNotFoundError, cache_dir, data_root

log = logging.getLogger("cardiosynth.data")


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


#: What :func:`load_or_prepare` tells the user (through ``notify``) before preparing on first use.
PREPARING_NOTE = ("Preparing the ACDC cines on first use (once, about 10 s): resampling and cropping every "
                  "slice")  # shown on pages, so no server path: the folder goes to the log

_prepare_lock = threading.Lock()  # one preparation per process; the file lock below covers other processes


def load_or_prepare(name: str = "default", notify: Callable[[str], None] | None = None) -> PreparedDataset:
    """The prepared dataset ``name`` (a config of ``cardiosynth.data.prepare.CONFIGS``), prepared on first use.

    When ``prepared_folder(name)`` holds no dataset yet, the ACDC data folder (``$CARDIOSYNTH_DATA/acdc``) is
    prepared into it with that config (``notify`` gets :data:`PREPARING_NOTE` first, for the page). Safe when
    several requests or processes race: one prepares under a lock, into a private temporary folder that is
    renamed into place only when complete; the others wait and then load it. Without the ACDC data folder:
    one DataNotFoundError naming where it looked and the ``CARDIOSYNTH_DATA`` variable."""
    if name not in CONFIGS:
        raise ValueError(f"Unknown dataset config {name!r}; known: {', '.join(CONFIGS)}")
    folder = prepared_folder(name)
    if (folder / "dataset.npz").is_file():
        return load_prepared(folder)
    source = data_root() / "acdc"
    if not source.is_dir():
        raise DataNotFoundError(
            f"The reader study needs the ACDC cines, but the ACDC data folder was not found at {source} "
            f"(and nothing is prepared yet at {folder}). Set CARDIOSYNTH_DATA to the folder that contains "
            "'acdc/' (e.g. export CARDIOSYNTH_DATA=/path/to/shared/data) and restart the app.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _prepare_lock, _file_lock(folder.with_name(folder.name + ".lock")):
        if not (folder / "dataset.npz").is_file():  # another request or process may have prepared it meanwhile
            if notify is not None:
                log.info("%s into %s", PREPARING_NOTE, folder)
                notify(PREPARING_NOTE)
            log.info("Preparing %s into %s (first use)", source, folder)
            partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            try:
                prepare_acdc(source, CONFIGS[name], partial, progress=False)
                if folder.exists():  # a stale folder without dataset.npz (e.g. an interrupted copy)
                    shutil.rmtree(folder)
                partial.rename(folder)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
                shutil.rmtree(partial.with_name(partial.name + ".tmp"), ignore_errors=True)
    return load_prepared(folder)


class _file_lock:
    """An exclusive advisory lock on ``path`` (fcntl; a no-op where fcntl does not exist)."""

    def __init__(self, path: Path):
        self.path, self.handle = Path(path), None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: the in-process lock still serialises one server's requests
            return self
        self.handle = open(self.path, "a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
        return False
