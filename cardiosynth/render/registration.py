"""Each cine's motion as the full control grids of its registration to its own ED frame, cached on disk.

Registration (``cardiosynth.models.motion.register``: Adam on a 16 x 16 control grid per frame, MSE +
smoothness) costs about 0.7 s per cine on 2 cores, so its results are kept under ``.cache/runs/<name>_<key>/``,
one file per batch; the key names every setting and the prepared dataset, so changed settings never reuse
stale batches, and an interrupted run resumes. Used by the motion model's fit, the anatomy bank's build and the
rendering ceiling (each held-out cine's ED frame warped by its own registration).
"""

from __future__ import annotations

import hashlib
import json

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from cardiosynth.models.motion import MotionConfig, register
from cardiosynth.paths import cache_dir

BATCH = 32  # cines registered together (one cached file each)


def registration_key(config: MotionConfig, dataset_name: str) -> str:
    """Everything the registrations depend on, hashed. The keys are the settings' flat names, so caches
    written before the config was nested (``registration``, once ``recipe``) keep their names."""
    registration = config.registration
    settings = {"frames": config.frames, "size": config.size, "grid": config.grid,
                "register_iterations": registration.register_iterations, "register_lr": registration.register_lr,
                "smoothness_weight": config.smoothness_weight}
    digest = hashlib.sha256(json.dumps({**settings, "dataset": str(dataset_name)}, sort_keys=True).encode())
    return f"{config.name}_{digest.hexdigest()[:10]}"


def registered_controls(cines: torch.Tensor, config: MotionConfig, name: str, dataset_name: str,
                        progress: bool = True) -> torch.Tensor:
    """Control grids (N, T, 2, g, g) of every cine (N, T, H, W), one cached batch at a time under
    ``.cache/runs/<name>_<key>`` (a rerun skips the batches already on disk)."""
    run_dir = cache_dir() / "runs" / f"{name}_{registration_key(config, dataset_name)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for start in tqdm(range(0, len(cines), BATCH), desc="registration", unit="batch", disable=not progress):
        path = run_dir / f"controls_{start:05d}.safetensors"
        if path.is_file():
            out.append(load_file(str(path))["controls"])
            continue
        controls = register(cines[start:start + BATCH], config)
        tmp = path.with_suffix(".tmp")
        save_file({"controls": controls.contiguous()}, str(tmp))
        tmp.replace(path)
        out.append(controls)
    return torch.cat(out)
