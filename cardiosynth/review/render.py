"""The ONE rendering path of a reader study: every case, real or synthetic, becomes a GIF the same way, so
that nothing but the pixels can tell them apart.

- Same pixels pipeline: square (padded with black), nearest-neighbour upscale to ``size``, one cardiac cycle
  resampled periodically to ``frames_per_cycle`` frames, ``cycles`` times over; the file loops forever.
- Same bytes outside the pixels, down to each frame: the frames are stored without compression. GIF's LZW
  is driven so that it never builds a dictionary (a clear code every 250 pixels, 9-bit codes, one per
  pixel), so each frame's data has the same length whatever it shows, and every block of the file (header,
  palette, loop and timing extensions, image descriptors, sub-block lengths) is identical between cases.
  A compressing codec cannot promise that: an earlier H.264 path padded every frame to one size with filler
  data, and the length fields of the padding still told each frame's true encoded size, which separated
  real from synthetic cases without decoding a pixel.
- Lossless: 256 grey levels, exactly the rendered frames (no chroma subsampling, no coding artefacts that
  would differ between sharp and smooth cines).
- No metadata, a random opaque file name and a fixed modification time (files are rendered in random
  order, too); the loop starts at a random point of the cycle, so no case file is ever repeated.
"""

from __future__ import annotations

import os
import secrets
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cardiosynth.cine import Cine
from cardiosynth.export import atomic_path
from cardiosynth.review.errors import ReviewError

FIXED_MTIME = 946_684_800  # 2000-01-01 UTC: file dates must not reveal the rendering order
LZW_CODE_BITS = 9  # 8-bit pixels: literal codes 0-255, clear 256, end 257
LITERALS_PER_CLEAR = 250  # below the 254 after which a decoder would widen its codes
_CLEAR, _END = 256, 257


@dataclass(frozen=True)
class RenderSettings:
    """What every case file of a study looks like; stored with the study."""

    size: int = 256  # output width = height, pixels
    frames_per_cycle: int = 24
    cycles: int = 1  # cycles stored in the file (it loops forever in every browser)
    cycle_seconds: float = 1.0  # playback speed: one heartbeat lasts this long (to GIF's 10 ms steps)

    def __post_init__(self):
        try:
            numbers = [float(v) for v in (self.size, self.frames_per_cycle, self.cycles, self.cycle_seconds)]
        except (TypeError, ValueError):
            raise ReviewError("The video size, frames per cycle, cycles and cycle duration must be numbers.") from None
        if not all(np.isfinite(numbers)):
            raise ReviewError("The video size, frames per cycle, cycles and cycle duration must be finite numbers.")
        if not (64 <= int(self.size) <= 1024 and int(self.size) % 16 == 0):
            raise ReviewError(f"The video size must be a multiple of 16 between 64 and 1024 pixels; got {self.size}.")
        if not 4 <= int(self.frames_per_cycle) <= 120:
            raise ReviewError(f"Frames per cycle must be between 4 and 120; got {self.frames_per_cycle}.")
        if not 1 <= int(self.cycles) <= 10:
            raise ReviewError(f"The number of cycles shown must be between 1 and 10; got {self.cycles}.")
        if not 0.25 <= float(self.cycle_seconds) <= 5:
            raise ReviewError(f"One cycle must last between 0.25 and 5 seconds; got {self.cycle_seconds}.")
        if not 2 <= self.frame_delay_cs <= 100:
            raise ReviewError(f"Each frame would show for {self.frame_delay_cs * 10} ms; it must be 20 ms to 1 s "
                              "(browsers slow down shorter frames): change the frames per cycle or the cycle duration.")

    @property
    def frame_delay_cs(self) -> int:
        """How long each frame shows, in GIF's unit (1/100 s)."""
        return int(round(100 * float(self.cycle_seconds) / int(self.frames_per_cycle)))

    @property
    def fps(self) -> float:
        return 100 / self.frame_delay_cs

    @property
    def n_frames(self) -> int:
        return int(self.frames_per_cycle) * int(self.cycles)

    @property
    def frame_bytes(self) -> int:
        """Every frame's pixel data takes exactly this many bytes in the file (sub-block lengths included)."""
        return len(_sub_blocks(lzw_uncompressed(np.zeros(int(self.size) ** 2, np.uint8))))

    def as_dict(self) -> dict:
        return {**asdict(self), "fps": self.fps, "frame_delay_ms": 10 * self.frame_delay_cs,
                "n_frames": self.n_frames, "frame_bytes": self.frame_bytes}

    @classmethod
    def from_dict(cls, values: dict) -> "RenderSettings":
        names = ("size", "frames_per_cycle", "cycles", "cycle_seconds")
        return cls(**{name: values[name] for name in names if name in values})


def display_sequence(cine: Cine, settings: RenderSettings, phase: float = 0.0) -> np.ndarray:
    """uint8 (n_frames, size, size): the frames exactly as they are encoded, the loop starting ``phase``
    (0-1) of a cycle after end-diastole."""
    frames = np.clip(cine.frames, 0, 1)
    t, h, w = frames.shape
    side = max(h, w)
    square = np.zeros((t, side, side), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[:, top:top + h, left:left + w] = frames
    # periodic linear interpolation: the cycle wraps from the last frame back to end-diastole
    position = (np.arange(settings.frames_per_cycle) / settings.frames_per_cycle + float(phase)) % 1.0 * t
    before = np.floor(position).astype(int)
    weight = (position - before)[:, None, None].astype(np.float32)
    cycle = (1 - weight) * square[before % t] + weight * square[(before + 1) % t]
    pixel = (np.arange(settings.size) * side / settings.size).astype(int)  # nearest neighbour
    cycle = cycle[:, pixel][:, :, pixel]
    return np.tile(np.round(cycle * 255).astype(np.uint8), (settings.cycles, 1, 1))


def lzw_uncompressed(pixels: np.ndarray) -> bytes:
    """GIF LZW data that holds every 8-bit pixel as its own 9-bit code, with a clear code before the dictionary
    could grow into wider codes: a valid stream whose length depends only on the number of pixels."""
    pixels = np.asarray(pixels, np.uint16).ravel()
    groups = np.array_split(pixels, max(1, -(-len(pixels) // LITERALS_PER_CLEAR)))
    codes = np.concatenate([np.concatenate(([_CLEAR], g)) for g in groups] + [np.array([_END])]).astype(np.uint16)
    bits = ((codes[:, None] >> np.arange(LZW_CODE_BITS, dtype=np.uint16)) & 1).astype(np.uint8)
    return np.packbits(bits.ravel(), bitorder="little").tobytes()


def _sub_blocks(data: bytes) -> bytes:
    """GIF data sub-blocks (a length byte, up to 255 bytes) and the block terminator."""
    return b"".join(bytes([len(data[k:k + 255])]) + data[k:k + 255] for k in range(0, len(data), 255)) + b"\x00"


def gif_bytes(frames: np.ndarray, delay_cs: int) -> bytes:
    """An animated, endlessly looping, uncompressed greyscale GIF of uint8 (n, h, w) frames."""
    n, height, width = frames.shape
    grey = np.repeat(np.arange(256, dtype=np.uint8), 3).tobytes()  # global palette: index = grey level
    out = [b"GIF89a", struct.pack("<HHBBB", width, height, 0xF7, 0, 0), grey,
           b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"]  # loop forever
    for frame in frames:
        out += [b"\x21\xf9\x04\x04" + struct.pack("<H", delay_cs) + b"\x00\x00",  # keep the frame, then delay
                b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0), b"\x08",
                _sub_blocks(lzw_uncompressed(frame))]
    return b"".join(out) + b"\x3b"


def render_case(cine: Cine, folder: str | Path, settings: RenderSettings, phase: float | None = None) -> Path:
    """Write one case file under a random opaque name; returns its path. The loop starts at a random point of
    the cycle (``phase`` None), drawn afresh for every case of every study: the same real cine shown in two
    studies is then never the same file, so a reader who took part in both cannot match real cases by their
    bytes (blinding across studies)."""
    path = Path(folder) / f"{secrets.token_hex(16)}.gif"
    phase = secrets.SystemRandom().random() if phase is None else phase
    data = gif_bytes(display_sequence(cine, settings, phase), settings.frame_delay_cs)
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
        temporary.chmod(0o600)
        os.utime(temporary, (FIXED_MTIME, FIXED_MTIME))
    return path


def read_frames(path: str | Path) -> np.ndarray:
    """Decode a case file back to uint8 (n_frames, size, size) grey frames (for checks and tests)."""
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        return np.stack([np.asarray(frame.convert("L")) for frame in ImageSequence.Iterator(image)])
