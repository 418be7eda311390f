"""The anatomy + motion representation of a cine: ED-frame latent (anatomy) + motion code (motion).

    codec = load_anatomy_motion()                        # weights/frame_ae + weights/motion, sha256 checked
    anatomy, motion = codec.encode(frames)               # (N, T, H, W) -> (N, 8, 16, 16), (N, 5, 2, 16, 16)
    frames = codec.decode(anatomy, motion)               # -> (N, T, H, W) in [0, 1], frame 0 = ED

Decoding: the frame autoencoder decodes the anatomy latent to a sharp ED frame; the motion model warps that
frame through the cycle. Encoding: the ED frame (frame 0) through the autoencoder; the motion code fitted
against the *decoded* ED frame, so it corrects for what the anatomy code lost where it can. This is what the
generators of the issue "Hearts that follow their conditions" draw, and its round trip of real cines is the
``recon`` generator of the evaluator (the ceiling of any generator in this space).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cardiosynth.models.frame_ae import FrameAutoencoder, decode_latents, encode_frames, load_frame_ae
from cardiosynth.models.motion import MotionModel, load_motion


class AnatomyMotionCodec(nn.Module):
    def __init__(self, frame_ae: FrameAutoencoder, motion: MotionModel):
        super().__init__()
        if frame_ae.config.size != motion.config.size:
            raise ValueError(f"frame autoencoder ({frame_ae.config.size} px) and motion model "
                             f"({motion.config.size} px) were made for different frame sizes")
        self.frame_ae, self.motion = frame_ae, motion

    @property
    def frames(self) -> int:
        return self.motion.config.frames

    def _cines(self, frames) -> torch.Tensor:
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(np.asarray(frames, dtype=np.float32))
        c = self.motion.config
        if not torch.is_tensor(frames) or frames.dim() != 4 or tuple(frames.shape[1:]) != (c.frames, c.size, c.size):
            shape = tuple(frames.shape) if torch.is_tensor(frames) else type(frames).__name__
            raise ValueError(f"cines must be (N, {c.frames}, {c.size}, {c.size}) float in [0, 1]; got {shape}")
        if not torch.isfinite(frames).all():
            raise ValueError("cines contain NaN or infinite values (a frame could not be read?)")
        frames = frames.float()
        if frames.min() < -1e-3 or frames.max() > 1 + 1e-3:
            raise ValueError(f"cines must lie in [0, 1]; got {float(frames.min()):.3g}..{float(frames.max()):.3g}")
        return frames

    def encode(self, frames) -> tuple[torch.Tensor, torch.Tensor]:
        """Cines (N, T, H, W) -> (scaled anatomy latents (N, C, h, w), standardised motion codes (N, k, 2, g, g))."""
        frames = self._cines(frames)
        anatomy = encode_frames(self.frame_ae, frames[:, 0])
        ed = decode_latents(self.frame_ae, anatomy)
        return anatomy, self.motion.encode(frames, ed=ed)

    @torch.inference_mode()
    def decode(self, anatomy, motion) -> torch.Tensor:
        """(anatomy latents, motion codes) -> cines (N, T, H, W) float32 in [0, 1]."""
        return self.motion.decode(decode_latents(self.frame_ae, anatomy), motion)

    def reconstruct(self, frames) -> torch.Tensor:
        return self.decode(*self.encode(frames))


def load_anatomy_motion(frame_ae: str = "frame_ae", motion: str = "motion") -> AnatomyMotionCodec:
    """The bundled representation (or the given weight folders)."""
    return AnatomyMotionCodec(load_frame_ae(frame_ae), load_motion(motion))
