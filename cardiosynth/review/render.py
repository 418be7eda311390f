"""The ONE rendering path of a reader study: every case, real or synthetic, becomes an MP4 the same way, so
that nothing but the pixels can tell them apart.

- Same pixels pipeline: square (padded with black), nearest-neighbour upscale to ``size``, one cardiac cycle
  resampled periodically to ``frames_per_cycle`` frames, played ``cycles`` times at a fixed frame rate.
- Same encoder settings: H.264 (libx264, High, yuv420p), one thread, no B-frames, one keyframe, no scene-cut
  decisions (those are content-dependent and would show in the container's tables).
- Same bytes outside the picture data: every coded frame is padded with an H.264 filler-data NAL unit (type
  12, which decoders skip) to exactly ``frame_bytes``. A blurry synthetic cine compresses smaller than a real
  one; without this the file size alone would give the truth away. With it every file of a study has the
  same size and the same container header, byte for byte.
- No metadata (``-map_metadata -1``, bitexact: no encoder tag, no creation time), a random opaque file name
  and a fixed modification time (files are rendered in random order, too).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from cardiosynth.cine import Cine
from cardiosynth.export import atomic_path
from cardiosynth.review.errors import ReviewError

FIXED_MTIME = 946_684_800  # 2000-01-01 UTC: file dates must not reveal the rendering order
HEADER_ALLOWANCE = 2048  # bytes per frame kept free for SPS/PPS/SEI/AUD and the filler NAL's own header
_NAL_START = re.compile(b"\x00\x00\x01")
_AUD, _FILLER = 9, 12


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class RenderSettings:
    """What every case file of a study looks like; stored with the study."""

    size: int = 256  # output width = height, pixels
    frames_per_cycle: int = 24
    cycles: int = 3  # the cycle is looped inside the file, so every player shows it the same way
    cycle_seconds: float = 1.0  # playback speed: one heartbeat lasts this long
    crf: int = 18  # x264 quality (lower = better); frames are capped to ``frame_bytes`` anyway

    def __post_init__(self):
        if not (64 <= int(self.size) <= 1024 and int(self.size) % 16 == 0):
            raise ReviewError(f"The video size must be a multiple of 16 between 64 and 1024 pixels; got {self.size}.")
        if not 4 <= int(self.frames_per_cycle) <= 120:
            raise ReviewError(f"Frames per cycle must be between 4 and 120; got {self.frames_per_cycle}.")
        if not 1 <= int(self.cycles) <= 10:
            raise ReviewError(f"The number of cycles shown must be between 1 and 10; got {self.cycles}.")
        if not 0.25 <= float(self.cycle_seconds) <= 5:
            raise ReviewError(f"One cycle must last between 0.25 and 5 seconds; got {self.cycle_seconds}.")
        if not 1 <= float(self.fps) <= 60:
            raise ReviewError(f"The frame rate ({float(self.fps):.3g} fps) must be between 1 and 60: change the "
                              "frames per cycle or the cycle duration.")
        if not 0 <= int(self.crf) <= 51:
            raise ReviewError(f"The quality (crf) must be between 0 and 51; got {self.crf}.")

    @property
    def fps(self) -> Fraction:
        return (Fraction(int(self.frames_per_cycle)) / Fraction(str(self.cycle_seconds))).limit_denominator(1000)

    @property
    def n_frames(self) -> int:
        return int(self.frames_per_cycle) * int(self.cycles)

    @property
    def frame_bytes(self) -> int:
        """Every coded frame is exactly this long in the file."""
        return max(4096, int(self.size) ** 2 // 8)

    def as_dict(self) -> dict:
        return {**asdict(self), "fps": float(self.fps), "n_frames": self.n_frames, "frame_bytes": self.frame_bytes}

    @classmethod
    def from_dict(cls, values: dict) -> "RenderSettings":
        names = ("size", "frames_per_cycle", "cycles", "cycle_seconds", "crf")
        return cls(**{name: values[name] for name in names if name in values})


def display_sequence(cine: Cine, settings: RenderSettings) -> np.ndarray:
    """uint8 (n_frames, size, size): the frames exactly as they are encoded."""
    frames = np.clip(cine.frames, 0, 1)
    t, h, w = frames.shape
    side = max(h, w)
    square = np.zeros((t, side, side), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[:, top:top + h, left:left + w] = frames
    # periodic linear interpolation: the cycle wraps from the last frame back to end-diastole
    position = np.arange(settings.frames_per_cycle) * t / settings.frames_per_cycle
    before = np.floor(position).astype(int)
    weight = (position - before)[:, None, None].astype(np.float32)
    cycle = (1 - weight) * square[before % t] + weight * square[(before + 1) % t]
    pixel = (np.arange(settings.size) * side / settings.size).astype(int)  # nearest neighbour
    cycle = cycle[:, pixel][:, :, pixel]
    return np.tile(np.round(cycle * 255).astype(np.uint8), (settings.cycles, 1, 1))


def _run(args: list[str], data: bytes) -> bytes:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *args], input=data,
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.decode(errors='replace')[-500:]}")
    return result.stdout


def encode(frames: np.ndarray, settings: RenderSettings) -> bytes:
    """H.264 Annex-B stream (one access-unit delimiter per frame), each frame held under the VBV cap."""
    n, size = len(frames), settings.size
    frame_bits = (settings.frame_bytes - HEADER_ALLOWANCE) * 8
    fps = f"{settings.fps.numerator}/{settings.fps.denominator}"
    return _run(["-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{size}x{size}", "-framerate", fps, "-i", "pipe:0",
                 "-an", "-c:v", "libx264", "-preset", "medium", "-threads", "1", "-profile:v", "high",
                 "-pix_fmt", "yuv420p", "-crf", str(settings.crf),
                 "-maxrate", str(int(frame_bits * settings.fps)), "-bufsize", str(frame_bits),
                 "-g", str(n), "-keyint_min", str(n), "-sc_threshold", "0", "-bf", "0", "-x264-params", "aud=1",
                 "-fflags", "+bitexact", "-flags:v", "+bitexact", "-f", "h264", "pipe:1"],
                np.ascontiguousarray(frames, np.uint8).tobytes())


def nal_units(stream: bytes) -> list[bytes]:
    """Split an Annex-B stream at its start codes (trailing zero bytes belong to the next start code)."""
    starts = [m.end() for m in _NAL_START.finditer(stream)]
    ends = [m.start() for m in _NAL_START.finditer(stream)][1:] + [len(stream)]
    return [stream[s:e].rstrip(b"\x00") for s, e in zip(starts, ends)]


def pad_access_units(stream: bytes, frame_bytes: int) -> bytes:
    """Drop any filler and append one filler NAL to every access unit so that, stored in MP4 (each NAL behind a
    4-byte length), every frame takes exactly ``frame_bytes``."""
    units: list[list[bytes]] = []
    for nal in nal_units(stream):
        kind = nal[0] & 0x1F
        if kind == _AUD:
            units.append([])
        if not units:
            raise RuntimeError("The encoded stream does not start with an access-unit delimiter")
        if kind != _FILLER:
            units[-1].append(nal)
    out = bytearray()
    for unit in units:
        filler = frame_bytes - sum(4 + len(nal) for nal in unit) - 4  # the filler's own length field
        if filler < 2:
            raise ReviewError("A cine could not be encoded within the fixed frame size; render the study with a "
                              "higher crf (lower quality) so that all cases fit.")
        unit = [*unit, bytes([_FILLER]) + b"\xff" * (filler - 2) + b"\x80"]  # header, 0xFF payload, stop bit
        for nal in unit:
            out += b"\x00\x00\x00\x01" + nal
    return bytes(out)


def mux(stream: bytes, path: Path, settings: RenderSettings) -> None:
    """Annex-B stream -> MP4 without touching the frames; no metadata, no creation time, moov first."""
    fps = f"{settings.fps.numerator}/{settings.fps.denominator}"
    _run(["-f", "h264", "-framerate", fps, "-i", "pipe:0", "-map", "0:v", "-c:v", "copy", "-map_metadata", "-1",
          "-fflags", "+bitexact", "-flags:v", "+bitexact", "-movflags", "+faststart", "-f", "mp4", "-y", str(path)],
         stream)


def render_case(cine: Cine, folder: str | Path, settings: RenderSettings) -> Path:
    """Write one case file under a random opaque name; returns its path."""
    path = Path(folder) / f"{secrets.token_hex(16)}.mp4"
    frames = display_sequence(cine, settings)
    stream = pad_access_units(encode(frames, settings), settings.frame_bytes)
    with atomic_path(path) as temporary:
        mux(stream, temporary, settings)
        temporary.chmod(0o600)
        os.utime(temporary, (FIXED_MTIME, FIXED_MTIME))
    return path


def read_frames(path: str | Path) -> np.ndarray:
    """Decode a case file back to uint8 (n_frames, size, size) grey frames (for checks and tests)."""
    import imageio.v2 as imageio

    frames = imageio.mimread(path, format="FFMPEG", memtest=False)
    return np.stack([np.asarray(f)[..., 0] if np.ndim(f) == 3 else np.asarray(f) for f in frames])
