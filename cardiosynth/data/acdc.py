"""Reader for the official ACDC layout.

    patientNNN/Info.cfg                      ED, ES (1-based), Group, Height, NbFrame, Weight
    patientNNN/patientNNN_4d.nii.gz          cine (X, Y, Z, T)
    patientNNN/patientNNN_frameEE(_gt).nii.gz  ED image and mask (0 bg, 1 RV, 2 MYO, 3 LV)
    patientNNN/patientNNN_frameSS(_gt).nii.gz  ES image and mask

Images are returned in the design's orientation, ``frames[t] = vol[:, :, z, t].T``, i.e. arrays
(Z, T, rows, cols) with ``spacing_mm = (row, col)``. Phenotypes are computed from the masks and replaced by
``phenotypes.csv`` when that file is present (our subset is cropped, so its mask volumes underestimate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np
import pandas as pd

from cardiosynth import phenotypes as ph
from cardiosynth.data.geometry import to_rows_cols
from cardiosynth.data.labels import LV, MYO, RV
from cardiosynth.paths import require_dataset

MYOCARDIUM_DENSITY_G_PER_ML = 1.05
GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")


class SubjectError(Exception):
    """One subject cannot be used; the message is the one-line reason shown in summaries."""


@dataclass
class AcdcSubject:
    patient: str
    group: str
    height_cm: float
    weight_kg: float
    ed_index: int  # 0-based frame index of end-diastole
    es_index: int  # 0-based frame index of end-systole
    cine: np.ndarray  # (Z, T, rows, cols), source dtype
    ed_mask: np.ndarray  # (Z, rows, cols) uint8 labels
    es_mask: np.ndarray  # (Z, rows, cols) uint8 labels
    spacing_mm: tuple[float, float]  # (row, col)
    slice_thickness_mm: float
    phenotypes: dict[str, float] = field(default_factory=dict)
    phenotypes_from_masks: dict[str, float] = field(default_factory=dict)
    phenotype_source: str = "masks"  # "csv" when phenotypes.csv supplied them

    @property
    def n_slices(self) -> int:
        return self.cine.shape[0]

    @property
    def n_frames(self) -> int:
        return self.cine.shape[1]


def read_info_cfg(path: Path) -> dict[str, str]:
    """``Key: value`` lines of an ACDC ``Info.cfg``."""
    if not path.is_file():
        raise SubjectError(f"missing {path.name}")
    info = {}
    for line in path.read_text(errors="replace").splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def _load_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    if not path.is_file():
        raise SubjectError(f"missing {path.name}")
    try:
        image = nib.load(str(path))
        return np.asanyarray(image.dataobj), tuple(float(z) for z in image.header.get_zooms())
    except Exception as err:  # nibabel raises many types for corrupt files
        raise SubjectError(f"unreadable NIfTI {path.name}: {type(err).__name__}: {err}") from err


def phenotypes_from_masks(ed_mask: np.ndarray, es_mask: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Volumes = voxel count x voxel volume; LVM = 1.05 g/mL x myocardium at ED; SV and EF derived."""
    values = {
        "LVEDV": float((ed_mask == LV).sum() * voxel_ml),
        "LVESV": float((es_mask == LV).sum() * voxel_ml),
        "LVM": float((ed_mask == MYO).sum() * voxel_ml * MYOCARDIUM_DENSITY_G_PER_ML),
        "RVEDV": float((ed_mask == RV).sum() * voxel_ml),
        "RVESV": float((es_mask == RV).sum() * voxel_ml),
    }
    for side in ("LV", "RV"):
        edv, esv = values[f"{side}EDV"], values[f"{side}ESV"]
        values[f"{side}SV"], values[f"{side}EF"] = ph.derive(edv, esv)  # EF NaN for an empty ventricle
    return {name: values[name] for name in ph.NAMES}


def read_subject(folder: Path, phenotypes: dict[str, float] | None = None) -> AcdcSubject:
    """Read one ``patientNNN`` folder; raise :class:`SubjectError` with a one-line reason if unusable.

    ``phenotypes`` (ground truth, e.g. a row of ``phenotypes.csv``) takes precedence over mask volumes.
    """
    folder = Path(folder)
    patient = folder.name
    info = read_info_cfg(folder / "Info.cfg")
    try:
        ed_frame, es_frame = int(float(info["ED"])), int(float(info["ES"]))
    except (KeyError, ValueError):
        raise SubjectError("Info.cfg has no valid ED/ES frame numbers") from None

    cine, zooms = _load_nifti(folder / f"{patient}_4d.nii.gz")
    if cine.ndim != 4:
        raise SubjectError(f"cine is not 4D (X, Y, Z, T): shape {cine.shape}")
    n_frames = cine.shape[3]
    for name, frame in (("ED", ed_frame), ("ES", es_frame)):
        if not 1 <= frame <= n_frames:
            raise SubjectError(f"{name} frame {frame} is outside the cine's 1..{n_frames} frames")
    masks = {}
    for name, frame in (("ED", ed_frame), ("ES", es_frame)):
        mask, _ = _load_nifti(folder / f"{patient}_frame{frame:02d}_gt.nii.gz")
        if mask.shape != cine.shape[:3]:
            raise SubjectError(f"{name} mask shape {mask.shape} does not match the cine {cine.shape[:3]}")
        masks[name] = to_rows_cols(np.asarray(mask, dtype=np.uint8))

    spacing_x, spacing_y, spacing_z = zooms[:3]
    voxel_ml = spacing_x * spacing_y * spacing_z / 1000.0
    from_masks = phenotypes_from_masks(masks["ED"], masks["ES"], voxel_ml)
    source = "csv" if phenotypes is not None else "masks"
    phenotypes = dict(phenotypes) if phenotypes is not None else dict(from_masks)

    def number(key: str) -> float:
        try:
            return float(info[key])
        except (KeyError, ValueError):
            return float("nan")

    return AcdcSubject(
        patient=patient,
        group=info.get("Group", "unknown"),
        height_cm=number("Height"),
        weight_kg=number("Weight"),
        ed_index=ed_frame - 1,
        es_index=es_frame - 1,
        cine=to_rows_cols(np.asarray(cine)),
        ed_mask=masks["ED"],
        es_mask=masks["ES"],
        spacing_mm=(spacing_y, spacing_x),
        slice_thickness_mm=spacing_z,
        phenotypes=phenotypes,
        phenotypes_from_masks=from_masks,
        phenotype_source=source,
    )


def read_phenotype_csv(root: Path) -> pd.DataFrame | None:
    """``phenotypes.csv`` indexed by patient, phenotypes under schema names; ``None`` if absent.

    ACDC's extra columns (height, frames, spacing, ...) are kept as they are.
    """
    path = Path(root) / "phenotypes.csv"
    if not path.is_file():
        return None
    raw = pd.read_csv(path)
    mapping, _ = ph.map_columns(raw.columns)
    table = ph.complete_derived(raw.rename(columns=mapping))
    return table.set_index("patient", drop=False)


def read_slice_table(root: Path) -> pd.DataFrame | None:
    """``slices.csv`` (original slice index and inside-window flags), or ``None``."""
    path = Path(root) / "slices.csv"
    return pd.read_csv(path) if path.is_file() else None


def subject_folders(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name.startswith("patient"))


def iter_subjects(root: str | Path | None = None) -> Iterator[tuple[str, AcdcSubject | SubjectError]]:
    """Yield ``(patient, subject)`` or ``(patient, SubjectError)`` for every patient folder under ``root``."""
    root = require_dataset("acdc", root)
    table = read_phenotype_csv(root)
    for folder in subject_folders(root):
        known = table is not None and folder.name in table.index
        values = {n: float(table.at[folder.name, n]) for n in ph.NAMES} if known else None
        try:
            yield folder.name, read_subject(folder, values)
        except SubjectError as err:
            yield folder.name, err
