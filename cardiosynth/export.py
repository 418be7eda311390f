"""Write cines to the files people use: NIfTI (analysis tools), npz (pretraining pipelines), DICOM (PACS and
clinical viewers), GIF and MP4 (slides, the app). Every write goes to a temporary file first and is renamed into
place, so an interrupted run never leaves a half-written cine that looks complete.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from cardiosynth.cine import Cine

FORMATS = ("nii.gz", "npz", "dcm", "gif", "mp4")
DISPLAY_SCALE = 4  # GIF / MP4 pixels per cine pixel (64 px cines are too small to see)


def cine_format(path: str | Path) -> str:
    name = Path(path).name.lower()
    for fmt in FORMATS:
        if name.endswith("." + fmt):
            return fmt
    raise ValueError(f"Unknown cine file type for {Path(path).name}: use one of " + ", ".join("." + f for f in FORMATS))


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path`` (same suffix) and move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "." + cine_format(path) if path.name.lower().endswith(FORMATS) else path.suffix
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def display_frames(cine: Cine, scale: int = DISPLAY_SCALE) -> np.ndarray:
    """uint8 (T, H*scale, W*scale): nearest-neighbour upscaled, so what you see is what the model made."""
    frames = np.round(np.clip(cine.frames, 0, 1) * 255).astype(np.uint8)
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


# Slice thickness written when a cine does not carry its own (``cine.metadata["slice_thickness_mm"]``): the
# ACDC data the models learned from has 5-10 mm slices, 10 mm for 73 of the 85 subjects in
# ``acdc/phenotypes.csv`` (median 10 mm; the rest 5, 6.5 or 7 mm), so a synthetic slice is written as 10 mm thick.
DEFAULT_SLICE_THICKNESS_MM = 10.0
XFORM_SCANNER, XFORM_ALIGNED = 1, 2  # NIfTI qform/sform codes: NIFTI_XFORM_SCANNER_ANAT, NIFTI_XFORM_ALIGNED_ANAT


def nifti_volume(cine: Cine) -> np.ndarray:
    """float32 (W, H, 1, T): the inverse of the reading contract ``frames[t] = vol[:, :, z, t].T``, i.e. NIfTI's
    i runs along the cine's columns and j along its rows."""
    return np.ascontiguousarray(cine.frames.transpose(2, 1, 0), dtype=np.float32)[:, :, None, :]


def _positive_metadata(cine: Cine, key: str) -> float | None:
    """``cine.metadata[key]`` as a positive finite number, or None when it is missing or not one."""
    try:
        value = float(cine.metadata.get(key))
    except (AttributeError, TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def slice_thickness(cine: Cine) -> tuple[float, str]:
    """``(mm, where it came from)``: the cine's own ``metadata["slice_thickness_mm"]`` (real cines carry their
    source's), else :data:`DEFAULT_SLICE_THICKNESS_MM`."""
    value = _positive_metadata(cine, "slice_thickness_mm")
    if value is not None:
        return value, "cine metadata"
    return DEFAULT_SLICE_THICKNESS_MM, "default (ACDC: 10 mm for most subjects)"


def frame_interval(cine: Cine) -> float:
    """Seconds per frame when the caller gives none: the cine's own heartbeat over its frames where it carries
    one (ECG-driven cines: ``metadata["rr_s"]``), else one heartbeat of 1 s."""
    return (_positive_metadata(cine, "rr_s") or 1.0) / cine.n_frames


def nifti_geometry(cine: Cine) -> tuple[np.ndarray, int, float, str]:
    """``(affine, xform code, slice thickness mm, thickness source)`` for :func:`nifti_volume`'s (i, j, k) grid.

    - A cine that carries its source's affine (``cine.metadata["affine"]``, 4 x 4, for this same (i = column,
      j = row) grid, e.g. an edited real cine) keeps it, written with code 1 (scanner: the source's world
      coordinates); its voxel sizes must match the cine's pixel spacing, else it describes another grid and
      is refused.
    - Otherwise the affine is ``diag(-col spacing, -row spacing, thickness)``, i.e. (i, j, k) -> (L, P, S),
      the orientation of the ACDC files the models learned from (their affines are ``diag(-dx, -dy, dz)``), so
      a synthetic cine opens in a viewer the way the real cines do; the in-plane centre sits at world (0, 0)
      and the slice at z = 0. Code 2 (aligned): the axes follow anatomy, but no scanner placed this slice.
    """
    col_mm, row_mm = cine.spacing_mm[1], cine.spacing_mm[0]
    source = cine.metadata.get("affine") if cine.metadata else None
    if source is not None:
        affine = np.asarray(source, dtype=float)
        if affine.shape != (4, 4) or not np.isfinite(affine).all() or not np.allclose(affine[3], [0, 0, 0, 1]):
            raise ValueError(f"The cine's source affine must be a finite 4 x 4 matrix with last row 0 0 0 1; "
                             f"got {affine.tolist()}")
        sizes = np.linalg.norm(affine[:3, :3], axis=0)
        if not np.allclose(sizes[:2], (col_mm, row_mm), rtol=1e-3) or sizes[2] <= 0:
            raise ValueError(f"The cine's source affine has voxel sizes {np.round(sizes, 4).tolist()} mm but the "
                             f"cine's (column, row) spacing is ({col_mm}, {row_mm}) mm: it describes another grid "
                             f"(was the cine resampled?); drop metadata['affine'] or give the resampled grid's")
        return affine, XFORM_SCANNER, float(sizes[2]), "source affine"
    thickness, where = slice_thickness(cine)
    affine = np.diag([-col_mm, -row_mm, thickness, 1.0])
    centre = np.array([(cine.shape[2] - 1) / 2.0, (cine.shape[1] - 1) / 2.0, 0.0])
    affine[:3, 3] = -affine[:3, :3] @ centre
    return affine, XFORM_ALIGNED, thickness, where


#: What a cine carries about its place in space (set by :mod:`cardiosynth.pipelines.real_cine` for a real slice,
#: and kept by an edit, whose pixels lie on the same grid): ``affine`` (see :func:`nifti_geometry`),
#: ``frame_of_reference_uid`` (the DICOM Frame of Reference it shares with its source's other exports), and
#: ``placement`` and ``frame_of_reference_from``, which say in words where those came from.
PLACEMENT_KEYS = ("affine", "frame_of_reference_uid", "placement", "frame_of_reference_from")
DEFAULT_PLACEMENT = ("default, not a scanner's: axial-like axes as in ACDC's files (rows run to the patient's back, "
                     "columns to the patient's left), the slice centre at the origin")
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # NIfTI's world: +x right, +y anterior; DICOM's: +x left, +y back


def placement(cine: Cine) -> dict[str, str]:
    """Where the cine's geometry and its Frame of Reference UID come from, in words, for the files' comments: a
    reader must be able to tell a source's real placement from the default one that no scanner made."""
    metadata = cine.metadata or {}
    if metadata.get("affine") is None:
        return {"placement": DEFAULT_PLACEMENT,
                "frame_of_reference_from": "new for this file (no scanner placed this cine)"}
    return {"placement": str(metadata.get("placement", "the cine's source affine")),
            "frame_of_reference_from": str(metadata.get("frame_of_reference_from",
                                                        "new for this file (the source gave none)"))}


@dataclass(frozen=True)
class DicomPlane:
    """The cine's plane in DICOM patient coordinates (LPS, mm): what a viewer needs to place it in space."""

    orientation: tuple[float, ...]  # Image Orientation (Patient): along a row (column index grows), down a column
    position: tuple[float, float, float]  # Image Position (Patient): the centre of the top-left pixel
    pixel_spacing: tuple[float, float]  # (between rows, between columns): DICOM's order
    thickness: float
    frame_of_reference_uid: str


def _carried_frame_of_reference(cine: Cine) -> str | None:
    """The cine's own Frame of Reference UID, only when it also carries the source affine it belongs with: a
    default placement shares no space with anything, so claiming a source's frame for it would mislead."""
    from pydicom.uid import UID

    metadata = cine.metadata or {}
    carried = str(metadata.get("frame_of_reference_uid") or "")
    return carried if carried and metadata.get("affine") is not None and UID(carried).is_valid else None


def dicom_plane(cine: Cine) -> DicomPlane:
    """The NIfTI export's geometry (:func:`nifti_geometry`) in DICOM's terms, so that both files put every pixel
    at the same place: the affine's (i = column, j = row) axes taken from NIfTI's RAS world into DICOM's LPS
    patient coordinates. Frame of Reference UID: the cine's own (shared with its source's other exports, see
    :func:`_carried_frame_of_reference`), else a new one."""
    from pydicom.uid import generate_uid

    affine, _, thickness, _ = nifti_geometry(cine)
    lps = RAS_TO_LPS @ affine
    across, down = lps[:3, 0], lps[:3, 1]  # one column to the right, one row down
    col_mm, row_mm = float(np.linalg.norm(across)), float(np.linalg.norm(down))
    if abs(float(across @ down)) > 1e-3 * col_mm * row_mm:
        raise ValueError("The cine's affine shears its rows against its columns; DICOM needs them at right angles")
    return DicomPlane(orientation=tuple(float(v) for v in (*across / col_mm, *down / row_mm)),
                      position=tuple(float(v) for v in lps[:3, 3]), pixel_spacing=(row_mm, col_mm),
                      thickness=float(thickness),
                      frame_of_reference_uid=str(_carried_frame_of_reference(cine) or generate_uid()))


def _place(ds, plane: DicomPlane, n_frames: int, decimal) -> None:
    """Frame of Reference and Multi-frame Functional Groups modules: how the multi-frame Secondary Capture IOD
    says where its frames lie (it has no Image Plane module; its functional groups are Pixel Measures, Plane
    Orientation (Patient) and Plane Position (Patient)). Spacing and orientation are shared by every frame; the
    position is given per frame (all equal: a cine is one plane over time), as scanners write Enhanced MR
    cines, since some readers look for it only there. The module also requires a Content Date and Time: they
    are when this file was written, not when any heart was scanned."""
    from datetime import datetime

    def item(**attributes) -> list:  # a sequence of one item
        return [_dataset(attributes)]

    ds.FrameOfReferenceUID = plane.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""  # type 2: no anatomical landmark is known
    now = datetime.now()
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    shared = _dataset({"PixelMeasuresSequence": item(PixelSpacing=[decimal(mm) for mm in plane.pixel_spacing],
                                                     SliceThickness=decimal(plane.thickness)),
                       "PlaneOrientationSequence": item(ImageOrientationPatient=[decimal(v) for v in
                                                                                 plane.orientation])})
    ds.SharedFunctionalGroupsSequence = [shared]
    position = [decimal(v) for v in plane.position]
    ds.PerFrameFunctionalGroupsSequence = [_dataset({"PlanePositionSequence": item(ImagePositionPatient=position)})
                                           for _ in range(n_frames)]


def _dataset(attributes: dict):
    """A pydicom Dataset with ``attributes`` (keyword -> value) set."""
    from pydicom import Dataset

    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


IDENTIFYING_KEYS = ("ecg_file",)  # condition keys that may carry a patient's name, kept out of DICOM files
DICOM_MAX = 4095  # DICOM stored values: 12 bits, intensity 0..1 -> 0..4095 (quantisation step 1/4095)


def _without_identifiers(value):
    """``value`` with every :data:`IDENTIFYING_KEYS` entry removed, at any depth."""
    if isinstance(value, dict):
        return {k: _without_identifiers(v) for k, v in value.items() if k not in IDENTIFYING_KEYS}
    return value


def dicom_dataset(cine: Cine, info: dict, frame_seconds: float):
    """One multi-frame DICOM object for the cine: Multi-frame Grayscale Word Secondary Capture (SOP class
    1.2.840.10008.5.1.4.1.1.7.3), explicit VR little endian, MONOCHROME2, 12 of 16 bits (0..4095).

    Why this IOD: MR Image Storage is single-frame (a cine would be T files) and, like Enhanced MR (multi-frame,
    but per-frame functional groups), requires acquisition attributes (sequence, echo/repetition time, patient
    position and orientation) that no scanner produced here, so they would have to be invented; viewers also
    support Enhanced MR unevenly. Secondary Capture is the IOD for images not acquired by a modality,
    has Conversion Type "SYN" (synthetic) for exactly this, carries Pixel Spacing and a Cine module (Frame
    Time), and every viewer and PACS opens and plays it; the word (16-bit) variant keeps 12-bit grey levels.

    Labelled synthetic (Synthetic Data YES, Conversion Type SYN) unless the cine's source says it is a real
    one ("real:..."): a cine of unknown origin came from this generator, and mistaking a synthetic image for
    an acquired one is the error to avoid. Image Type DERIVED\\SECONDARY; Derivation Description names the
    model (``cine.source``) and seed (``cine.metadata``); Image Comments holds ``info`` as JSON (the
    conditions, as in the NIfTI extension, and :func:`placement`). Patient and study attributes are present
    (type 2) but empty: no name, ID, birth date or study dates (the one date is Content Date / Time, when the
    file was written, see :func:`_place`). Study, Series and SOP Instance UIDs are new on every call. Window
    centre 2048 / width 4096 (rescale slope 1, intercept 0) shows 0..1 as black..white, as the app does. Frame
    Time (ms) from ``frame_seconds``, with Frame Increment Pointer at it so viewers play the cine at that rate.

    Placed in space like the NIfTI export (:func:`dicom_plane`): Frame of Reference UID, and in the functional
    groups Image Orientation / Position (Patient), Pixel Spacing and Slice Thickness (also at the top level, as
    before). A real slice or an edit of one carries its source's placement and shares its Frame of Reference
    with the source's other exports, so a viewer overlays them; a de novo cine gets the default geometry and a
    new Frame of Reference, and Image Comments says which (``placement``).
    """
    from pydicom import Dataset, uid

    def decimal(value: float) -> float:
        return round(float(value), 6)  # a DS is at most 16 characters: "203.075", not "203.07500000000002"

    synthetic = not cine.source.startswith("real:")
    seed = (cine.metadata or {}).get("seed", info.get("seed", "not recorded"))
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, for the JSON comment and any source name
    ds.SOPClassUID = uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid.generate_uid(), uid.generate_uid()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "ReferringPhysicianName", "StudyID", "AccessionNumber", "PatientOrientation"):
        setattr(ds, keyword, "")  # type 2: present, empty
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "MR", 1, 1, "CardioSynth"
    ds.SeriesDescription = f"CardioSynth cine, slice position {cine.slice_position:.2f} (0 base, 1 apex)"
    ds.ConversionType, ds.SyntheticData = ("SYN", "YES") if synthetic else ("WSD", "NO")
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = (f"Synthetic image generated by CardioSynth, model {cine.source.split(':', 1)[-1]}, "
                                f"seed {seed}" if synthetic else f"Exported by CardioSynth from {cine.source}")
    # the uploaded ECG's file name is left out: hospital exports are often named after the patient
    ds.ImageComments = json.dumps(_without_identifiers({**info, **placement(cine)}))
    ds.BurnedInAnnotation = "NO"
    plane = dicom_plane(cine)
    ds.PixelSpacing = [decimal(mm) for mm in plane.pixel_spacing]  # (row, column) spacing, as the cine's
    ds.SliceThickness = decimal(plane.thickness)
    _place(ds, plane, cine.n_frames, decimal)
    ds.FrameTime = decimal(1000.0 * frame_seconds)
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    pixels = np.round(np.clip(cine.frames, 0, 1) * DICOM_MAX).astype(np.uint16)
    ds.set_pixel_data(pixels, "MONOCHROME2", bits_stored=12)  # Rows ... Pixel Data, SOP Instance UID, meta
    ds.NumberOfFrames = cine.n_frames  # also for a single frame: the multi-frame IOD requires it
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.WindowCenter, ds.WindowWidth = 2048, DICOM_MAX + 1
    ds.PresentationLUTShape = "IDENTITY"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


#: what a rendered cine was made of (the anatomy bank's exemplar, or the edited heart): written in every format
PROVENANCE_KEYS = ("exemplar", "anatomy_bank", "derived_from", "edited_from")


def save_cine(cine: Cine, path: str | Path, metadata: dict | None = None, frame_seconds: float | None = None) -> Path:
    """Write one cine; the format follows the extension (.nii.gz, .npz, .dcm, .gif, .mp4). ``metadata`` (e.g.
    the conditions) goes into the npz, the NIfTI extension and the DICOM Image Comments, with the cine's
    provenance (:data:`PROVENANCE_KEYS`: the exemplar a rendered cine was made of); ``frame_seconds`` sets
    the frame interval (default :func:`frame_interval`: the cine's heartbeat, else 1 s, over its frames).

    DICOM: one multi-frame Secondary Capture file per slice, placed where the NIfTI puts it, see
    :func:`dicom_dataset`.

    NIfTI: (X, Y, 1, T) with ``vol[:, :, 0, t] = frames[t].T`` (read back with ``vol[:, :, 0, t].T``, as
    :mod:`cardiosynth.data.acdc` reads ACDC), zooms (column spacing, row spacing, slice thickness, frame
    seconds), qform = sform from :func:`nifti_geometry` (synthetic: L, P, S axes like ACDC, code 2 aligned;
    with a source affine: that affine, code 1 scanner). Slice thickness: the cine's
    ``metadata["slice_thickness_mm"]``, else 10 mm (:data:`DEFAULT_SLICE_THICKNESS_MM`, ACDC's usual slice);
    the JSON extension records which, and whose placement the affine is (:func:`placement`)."""
    fmt = cine_format(path)
    frame_seconds = frame_seconds or frame_interval(cine)
    provenance = {k: cine.metadata[k] for k in PROVENANCE_KEYS if k in (cine.metadata or {})}
    info = {"source": cine.source, "slice_position": cine.slice_position, **provenance, **(metadata or {})}
    with atomic_path(path) as temporary:
        if fmt == "nii.gz":
            affine, code, thickness, where = nifti_geometry(cine)
            info.update(slice_thickness_mm=thickness, slice_thickness_from=where, **placement(cine))
            image = nib.Nifti1Image(nifti_volume(cine), affine)
            image.header.set_qform(affine, code=code)
            image.header.set_sform(affine, code=code)
            image.header.set_zooms((*np.linalg.norm(affine[:3, :3], axis=0), frame_seconds))
            image.header.set_xyzt_units("mm", "sec")
            image.header["descrip"] = cine.source[:79].encode()
            image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(info).encode()))
            nib.save(image, temporary)
        elif fmt == "dcm":
            dicom_dataset(cine, info, frame_seconds).save_as(temporary, enforce_file_format=True)
        elif fmt == "npz":
            np.savez_compressed(temporary, frames=cine.frames, valid=cine.valid, spacing_mm=np.asarray(cine.spacing_mm),
                                slice_position=np.float32(cine.slice_position), metadata=json.dumps(info))
        else:
            import imageio.v2 as imageio

            frames = display_frames(cine)
            if fmt == "gif":
                imageio.mimsave(temporary, list(frames), format="GIF", duration=frame_seconds * 1000, loop=0)
            else:
                imageio.mimsave(temporary, list(frames), format="FFMPEG", fps=1.0 / frame_seconds, codec="libx264",
                                quality=8, pixelformat="yuv420p", macro_block_size=16)
    return Path(path)


def load_npz_cine(path: str | Path) -> tuple[Cine, dict]:
    """Read back a cine written by :func:`save_cine` as npz (no pickle) and its metadata."""
    with np.load(path, allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"]))
        cine = Cine(data["frames"], tuple(data["spacing_mm"]), float(data["slice_position"]), data["valid"],
                    source=metadata.get("source", "unknown"))
    return cine, metadata
