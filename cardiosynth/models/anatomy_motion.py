"""The anatomy + motion representation of a cine: ED-frame latent (anatomy) + motion code (motion).

    codec = AnatomyMotionCodec.from_pretrained()                        # weights/frame_ae + weights/motion, sha256 checked
    anatomy, motion = codec.encode(frames)               # (N, T, H, W) -> (N, 8, 16, 16), (N, 5, 2, 16, 16)
    frames = codec.decode(anatomy, motion)               # -> (N, T, H, W) in [0, 1], frame 0 = ED
    codes = codec.encode_codes(frames)                   # -> (N, 8 + 2k, 1, 16, 16): both on one grid, what the MAR draws
    frames = codec.decode_codes(codes)

Decoding: the frame autoencoder decodes the anatomy latent to a sharp ED frame; the motion model warps that
frame through the cycle. Encoding: the ED frame (frame 0) through the autoencoder; the motion code fitted
against the *decoded* ED frame, so it corrects for what the anatomy code lost where it can. This is what the
generators of the issue "Hearts that follow their conditions" draw, and its round trip of real cines is the
``recon`` generator of the evaluator (the ceiling of any generator in this space).

The *packed code* stacks the two on their shared 16 x 16 grid (anatomy channels first, then the motion
code's k x (dy, dx) channels) as a (C, 1, g, g) "latent" with one time step: a generator's token at a grid
position then holds that patch's anatomy and its motion together, so the two cannot drift apart in space,
and a generator that knows the anatomy channels can draw the motion channels alone (editing a real heart).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cardiosynth.models.frame_ae import FrameAutoencoder, decode_frames, encode_frames
from cardiosynth.models.motion import MotionModel


class AnatomyMotionCodec(nn.Module):
    """A cine as its ED frame's autoencoder latent (anatomy) and a motion code; two weight folders, not one."""

    @classmethod
    def from_pretrained(cls, frame_ae: str | Path = "frame_ae", motion: str | Path = "motion") -> "AnatomyMotionCodec":
        """The bundled representation (or the given weight folders)."""
        return cls(FrameAutoencoder.from_pretrained(frame_ae), MotionModel.from_pretrained(motion))

    def __init__(self, frame_ae: FrameAutoencoder, motion: MotionModel):
        super().__init__()
        if frame_ae.config.size != motion.config.size:
            raise ValueError(f"frame autoencoder ({frame_ae.config.size} px) and motion model "
                             f"({motion.config.size} px) were made for different frame sizes")
        self.frame_ae, self.motion = frame_ae, motion

    @property
    def frames(self) -> int:
        return self.motion.config.frames

    @property
    def anatomy_channels(self) -> int:
        return self.frame_ae.config.latent_channels

    @property
    def cine_shape(self) -> tuple[int, int, int]:
        """(T, H, W) of the cines this representation encodes."""
        c = self.motion.config
        return (c.frames, c.size, c.size)

    @property
    def code_shape(self) -> tuple[int, int, int, int]:
        """Shape of one packed code: (anatomy channels + 2 k, 1, g, g)."""
        k, _, g, _ = self.motion.config.code_shape
        return (self.anatomy_channels + 2 * k, 1, g, g)

    def pack(self, anatomy: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """(N, C, g, g) anatomy + (N, k, 2, g, g) motion -> (N, C + 2k, 1, g, g)."""
        if anatomy.shape[-2:] != motion.shape[-2:]:
            raise ValueError(f"anatomy latent grid {tuple(anatomy.shape[-2:])} and motion grid "
                             f"{tuple(motion.shape[-2:])} differ: the two models cannot be packed on one grid")
        return torch.cat([anatomy, motion.flatten(1, 2)], dim=1)[:, :, None]

    def unpack(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse of :meth:`pack`."""
        if codes.dim() != 5 or tuple(codes.shape[1:]) != self.code_shape:
            raise ValueError(f"packed codes must be (N, {', '.join(map(str, self.code_shape))}); got {tuple(codes.shape)}")
        k, _, g, _ = self.motion.config.code_shape
        codes = codes[:, :, 0]
        return codes[:, :self.anatomy_channels], codes[:, self.anatomy_channels:].reshape(len(codes), k, 2, g, g)

    def encode_codes(self, frames) -> torch.Tensor:
        """Cines (N, T, H, W) -> packed codes (N, C + 2k, 1, g, g)."""
        return self.pack(*self.encode(frames))

    def encode_anatomy_codes(self, frames) -> torch.Tensor:
        """Cines (N, T, H, W) -> packed codes whose anatomy channels are the ED frames' latents and whose motion
        channels are zero: what a generator that keeps the anatomy and draws the motion is given. Skips the
        motion fit (50 optimiser steps per batch) that :meth:`encode_codes` does."""
        anatomy = encode_frames(self.frame_ae, self._cines(frames)[:, 0])
        return self.pack(anatomy, torch.zeros(len(anatomy), *self.motion.config.code_shape))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Packed codes -> cines (N, T, H, W) in [0, 1]."""
        return self.decode(*self.unpack(codes.float()))


    def _cines(self, frames) -> torch.Tensor:
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(np.asarray(frames, dtype=np.float32))
        if not torch.is_tensor(frames) or frames.dim() != 4 or tuple(frames.shape[1:]) != self.cine_shape:
            shape = tuple(frames.shape) if torch.is_tensor(frames) else type(frames).__name__
            raise ValueError(f"cines must be (N, {', '.join(map(str, self.cine_shape))}) float in [0, 1]; got {shape}")
        if not torch.isfinite(frames).all():
            raise ValueError("cines contain NaN or infinite values (a frame could not be read?)")
        frames = frames.float()
        if frames.min() < -1e-3 or frames.max() > 1 + 1e-3:
            raise ValueError(f"cines must lie in [0, 1]; got {float(frames.min()):.3g}..{float(frames.max()):.3g}")
        return frames

    def encode(self, frames) -> tuple[torch.Tensor, torch.Tensor]:
        """Cines (N, T, H, W) -> (scaled anatomy latents (N, C, h, w), standardised motion codes (N, k, 2, g, g)),
        on the CPU whatever device the models are on."""
        frames = self._cines(frames)
        anatomy = encode_frames(self.frame_ae, frames[:, 0])
        ed = decode_frames(self.frame_ae, anatomy)
        return anatomy, self.motion.encode(frames, ed=ed).cpu()

    @torch.inference_mode()
    def decode(self, anatomy, motion) -> torch.Tensor:
        """(anatomy latents, motion codes) -> cines (N, T, H, W) float32 in [0, 1], on the CPU."""
        return self.motion.decode(decode_frames(self.frame_ae, anatomy), motion).cpu()

    def reconstruct(self, frames) -> torch.Tensor:
        return self.decode(*self.encode(frames))
