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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from tqdm import tqdm

from cardiosynth import phenotypes as ph
from cardiosynth.data import acdc
from cardiosynth.data.labels import MYO
from cardiosynth.data.splits import SPLIT_FILE, load_split
from cardiosynth.paths import cache_dir, require_dataset


@dataclass(frozen=True)
class PrepareConfig:
    """Everything that fixes the prepared tensors; saved beside them as ``config.json``."""

    name: str = "default"
    frames: int = 16
    size: int = 64  # H = W
    spacing_mm: float = 2.2  # output pixel size; 64 x 2.2 mm = 141 mm keeps the whole heart in view
    centre: str = "heart"  # "heart": bbox of LV+MYO+RV (ED and ES); "lv": LV+MYO centroid at ED
    intensity_percentiles: tuple[float, float] = (0.5, 99.5)

    def __post_init__(self):
        if self.centre not in ("heart", "lv"):
            raise ValueError(f"centre must be 'heart' or 'lv', not {self.centre!r}")
        if self.frames < 2 or self.size < 8 or self.spacing_mm <= 0:
            raise ValueError(f"Invalid preparation config: {self}")


CONFIGS = {
    "default": PrepareConfig(),
    "paper": PrepareConfig(name="paper", frames=50, size=96, spacing_mm=1.5),
}


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


def sampling_grid(centre: np.ndarray, source_spacing: tuple[float, float], config: PrepareConfig) -> np.ndarray:
    """Source (row, col) coordinates of every output pixel: a (2, H, W) array."""
    offsets_mm = (np.arange(config.size) - (config.size - 1) / 2.0) * config.spacing_mm
    rows = centre[0] + offsets_mm / source_spacing[0]
    cols = centre[1] + offsets_mm / source_spacing[1]
    return np.stack(np.meshgrid(rows, cols, indexing="ij"))


def resample_plane(image: np.ndarray, grid: np.ndarray, order: int, smooth_sigma: tuple[float, float]) -> np.ndarray:
    """Sample one 2D image on ``grid``; ``order`` 1 for intensities, 0 for label masks."""
    if order > 0 and max(smooth_sigma) > 0:
        image = ndimage.gaussian_filter(image.astype(np.float32), smooth_sigma)
    return ndimage.map_coordinates(image, grid, order=order, mode="nearest")


def resample_periodic_frames(frames: np.ndarray, n_out: int) -> np.ndarray:
    """Resample one periodic cycle of frames (T_in, H, W) to ``n_out`` frames, frame 0 kept exactly."""
    n_in = frames.shape[0]
    position = np.arange(n_out) * n_in / n_out
    lower = np.floor(position).astype(int)
    weight = (position - lower)[:, None, None]
    return (1 - weight) * frames[lower % n_in] + weight * frames[(lower + 1) % n_in]


def normalise(cine: np.ndarray, valid: np.ndarray, percentiles: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """Map the robust intensity range of the real pixels to [0, 1] (MRI intensities have no units)."""
    low, high = np.percentile(cine[:, valid], percentiles)
    scale = max(float(high - low), 1e-6)
    return np.clip((cine - low) / scale, 0.0, 1.0).astype(np.float32), float(low), float(high)


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
