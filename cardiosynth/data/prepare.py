"""Subjects -> fixed-size slice cines for training.

Per slice with myocardium at end-diastole: centre on the heart, resample in-plane to a fixed mm/pixel
(anti-aliased, using the real spacing), crop/pad to H x W keeping a mask of real pixels, resample the one
cycle to T frames with frame 0 = ED, normalise intensities robustly per cine, and carry the ED/ES masks
(nearest neighbour) and the ES image along. Output: ``dataset.npz`` (cines as uint8 = round(255 x [0, 1]))
plus ``slices.csv`` (one row per cine: subject, slice, position, group, phenotypes, split, ...),
``config.json`` and ``summary.json`` in one folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from cardiosynth import phenotypes as ph
from cardiosynth.data import acdc
from cardiosynth.data.dataset import PreparedDataset, load_prepared, prepared_folder
from cardiosynth.data.geometry import (
    CONFIGS,
    PrepareConfig,
    normalise,
    resample_periodic_frames,
    resample_plane,
    sampling_grid,
)
from cardiosynth.data.labels import MYO
from cardiosynth.data.splits import SPLIT_FILE, load_split
from cardiosynth.paths import DataNotFoundError, cache_dir, data_root, require_dataset

log = logging.getLogger("cardiosynth.data")


@dataclass
class PreparedSlice:
    cine: np.ndarray  # (T, H, W) float32 in [0, 1]
    valid: np.ndarray  # (H, W) bool
    ed_mask: np.ndarray  # (H, W) uint8
    es_mask: np.ndarray  # (H, W) uint8
    es_image: np.ndarray  # (H, W) float32, the source ES frame resampled like the cine
    info: dict = field(default_factory=dict)


def heart_centre(ed_mask: np.ndarray, es_mask: np.ndarray, mode: str) -> np.ndarray:
    """(row, col) in source pixels of the point the crop is centred on."""
    if mode == "lv":
        return np.array(np.nonzero(ed_mask >= MYO), dtype=float).mean(axis=1)
    rows, cols = np.nonzero((ed_mask > 0) | (es_mask > 0))
    return np.array([(rows.min() + rows.max()) / 2.0, (cols.min() + cols.max()) / 2.0])


def prepare_slice(subject: acdc.AcdcSubject, z: int, config: PrepareConfig) -> PreparedSlice:
    """One slice of a subject -> a fixed-size cine with masks (assumes myocardium at ED on ``z``)."""
    ed_mask, es_mask = subject.ed_mask[z], subject.es_mask[z]
    centre = heart_centre(ed_mask, es_mask, config.centre)
    grid = sampling_grid(centre, subject.spacing_mm, config)
    shape = ed_mask.shape
    valid = ((grid[0] >= -0.5) & (grid[0] <= shape[0] - 0.5) & (grid[1] >= -0.5) & (grid[1] <= shape[1] - 0.5))
    # anti-aliasing before downsampling, as skimage.transform.rescale does: sigma = (factor - 1) / 2
    sigma = tuple(max(0.0, (config.spacing_mm / s - 1.0) / 2.0) for s in subject.spacing_mm)

    source = np.roll(subject.cine[z].astype(np.float32), -subject.ed_index, axis=0)  # frame 0 = ED
    planes = np.stack([resample_plane(frame, grid, 1, sigma) for frame in source])
    es_offset = (subject.es_index - subject.ed_index) % subject.n_frames
    cine = resample_periodic_frames(planes, config.frames)
    cine, low, high = normalise(cine, valid, config.intensity_percentiles)
    es_image = np.clip((planes[es_offset] - low) / max(high - low, 1e-6), 0.0, 1.0)
    cine[:, ~valid] = 0.0
    es_image[~valid] = 0.0

    ed_out = resample_plane(ed_mask, grid, 0, (0, 0)) * valid
    es_out = resample_plane(es_mask, grid, 0, (0, 0)) * valid
    # share of the (visible) heart's source pixels that fall inside the crop's field of view
    heart_rc = np.array(np.nonzero((ed_mask > 0) | (es_mask > 0)), dtype=float)
    half_extent = config.size * config.spacing_mm / 2.0 / np.asarray(subject.spacing_mm, dtype=float)
    inside = (np.abs(heart_rc - centre[:, None]) <= half_extent[:, None]).all(axis=0)
    return PreparedSlice(
        cine=cine,
        valid=valid,
        ed_mask=ed_out.astype(np.uint8),
        es_mask=es_out.astype(np.uint8),
        es_image=es_image.astype(np.float32),
        info={
            "es_frame_float": es_offset * config.frames / subject.n_frames,
            "heart_in_crop": float(inside.mean()),
            "valid_fraction": float(valid.mean()),
        },
    )


def slice_positions(subject: acdc.AcdcSubject, slice_table: pd.DataFrame | None, n_original: float | None) -> dict[int, dict]:
    """Per slice: original index and position 0 (base) .. 1 (apex), plus window flags when known."""
    rows = {}
    known = slice_table[slice_table["patient"] == subject.patient] if slice_table is not None else None
    for z in range(subject.n_slices):
        row = {"original_slice": z, "lv_myo_inside": np.nan, "heart_inside": np.nan}
        if known is not None and (known["slice"] == z).any():
            entry = known[known["slice"] == z].iloc[0]
            row.update(original_slice=int(entry["original_slice"]), lv_myo_inside=int(entry["lv_myo_inside"]),
                       heart_inside=int(entry["heart_inside"]))
        total = n_original if n_original and np.isfinite(n_original) else subject.n_slices
        row["slice_position"] = float(np.clip(row["original_slice"] / max(total - 1, 1), 0.0, 1.0))
        rows[z] = row
    return rows


def prepare_acdc(
    root: str | Path | None = None,
    config: PrepareConfig = CONFIGS["default"],
    out_dir: str | Path | None = None,
    split_file: str | Path = SPLIT_FILE,
    progress: bool = True,
) -> dict:
    """Prepare every usable slice of every subject under ``root``; write the dataset; return the summary."""
    started = time.perf_counter()
    root = require_dataset("acdc", root)
    out_dir = Path(out_dir) if out_dir else cache_dir() / "prepared" / f"acdc_{config.name}"
    splits = load_split(split_file)
    phenotype_table = acdc.read_phenotype_csv(root)
    slice_table = acdc.read_slice_table(root)

    kept: list[PreparedSlice] = []
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    dropped_no_myocardium = 0
    folders = acdc.subject_folders(root)
    for patient, subject in tqdm(acdc.iter_subjects(root), total=len(folders), desc="preparing ACDC",
                                 disable=not progress, unit="subject"):
        if isinstance(subject, acdc.SubjectError):
            skipped[patient] = str(subject)
            continue
        if patient not in splits:
            skipped[patient] = f"not assigned to a split in {Path(split_file).name}"
            continue
        n_original = (float(phenotype_table.at[patient, "n_slices"])
                      if phenotype_table is not None and patient in phenotype_table.index else None)
        positions = slice_positions(subject, slice_table, n_original)
        for z in range(subject.n_slices):
            if not (subject.ed_mask[z] == MYO).any():
                dropped_no_myocardium += 1
                continue
            prepared = prepare_slice(subject, z, config)
            kept.append(prepared)
            rows.append({
                "subject": patient, "slice": z, **positions[z], "group": subject.group,
                "split": splits[patient], "n_frames_source": subject.n_frames,
                "es_frame": int(round(prepared.info["es_frame_float"])) % config.frames,
                **prepared.info,
                "source_spacing_row_mm": subject.spacing_mm[0], "source_spacing_col_mm": subject.spacing_mm[1],
                "source_slice_thickness_mm": subject.slice_thickness_mm,
                "height_cm": subject.height_cm, "weight_kg": subject.weight_kg,
                "phenotype_source": subject.phenotype_source,
                **{name: subject.phenotypes[name] for name in ph.NAMES},
            })
    if not kept:
        raise RuntimeError(f"No usable slices under {root}; skipped subjects: {skipped}")

    table = pd.DataFrame(rows)
    table.insert(0, "index", np.arange(len(table)))
    write_dataset(out_dir, kept, table, config)
    summary = {
        "data": str(root),
        "output": str(out_dir),
        "config": asdict(config),
        "subjects_found": len(folders),
        "subjects_used": int(table["subject"].nunique()),
        "subjects_skipped": skipped,
        "slices_kept": len(table),
        "slices_dropped_no_myocardium_at_ed": dropped_no_myocardium,
        "source_frames_min_median_max": [int(table.n_frames_source.min()), float(table.n_frames_source.median()),
                                          int(table.n_frames_source.max())],
        "slices_per_split": table["split"].value_counts().to_dict(),
        "subjects_per_split": table.groupby("split")["subject"].nunique().to_dict(),
        "slices_per_group": table["group"].value_counts().to_dict(),
        "heart_fully_in_crop_fraction": float((table["heart_in_crop"] == 1.0).mean()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def write_dataset(out_dir: Path, slices: list[PreparedSlice], table: pd.DataFrame, config: PrepareConfig) -> None:
    """Write atomically: into a temporary folder first, then rename, so a crash leaves no half dataset."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    to_uint8 = lambda array: np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    np.savez_compressed(
        tmp / "dataset.npz",
        cines=to_uint8(np.stack([s.cine for s in slices])),
        valid=np.stack([s.valid for s in slices]),
        ed_masks=np.stack([s.ed_mask for s in slices]),
        es_masks=np.stack([s.es_mask for s in slices]),
        es_images=to_uint8(np.stack([s.es_image for s in slices])),
    )
    table.to_csv(tmp / "slices.csv", index=False)
    (tmp / "config.json").write_text(json.dumps(asdict(config), indent=2))
    if out_dir.exists():
        for old in out_dir.iterdir():
            old.unlink()
        out_dir.rmdir()
    tmp.rename(out_dir)


#: What :func:`load_or_prepare` tells the user (through ``notify``) before preparing on first use.
PREPARING_NOTE = ("Preparing the ACDC cines on first use (once, about 10 s): resampling and cropping every "
                  "slice")  # shown on pages, so no server path: the folder goes to the log

_prepare_lock = threading.Lock()  # one preparation per process; the file lock below covers other processes


def load_or_prepare(name: str = "default", notify: Callable[[str], None] | None = None) -> PreparedDataset:
    """The prepared dataset ``name`` (a config of :data:`CONFIGS`), prepared on first use.

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
