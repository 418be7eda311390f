"""Report the bundled 3D-VAE: the reconstruction sheet of validation cines and ``reports/vae3d/metrics.json``
(the figures its trainer measured on exactly the bundled weights, as stored in ``config.json``), or its speed.

    python -m evaluation.vae3d_report [--out weights/vae3d] [--dataset NAME] [--threads N]   # sheet + metrics.json
    python -m evaluation.vae3d_report --bench [--out weights/vae3d] [--threads N]            # seconds per cine (JSON)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from cardiosynth.data.dataset import PreparedDataset, load_prepared
from cardiosynth.models.vae3d import VAE3D, masked_metrics
from cardiosynth.paths import REPO_ROOT
from cardiosynth.weights import read_config
from evaluation.report_command import run_report_command
from training.common import one_cine_per_patient
from training.train_vae3d import bench, reconstruct

REPORT_DIR = REPO_ROOT / "reports" / "vae3d"


def report(out: Path, dataset_name: str = "default", report_dir: Path = REPORT_DIR) -> dict:
    """``report_dir``: the reconstruction sheet of val cines and ``metrics.json`` (sha256, latent shape and scale,
    everything the trainer measured and stored in ``extra``, and the sheet's rows)."""
    model = VAE3D.from_pretrained(out)
    report_dir.mkdir(parents=True, exist_ok=True)
    sheet = reconstruction_sheet(model, load_prepared(dataset_name).split("val"), report_dir / "reconstructions.png")
    summary = {"weights_sha256": read_config(out)["sha256"], "latent_shape": list(model.config.latent_shape),
               "latent_scale": model.config.stats.latent_scale, **model.metrics, "sheet": sheet}
    (report_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    return summary


def reconstruction_sheet(model: VAE3D, dataset: PreparedDataset, path: Path, n_cines: int = 6) -> dict:
    """Rows: val cines from different patients (mid-ventricular first); columns: frames, original | reconstruction."""
    table = dataset.table
    chosen = one_cine_per_patient(table, n_cines)
    target = dataset.cines[chosen].astype(np.float32) / 255.0
    recon = reconstruct(model, dataset.cines[chosen]).numpy()
    metrics = masked_metrics(torch.from_numpy(recon), torch.from_numpy(target), torch.from_numpy(dataset.valid[chosen]))
    t = target.shape[1]
    frames = sorted({0, t // 4, t // 2, 3 * t // 4})
    cols = len(frames) * 2 + 1
    fig = Figure(figsize=(cols * 1.5, len(chosen) * 1.6))
    axes = fig.subplots(len(chosen), cols)
    for r, i in enumerate(chosen):
        for c, f in enumerate(frames):
            for k, (img, label) in enumerate(((target[r, f], "orig"), (recon[r, f], "recon"))):
                ax = axes[r, 2 * c + k]
                ax.imshow(img, cmap="gray", vmin=0, vmax=1)
                if r == 0:
                    ax.set_title(f"t={f} {label}", fontsize=7)
        err = np.abs(recon[r] - target[r]).max(axis=0) * dataset.valid[i]
        axes[r, -1].imshow(err, cmap="magma", vmin=0, vmax=0.3)
        if r == 0:
            axes[r, -1].set_title("max |err| (0-0.3)", fontsize=7)
        axes[r, 0].set_ylabel(f"{table['subject'].iloc[i]}\n{table['group'].iloc[i]} s={table['slice_position'].iloc[i]:.2f}\n"
                              f"{float(metrics['psnr'][r]):.1f} dB / {float(metrics['ssim'][r]):.3f}", fontsize=6)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("3D-VAE reconstructions of validation cines (posterior mean); PSNR / SSIM on valid pixels", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return {"path": str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path),
            "rows": [f"{table['subject'].iloc[i]}/slice{int(table['slice'].iloc[i])}" for i in chosen], "frames": frames}


def main(argv: list[str] | None = None) -> None:
    run_report_command(__doc__, argv, {"--out": {"default": "weights/vae3d", "help": "weights folder"}},
                       lambda args: report(Path(args.out), args.dataset),
                       lambda args: bench(VAE3D.from_pretrained(args.out)),
                       "only time encode/decode of the weights; print JSON")

if __name__ == "__main__":
    main()
