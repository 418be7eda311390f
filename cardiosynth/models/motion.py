"""Motion model: the *motion* half of the anatomy + motion representation.

A cine is its end-diastolic (ED) frame warped through the cycle: frame t = ED(x + u_t(x)), with u_0 = 0.
Each u_t is a smooth displacement field given by a coarse control grid (``grid`` x ``grid`` points of
(dy, dx) in normalised coordinates, bicubic-upsampled to the image), so a cine's whole motion is a
(T, 2, grid, grid) control tensor. Every frame is then exactly as sharp as the ED frame, and contraction
(EF) is explicit in the fields.

The control tensors of the training cines (found by registration: gradient descent on MSE + smoothness,
:func:`register`) are compressed in time: every control point's trajectory over the cycle is a mean field
plus ``temporal_components`` temporal modes (a PCA of the training trajectories; the first modes are the
contraction and relaxation every point shares), so the *motion code* is a (k, 2, grid, grid) field of mode
amplitudes, standardised to unit variance per mode: what a generator draws, laid out like an image.
Encoding a new cine optimises that code against the image (:meth:`MotionModel.encode`): registration
restricted to the temporal modes seen in training, which is both the regulariser and the compression.

Why not one PCA over whole fields: measured on val, 48 such components explained 49 % of the training
fields' variance (the fields are noisy where the image has no texture) and the rebuilt cines contracted
too little (LVEF read 12 points low); the temporal modes keep every point free in space, and 5 of them
read LVEF 1 point low (k = 5 chosen on val; ``reports/anatomy_motion/README.md``).

No intensity residual: one was measured on val (a low-resolution residual on the same temporal modes); it
raised PSNR (28.2-28.8 dB against 26.9) but not realism (classifier two-sample test CNN AUC 0.91-0.93
against 0.85-0.90 without; ``reports/anatomy_motion/README.md``), so it would only add values to generate.

    motion = MotionModel.from_pretrained()                              # bundled weights/motion (temporal modes), sha256 checked
    code = motion.encode(frames, ed)                    # (N, T, H, W), (N, H, W) -> (N, k, 2, g, g)
    cines = motion.decode(ed, code)                     # -> (N, T, H, W)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cardiosynth.weights import Pretrained, config_from_dict


@dataclass(frozen=True)
class MotionRegistration:
    """How a cine is registered on the full control grid (:func:`register`): the training cines whose
    trajectories the PCA turns into the temporal modes (training.fit_motion), and the real exemplars the renderer
    warps at generation time (cardiosynth.pipelines.rendering, cardiosynth.render.registration, whose cache is
    keyed on these settings). Part of the model, not a training recipe; it does not change what a fitted model
    encodes or decodes (the modes are its buffers)."""

    register_iterations: int = 300
    register_lr: float = 0.01


@dataclass(frozen=True)
class MotionEncoding:
    """Encoding defaults: how :meth:`MotionModel.encode` fits a cine's motion code at inference (Adam on the code,
    from the mean motion); ``encode(..., iterations=)`` overrides the steps per call. Chosen on val."""

    iterations: int = 50  # 50 at lr 0.1 read LVEF as well as 200 at 0.05 on val, in a quarter of the time
    lr: float = 0.1
    code_prior_weight: float = 1e-5  # pulls the standardised code towards the training distribution (|code|^2)


@dataclass(frozen=True)
class MotionConfig:
    """The motion space (frames, grid, temporal modes) and the fitting objective that registration and encoding
    share, then (one dataclass each) the registration settings (training cines and rendered exemplars) and the
    encoding defaults; saved, nested the same way, in ``config.json``. The fitted mean field, modes and code SDs are buffers in
    ``model.safetensors``, not config."""

    name: str = "default"
    frames: int = 16
    size: int = 64
    data_config: str = "default"  # the prepared-data config (cardiosynth.data.prepare.CONFIGS) it is fitted on
    grid: int = 16  # control points per side (8 read LVEF 5 points low on val: too coarse for the wall)
    temporal_components: int = 5  # temporal modes per control point and direction
    # the objective both fits minimise, image MSE + smoothness_weight x smoothness: the registrations the modes
    # come from (training) and the code fit of every encoded cine (inference), so it stays one value here
    smoothness_weight: float = 0.05  # squared control-point differences, relative to the image MSE
    registration: MotionRegistration = field(default_factory=MotionRegistration)
    encoder: MotionEncoding = field(default_factory=MotionEncoding)

    @property
    def control_shape(self) -> tuple[int, int, int, int]:
        return (self.frames, 2, self.grid, self.grid)

    @property
    def code_shape(self) -> tuple[int, int, int, int]:
        return (self.temporal_components, 2, self.grid, self.grid)

    @classmethod
    def from_dict(cls, values: dict) -> "MotionConfig":
        return config_from_dict(cls, values)


CONFIGS = {
    "default": MotionConfig(),
    "paper": MotionConfig(name="paper", frames=50, size=96, data_config="paper", grid=24, temporal_components=6),
}


# ----------------------------------------------------------------------------------------- warping
@lru_cache(maxsize=8)
def _upsampling_matrix(points: int, size: int) -> torch.Tensor:
    """(size, points) matrix of PyTorch's bicubic upsampling (align_corners=True) along one axis. Bicubic
    upsampling is separable, so a control grid upsamples as A @ C @ A^T: the same numbers as F.interpolate,
    but its backward pass is two small matmuls (F.interpolate's bicubic backward was 3x the cost of the
    whole warp on CPU). Column j is the upsampled j-th unit impulse (constant along the other axis). Made
    outside inference mode: the cached matrix also serves encoding, whose autograd cannot use inference tensors."""
    with torch.inference_mode(False), torch.no_grad():
        impulses = torch.eye(points)[:, :, None].expand(points, points, points).contiguous()[:, None]
        return F.interpolate(impulses, size=(size, size), mode="bicubic", align_corners=True)[:, 0, :, 0].T.contiguous()


def displacement(control: torch.Tensor, size: int) -> torch.Tensor:
    """(N, T, 2, g, g) control points -> (N, T, size, size, 2) displacement in grid_sample's (x, y) order."""
    a = _upsampling_matrix(control.shape[-1], size).to(control)
    dense = torch.einsum("hi,ntcij,wj->nthwc", a, control, a)
    return dense.flip(-1)  # (dy, dx) -> (x, y)


def identity_grid(size: int, device=None) -> torch.Tensor:
    """(size, size, 2) sampling grid of the identity map (x, y) in [-1, 1], align_corners=False convention."""
    axis = (torch.arange(size, dtype=torch.float32, device=device) * 2 + 1) / size - 1
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def warp_through_cycle(ed: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
    """Warp ED frames (N, H, W) through the cycle: (N, T, 2, g, g) controls -> (N, T, H, W), bicubic sampling
    (sharper than bilinear) clipped to [0, 1]; outside the image the border is repeated."""
    n, t = control.shape[:2]
    size = ed.shape[-1]
    grid = identity_grid(size, ed.device) + displacement(control, size)
    moving = ed[:, None].expand(n, t, size, size).reshape(n * t, 1, size, size)
    out = F.grid_sample(moving, grid.reshape(n * t, size, size, 2), mode="bicubic", padding_mode="border",
                        align_corners=False)
    return out.view(n, t, size, size).clamp(0, 1)


def smoothness(control: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring control points (both directions), per cine: (N,)."""
    dy = (control[..., 1:, :] - control[..., :-1, :]).pow(2).mean(dim=(1, 2, 3, 4))
    dx = (control[..., :, 1:] - control[..., :, :-1]).pow(2).mean(dim=(1, 2, 3, 4))
    return dy + dx


def _check_cines(frames, config: MotionConfig) -> torch.Tensor:
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.asarray(frames, dtype=np.float32))
    expected = (config.frames, config.size, config.size)
    if not torch.is_tensor(frames) or not frames.is_floating_point() or frames.dim() != 4 \
            or tuple(frames.shape[1:]) != expected:
        shape = tuple(frames.shape) if torch.is_tensor(frames) else type(frames).__name__
        raise ValueError(f"cines must be float (N, {', '.join(map(str, expected))}) in [0, 1]; got {shape}")
    if not torch.isfinite(frames).all():
        raise ValueError("cines contain NaN or infinite values")
    return frames.float()


def register(frames: torch.Tensor, config: MotionConfig, ed: torch.Tensor | None = None,
             iterations: int | None = None) -> torch.Tensor:
    """Registration of each cine's frames to its ED frame (frame 0, or ``ed`` (N, H, W)): Adam on the full
    control grid as the config's ``registration`` says, loss = per-frame MSE + smoothness_weight x smoothness. Returns
    (N, T, 2, g, g), frame 0 zero."""
    frames = _check_cines(frames, config)
    ed = frames[:, 0] if ed is None else ed.float()
    control = torch.zeros(len(frames), *config.control_shape, requires_grad=True)
    optimiser = torch.optim.Adam([control], lr=config.registration.register_lr)
    mask = torch.ones(config.frames, 1, 1, 1)
    mask[0] = 0  # ED stays the anchor: its displacement is zero by definition
    for _ in range(iterations or config.registration.register_iterations):
        moved = control * mask
        loss = ((warp_through_cycle(ed, moved) - frames).pow(2).mean(dim=(1, 2, 3))
                + config.smoothness_weight * smoothness(moved)).sum()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return (control * mask).detach()


# ------------------------------------------------------------------------------------------ the model
class MotionModel(nn.Module, Pretrained):
    """control[t] = mean_field[t] + sum_k (code[k] x code_std[k]) x temporal_basis[k, t]. Buffers only: the
    mean field and the temporal modes come from the training cines' registrations (:meth:`fit`)."""

    config_class = MotionConfig
    default_weights = "motion"

    def __init__(self, config: MotionConfig = CONFIGS["default"]):
        super().__init__()
        self.config = config
        self.register_buffer("mean_field", torch.zeros(config.control_shape))
        self.register_buffer("temporal_basis", torch.zeros(config.temporal_components, config.frames))
        self.register_buffer("code_std", torch.ones(config.temporal_components))

    @torch.no_grad()
    def fit(self, controls: torch.Tensor) -> dict:
        """Mean field and temporal modes from training controls (N, T, 2, g, g); returns explained variance."""
        if controls.dim() != 5 or tuple(controls.shape[1:]) != self.config.control_shape:
            raise ValueError(f"controls must be (N, {', '.join(map(str, self.config.control_shape))}); "
                             f"got {tuple(controls.shape)}")
        if len(controls) < 2:
            raise ValueError(f"need at least 2 training cines to fit the motion modes, got {len(controls)}")
        mean_field = controls.mean(0)
        trajectories = (controls - mean_field).permute(0, 2, 3, 4, 1).reshape(-1, self.config.frames)[:, 1:]
        _, singular, vh = torch.linalg.svd(trajectories.double(), full_matrices=False)
        k = self.config.temporal_components
        self.mean_field.copy_(mean_field)
        self.temporal_basis.zero_()
        self.temporal_basis[:, 1:] = vh[:k].float()  # frame 0 (ED) never moves
        self.code_std.copy_((singular[:k] / np.sqrt(len(trajectories) - 1)).float().clamp_min(1e-8))
        variance = singular.pow(2)
        return {"temporal_explained_variance": float(variance[:k].sum() / variance.sum()),
                "n_training_cines": len(controls)}

    def control(self, code: torch.Tensor) -> torch.Tensor:
        """Standardised codes (N, k, 2, g, g) -> control tensors (N, T, 2, g, g)."""
        return self.mean_field + torch.einsum("nkcij,kt->ntcij", code * self.code_std[:, None, None, None],
                                              self.temporal_basis)

    def project(self, control: torch.Tensor) -> torch.Tensor:
        """Control tensors (N, T, 2, g, g) -> standardised codes (least squares: the modes are orthonormal)."""
        return torch.einsum("ntcij,kt->nkcij", control - self.mean_field,
                            self.temporal_basis) / self.code_std[:, None, None, None]

    def _check_code(self, code: torch.Tensor, n: int) -> torch.Tensor:
        code = torch.as_tensor(code, dtype=torch.float32)
        if code.dim() != 5 or tuple(code.shape[1:]) != self.config.code_shape or len(code) != n:
            raise ValueError(f"motion codes must be (N, {', '.join(map(str, self.config.code_shape))}) with one "
                             f"per ED frame; got {tuple(code.shape)} for {n} frames")
        if not torch.isfinite(code).all():
            raise ValueError("motion codes contain NaN or infinite values")
        return code

    def decode(self, ed, code) -> torch.Tensor:
        """ED frames (N, H, W) and standardised codes (N, k, 2, g, g) -> cines (N, T, H, W) in [0, 1]."""
        device = self.mean_field.device
        ed = torch.as_tensor(ed, dtype=torch.float32).to(device)
        return warp_through_cycle(ed, self.control(self._check_code(code, len(ed)).to(device)))

    def encode(self, frames, ed=None, iterations: int | None = None) -> torch.Tensor:
        """Cines (N, T, H, W) -> standardised codes (N, k, 2, g, g): Adam on the code, from the mean motion
        (code 0), minimising the MSE between ``ed`` (default frame 0) warped by the code and the cine's frames,
        plus the registration's smoothness term and a small prior on the code (steps, lr and prior weight: the
        config's ``encoder`` settings; ``iterations`` overrides the steps).

        Pass the *decoded* ED frame as ``ed`` when the anatomy goes through the frame autoencoder: the code
        then fits the motion of the frame that will actually be warped."""
        device = self.mean_field.device
        frames = _check_cines(frames, self.config).to(device).clone()  # clone: inputs made under inference_mode
        ed = (frames[:, 0] if ed is None else torch.as_tensor(ed, dtype=torch.float32, device=device)).clone()  # are
        code = torch.zeros(len(frames), *self.config.code_shape, device=device, requires_grad=True)  # not differentiable
        settings = self.config.encoder
        optimiser = torch.optim.Adam([code], lr=settings.lr)
        with torch.enable_grad():
            for _ in range(settings.iterations if iterations is None else iterations):
                control = self.control(code)
                loss = ((warp_through_cycle(ed, control) - frames).pow(2).mean(dim=(1, 2, 3))
                        + self.config.smoothness_weight * smoothness(control)
                        + settings.code_prior_weight * code.pow(2).mean(dim=(1, 2, 3, 4))).sum()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
        return code.detach()
