"""A tiny ACDC-layout data set the tests write themselves: concentric-disc "hearts" whose volumes are known.

Each cine is (X, Y, Z, T) uint8: a bright LV cavity disc that shrinks towards end-systole, a grey
myocardial ring around it, and a bright RV disc beside it, on a dark background.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

X, Y, Z, T = 48, 40, 3, 10
SPACING = (1.5, 1.6, 8.0)  # x, y, z mm
ED, ES = 1, 5  # 1-based, as in Info.cfg


def lv_radius(t: int) -> float:
    """LV cavity radius (pixels) over the cycle: largest at ED (t=0), smallest at ES."""
    return 7.0 - 3.0 * max(0.0, np.sin(np.pi * t / (2 * (ES - 1))))


def label_slice(t: int, z: int, centre=(22, 20)) -> np.ndarray:
    """(X, Y) labels for frame t of slice z; the top slice (z = Z - 1) has no heart (beyond the apex)."""
    if z == Z - 1:
        return np.zeros((X, Y), dtype=np.uint8)
    x, y = np.mgrid[:X, :Y]
    r = np.hypot(x - centre[0], y - centre[1])
    labels = np.zeros((X, Y), dtype=np.uint8)
    radius = lv_radius(t)
    labels[r <= radius + 3.0] = 2  # myocardium ring, 3 px thick
    labels[r <= radius] = 3
    labels[np.hypot(x - centre[0] + 14, y - centre[1]) <= 5.0] = 1  # RV
    return labels


def intensity(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lut = np.array([30, 200, 90, 220], dtype=float)  # bg, RV, MYO, LV
    return np.clip(lut[labels] + rng.normal(0, 4, labels.shape), 0, 255).astype(np.uint8)


def _save(array: np.ndarray, path: Path) -> None:
    affine = np.diag([*SPACING, 1.0])
    image = nib.Nifti1Image(array, affine)
    image.header.set_zooms(SPACING + ((1.0,) if array.ndim == 4 else ()))
    nib.save(image, str(path))


def write_patient(root: Path, patient: str, group: str = "NOR", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / patient
    folder.mkdir(parents=True)
    labels = np.stack([np.stack([label_slice(t, z) for z in range(Z)], axis=-1) for t in range(T)], axis=-1)
    cine = intensity(labels, rng)
    _save(cine, folder / f"{patient}_4d.nii.gz")
    for frame in (ED, ES):
        _save(cine[..., frame - 1], folder / f"{patient}_frame{frame:02d}.nii.gz")
        _save(labels[..., frame - 1], folder / f"{patient}_frame{frame:02d}_gt.nii.gz")
    (folder / "Info.cfg").write_text(
        f"ED: {ED}\nES: {ES}\nGroup: {group}\nHeight: 170.0\nNbFrame: {T}\nWeight: 70.0\n")
    return folder


def expected_volumes_ml() -> dict[str, float]:
    """Volumes straight from the label arrays (what the reader must reproduce)."""
    voxel_ml = np.prod(SPACING) / 1000.0
    ed = np.stack([label_slice(ED - 1, z) for z in range(Z)])
    es = np.stack([label_slice(ES - 1, z) for z in range(Z)])
    return {
        "LVEDV": (ed == 3).sum() * voxel_ml, "LVESV": (es == 3).sum() * voxel_ml,
        "LVM": (ed == 2).sum() * voxel_ml * 1.05,
        "RVEDV": (ed == 1).sum() * voxel_ml, "RVESV": (es == 1).sum() * voxel_ml,
    }


def write_acdc(root: Path, patients: dict[str, str]) -> Path:
    """Write healthy patients ``{name: group}`` under ``root``; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for k, (patient, group) in enumerate(patients.items()):
        write_patient(root, patient, group, seed=k)
    return root


def write_split(path: Path, patients: dict[str, str], split: str = "train") -> Path:
    lines = ["patient,group,split"] + [f"{p},{g},{split}" for p, g in patients.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
