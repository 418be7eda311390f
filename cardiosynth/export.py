"""Write cines to the files people use: NIfTI (analysis tools), npz (pretraining pipelines), GIF and MP4
(slides, the app). Every write goes to a temporary file first and is renamed into place, so an interrupted
run never leaves a half-written cine that looks complete.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np

from cardiosynth.cine import Cine

FORMATS = ("nii.gz", "npz", "gif", "mp4")
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


def save_cine(cine: Cine, path: str | Path, metadata: dict | None = None, frame_seconds: float | None = None) -> Path:
    """Write one cine; the format follows the extension (.nii.gz, .npz, .gif, .mp4). ``metadata`` (e.g. the
    conditions) goes into the npz and the NIfTI description; ``frame_seconds`` sets the animation speed
    (default: one heartbeat of 1 s over the cine's frames)."""
    fmt = cine_format(path)
    frame_seconds = frame_seconds or 1.0 / cine.n_frames
    info = {"source": cine.source, "slice_position": cine.slice_position, **(metadata or {})}
    with atomic_path(path) as temporary:
        if fmt == "nii.gz":
            # (H, W, 1, T): one short-axis slice over time, in-plane spacing from the cine, time step in seconds
            image = nib.Nifti1Image(cine.frames.transpose(1, 2, 0)[:, :, None, :].astype(np.float32),
                                    np.diag([cine.spacing_mm[0], cine.spacing_mm[1], 1.0, 1.0]))
            image.header.set_zooms((*cine.spacing_mm, 1.0, frame_seconds))
            image.header.set_xyzt_units("mm", "sec")
            image.header["descrip"] = cine.source[:79].encode()
            image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(info).encode()))
            nib.save(image, temporary)
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
