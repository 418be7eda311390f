"""A real short-axis cine from a file -> one slice in the generators' format (what editing a real heart needs).

    volume = read_cine_file("patient001_4d.nii.gz")        # NIfTI 4D (X, Y, Z, T) or 3D (X, Y, T), or a CardioSynth .npz
    cine = prepare_real_slice(volume, slice_index=4)      # (16, 64, 64) at 2.2 mm, centred on the heart, frame 0 = ED

The file gives no masks, so the heart is found the way a reader would look for it: the bundled segmenter on
the slice resampled to the generators' pixel size, first at the image centre, then (if nothing is found
there) on a grid of windows over the field of view; the crop is re-centred on the LV + myocardium + RV it
finds, twice. After that the slice is resampled, its cycle resampled to the frame count and its intensities
normalised exactly as :mod:`cardiosynth.data.prepare` does for ACDC. Frame 0 of the file is taken as end-
diastole (the DICOM / ACDC convention: acquisition is triggered on the R wave). The slice keeps its place in
the file's world (``metadata["affine"]``: the file's affine after the crop's sampling grid, with a Frame of
Reference UID made from the file), so its exports and an edit's lie over the source in a viewer.

Every problem is one :class:`RealCineError` saying what is wrong with the file and what is expected.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from cardiosynth.cine import Cine, CineError
from cardiosynth.data.geometry import CONFIGS as PREPARE_CONFIGS
from cardiosynth.data.geometry import (
    PrepareConfig,
    normalise,
    resample_periodic_frames,
    resample_plane,
    sampling_grid,
    to_rows_cols,
)
from cardiosynth.data.labels import LV, MYO
from cardiosynth.export import DEFAULT_SLICE_THICKNESS_MM, load_npz_cine
from cardiosynth.models.segmenter import Segmenter, segment_cine

MIN_FRAMES = 8  # fewer time points cannot show a cardiac cycle
HEART_MIN_PIXELS = 30  # LV + MYO + RV pixels (2.2 mm) at ED for "a heart was found" ...
LV_MIN_PIXELS = 20  # ... with an LV cavity (~1 cm^2) ...
LV_MIN_RINGED = 0.5  # ... at least half of whose border touches myocardium (noise gives scattered labels)


class RealCineError(ValueError):
    """The file cannot be used as a real short-axis cine; the message says why and what is expected."""


#: What an uploaded NIfTI cine may declare, checked from its header before a byte of data is read (a 400 kB
#: .nii.gz of zeros can declare gigabytes): in-plane size, slices, time points and the data as a whole.
#: (An ACDC or UK Biobank cine is ~256 x 256 pixels, 10-15 slices, 25-50 time points and 30-60 MB.)
MAX_IN_PLANE = 512
MIN_IN_PLANE = 16
MAX_NPZ_BYTES = 64 * 2 ** 20  # a prepared CardioSynth cine (16 x 64 x 64) is a few hundred kB uncompressed
MAX_SLICES = 64
MAX_FRAMES = 100
MAX_DATA_BYTES = 256 * 2 ** 20  # what decompressing the file may cost; one slice is read into memory, not all


@dataclass
class CineVolume:
    """A short-axis stack whose slices are read one at a time: ``read_slice(z)`` -> (T, H, W) in file
    intensities; pixel spacing (row, col) in mm."""

    n_slices: int
    read_slice: Callable[[int], np.ndarray]
    spacing_mm: tuple[float, float]
    name: str = "upload"
    prepared: Cine | None = None  # set when the file already held a prepared CardioSynth cine
    affine: np.ndarray | None = None  # voxel (i = column, j = row, k = slice) -> the file's world (RAS, mm), if placed
    frame_of_reference_uid: str | None = None  # the DICOM Frame of Reference its slices' exports share ...
    frame_of_reference_from: str = ""  # ... and where it came from, in words


def _nifti_volume(path: Path) -> CineVolume:
    """The header checked against the limits above; the data left on disk until a slice is asked for."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
        shape = tuple(int(n) for n in image.header.get_data_shape())
        dtype = np.dtype(image.header.get_data_dtype())
        zooms = tuple(float(z) for z in image.header.get_zooms())
    except Exception as error:  # nibabel raises many types for corrupt files
        raise RealCineError(f"{path.name} could not be read as NIfTI ({type(error).__name__}: {error})") from None
    if len(shape) not in (3, 4):
        raise RealCineError(f"{path.name} has {len(shape)} dimensions {shape}; a cine is 4D (X x Y x slices x "
                            "time) or 3D (X x Y x time)")
    x, y, z, t = (*shape[:2], 1, shape[2]) if len(shape) == 3 else shape
    if dtype.kind not in "uif" or dtype.itemsize > 8:
        raise RealCineError(f"{path.name} stores {dtype} values; a cine holds integer or floating-point intensities")
    if min(x, y) < MIN_IN_PLANE or z < 1:
        raise RealCineError(f"{path.name} declares {x} x {y} pixels and {z} slices; a cine needs at least "
                            f"{MIN_IN_PLANE} x {MIN_IN_PLANE} pixels in each slice")
    if max(x, y) > MAX_IN_PLANE or z > MAX_SLICES or t > MAX_FRAMES:
        raise RealCineError(f"{path.name} declares {x} x {y} pixels, {z} slices and {t} time points; a cine here "
                            f"may have at most {MAX_IN_PLANE} x {MAX_IN_PLANE} pixels, {MAX_SLICES} slices and "
                            f"{MAX_FRAMES} time points")
    if x * y * z * t * dtype.itemsize > MAX_DATA_BYTES:
        raise RealCineError(f"{path.name} declares {x * y * z * t * dtype.itemsize / 1e9:.1f} GB of image data; "
                            f"at most {MAX_DATA_BYTES / 1e9:.1f} GB is accepted")
    if t < MIN_FRAMES:
        raise RealCineError(f"{path.name} has {t} time points; a cine needs at least {MIN_FRAMES} over one cardiac "
                            "cycle (is this a single-phase volume?)")
    spacing = (zooms[1], zooms[0])  # rows run along NIfTI j, columns along i
    if min(spacing) <= 0 or max(spacing) > 10:
        raise RealCineError(f"{path.name} gives pixel spacing {spacing} mm; expected 0.5-10 mm in the header")

    def read_slice(k: int) -> np.ndarray:
        try:
            data = image.dataobj[:, :, k] if len(shape) == 3 else image.dataobj[:, :, k, :]
            data = np.asarray(data, dtype=np.float32).reshape(x, y, t)
        except Exception as error:  # noqa: BLE001 - a truncated or corrupt data block
            raise RealCineError(f"{path.name}: the image data could not be read ({type(error).__name__}: "
                                f"{error})") from None
        if not np.isfinite(data).all():
            raise RealCineError(f"slice {k} of {path.name} contains NaN or infinite values")
        return to_rows_cols(data)  # (T, rows = j, cols = i)

    return CineVolume(z, read_slice, spacing, path.name, affine=_placed_affine(image, len(shape) == 3),
                      frame_of_reference_uid=_frame_of_reference(path),
                      frame_of_reference_from="made from the source file's bytes (a NIfTI carries no Frame of "
                                              "Reference UID): shared by every export of this file's slices")


def _placed_affine(image, third_is_time: bool) -> np.ndarray | None:
    """The file's voxel -> world affine when its header places it (sform or qform code above 0: nibabel's
    ``image.affine`` is then that one), else None: the affine nibabel falls back on is only the voxel sizes.
    In a 3D (X, Y, T) file the third axis is time, so its column says nothing of the slice: it becomes the
    plane's normal at the default slice thickness (the file does not give one)."""
    header = image.header
    if int(header["sform_code"]) <= 0 and int(header["qform_code"]) <= 0:
        return None
    affine = np.asarray(image.affine, dtype=float).copy()
    if third_is_time:
        normal = np.cross(affine[:3, 0], affine[:3, 1])
        affine[:3, 2] = normal / max(float(np.linalg.norm(normal)), 1e-12) * DEFAULT_SLICE_THICKNESS_MM
    return affine if np.isfinite(affine).all() else None


def _frame_of_reference(path: Path) -> str:
    """A DICOM Frame of Reference UID for the file's world. A NIfTI carries none, so one is made from the file's
    bytes: every export of its slices (the real slice, each edit of it, today or later) then shares it, and a
    viewer shows them in one space; another file gets another one."""
    import hashlib

    from pydicom.uid import generate_uid

    with path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return str(generate_uid(entropy_srcs=["cardiosynth frame of reference", digest]))


def _check_npz_size(path: Path) -> None:
    """An .npz is a zip: its members' sizes, stated in the archive, are checked before any is inflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile) as error:
        raise RealCineError(f"{path.name} is not a CardioSynth cine (.npz with frames, spacing_mm, valid, "
                            f"metadata): {error}") from None
    if inflated > MAX_NPZ_BYTES:
        raise RealCineError(f"{path.name} would inflate to {inflated / 1e6:.0f} MB; a CardioSynth cine is at most "
                            f"{MAX_NPZ_BYTES / 1e6:.0f} MB")


def read_cine_file(path: str | Path) -> CineVolume:
    """NIfTI 4D (X, Y, Z, T), NIfTI 3D (X, Y, T: one slice) or a CardioSynth ``.npz`` cine. A NIfTI's header is
    checked against :data:`MAX_DATA_BYTES` and the other limits before any data is read, and its slices are
    read one at a time, when asked for."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".npz"):
        _check_npz_size(path)
        try:
            cine, _ = load_npz_cine(path)
        except (OSError, KeyError, ValueError) as error:
            raise RealCineError(f"{path.name} is not a CardioSynth cine (.npz with frames, spacing_mm, valid, "
                                f"metadata): {error}") from None
        return CineVolume(1, lambda _: cine.frames, cine.spacing_mm, path.name, prepared=cine)
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise RealCineError(f"{path.name}: expected a NIfTI cine (.nii or .nii.gz, 4D X x Y x slices x time) or a "
                            "CardioSynth .npz cine")
    return _nifti_volume(path)


def _crop(frames: np.ndarray, spacing: tuple[float, float], centre: np.ndarray, config: PrepareConfig
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, H, W) source frames -> resampled (T, size, size) planes, valid mask, and the sampling grid."""
    grid = sampling_grid(centre, spacing, config)
    shape = frames.shape[1:]
    valid = (grid[0] >= -0.5) & (grid[0] <= shape[0] - 0.5) & (grid[1] >= -0.5) & (grid[1] <= shape[1] - 0.5)
    sigma = tuple(max(0.0, (config.spacing_mm / s - 1.0) / 2.0) for s in spacing)
    return np.stack([resample_plane(f, grid, 1, sigma) for f in frames]), valid, grid


def _heart(segmenter: Segmenter, ed_plane: np.ndarray, valid: np.ndarray, config: PrepareConfig
           ) -> tuple[int, np.ndarray]:
    """Heart pixels found on the resampled ED frame (1, size, size) and their (row, col) centre in crop pixels."""
    ed, _, _ = normalise(ed_plane, valid, config.intensity_percentiles)
    labels = segment_cine(segmenter, ed, valid)[0]
    lv = labels == LV
    border = ndimage.binary_dilation(lv) & ~lv
    rows, cols = np.nonzero(labels > 0)
    if lv.sum() < LV_MIN_PIXELS or (labels[border] == MYO).mean() < LV_MIN_RINGED:
        return 0, np.zeros(2)
    return len(rows), np.array([(rows.min() + rows.max()) / 2.0, (cols.min() + cols.max()) / 2.0])


def crop_affine(affine: np.ndarray, grid: np.ndarray, z: int) -> np.ndarray:
    """The crop's (i = column, j = row) pixel -> the file's world: the file's affine after the crop's sampling
    grid (``grid[:, r, c]`` = the source (row, col) that crop pixel (r, c) was sampled at, on slice ``z``).
    The grid is a scaled shift of the source's pixels, so three of its points give the whole map."""
    origin = grid[:, 0, 0]
    down, across = grid[:, 1, 0] - origin, grid[:, 0, 1] - origin  # one crop row, one crop column, in source (row, col)
    to_source = np.array([[across[1], down[1], 0.0, origin[1]],  # source i (its column) ...
                          [across[0], down[0], 0.0, origin[0]],  # ... source j (its row) ...
                          [0.0, 0.0, 1.0, float(z)],  # ... and the slice
                          [0.0, 0.0, 0.0, 1.0]])
    return np.asarray(affine, dtype=float) @ to_source


def crop_placement(volume: CineVolume, grid: np.ndarray, z: int, spacing_mm: float) -> dict:
    """The prepared slice's place in the file's world, for its exports (see ``cardiosynth.export.PLACEMENT_KEYS``),
    so that a viewer can lay them over the source: nothing when the file's header does not place it, or when its
    affine and its voxel sizes disagree (the crop was sampled by the voxel sizes, so the affine would put its
    pixels elsewhere)."""
    if volume.affine is None:
        return {}
    affine = crop_affine(volume.affine, grid, z)
    if not np.allclose(np.linalg.norm(affine[:3, :2], axis=0), spacing_mm, rtol=1e-3):
        return {}
    placed = {"affine": affine.tolist(),
              "placement": f"the source file's world coordinates (its affine, RAS; in DICOM as LPS): slice {z}, "
                           f"the {grid.shape[1]} x {grid.shape[2]} window around the heart, resampled"}
    if volume.frame_of_reference_uid:
        placed.update(frame_of_reference_uid=volume.frame_of_reference_uid,
                      frame_of_reference_from=volume.frame_of_reference_from)
    return placed


def find_heart(frames: np.ndarray, spacing: tuple[float, float], segmenter: Segmenter, config: PrepareConfig
               ) -> np.ndarray:
    """(row, col) centre of the heart in source pixels (see the module docstring)."""
    shape = np.asarray(frames.shape[1:], dtype=float)
    half_fov = config.size * config.spacing_mm / 2.0 / np.asarray(spacing)
    starts = [(shape - 1) / 2.0]
    starts += [np.array([r, c]) for r in np.linspace(half_fov[0], shape[0] - half_fov[0], 3)
               for c in np.linspace(half_fov[1], shape[1] - half_fov[1], 3)]
    best = (0, None)
    for start in starts:
        planes, valid, grid = _crop(frames[:1], spacing, start, config)
        found, centre = _heart(segmenter, planes, valid, config)
        if found > best[0]:
            best = (found, grid[:, int(round(centre[0])), int(round(centre[1]))])
        if found >= HEART_MIN_PIXELS:
            break
    if best[0] < HEART_MIN_PIXELS:
        raise RealCineError("No heart was found on this slice (the segmenter sees no left ventricle ringed by "
                            "myocardium at end-diastole): choose a short-axis slice between base and apex")
    centre = best[1]
    for _ in range(2):  # re-centre on what the crop shows
        planes, valid, grid = _crop(frames[:1], spacing, centre, config)
        found, local = _heart(segmenter, planes, valid, config)
        if found < HEART_MIN_PIXELS:
            break
        centre = grid[:, int(round(local[0])), int(round(local[1]))]
    return centre


def prepare_real_slice(volume: CineVolume, slice_index: int | None = None, config: PrepareConfig | str = "default",
                       segmenter: Segmenter | None = None, slice_position: float | None = None) -> Cine:
    """One slice of ``volume`` as a prepared Cine (frame 0 = ED). ``slice_index`` defaults to the middle
    slice; ``slice_position`` (0 base ... 1 apex) defaults to the slice's place in the stack, top = base."""
    config = PREPARE_CONFIGS[config] if isinstance(config, str) else config
    if volume.prepared is not None:
        cine = volume.prepared
        if cine.shape != (config.frames, config.size, config.size):
            raise RealCineError(f"{volume.name} holds a {cine.shape} cine; the generators work on "
                                f"{(config.frames, config.size, config.size)}")
        return cine
    z = volume.n_slices // 2 if slice_index is None else int(slice_index)
    if not 0 <= z < volume.n_slices:
        raise RealCineError(f"{volume.name} has slices 0-{volume.n_slices - 1}; slice {slice_index} does not exist")
    frames = volume.read_slice(z).astype(np.float32)
    if float(frames.max() - frames.min()) <= 0:
        raise RealCineError(f"slice {z} of {volume.name} is blank (one value everywhere)")
    segmenter = segmenter or Segmenter.from_pretrained()
    centre = find_heart(frames, volume.spacing_mm, segmenter, config)
    planes, valid, grid = _crop(frames, volume.spacing_mm, centre, config)
    cine, _, _ = normalise(resample_periodic_frames(planes, config.frames), valid, config.intensity_percentiles)
    cine[:, ~valid] = 0.0
    if slice_position is None:
        slice_position = 0.5 if volume.n_slices == 1 else z / (volume.n_slices - 1)
    try:
        return Cine(cine, (config.spacing_mm, config.spacing_mm), float(slice_position), valid,
                    source=f"real:{volume.name}#slice{z}",
                    metadata={"slice_index": z, **crop_placement(volume, grid, z, config.spacing_mm)})
    except CineError as error:
        raise RealCineError(str(error)) from None
