"""Report the anatomy + motion representation (frame autoencoder + motion model) on held-out cines, and write
the motion model card's evaluation section from the measured reports.

    python -m evaluation.motion_report [--split val|test] [--dataset NAME] [--threads N]   # PSNR, LVEF, speed, sheet
    python -m evaluation.motion_report --bench [--threads N]                                # seconds per cine (JSON)

The report round-trips held-out cines through the bundled representation (ED frame through the frame
autoencoder, motion code fitted against the decoded ED frame), reads LVEF off both with the bundled
measurer, and writes ``reports/anatomy_motion/<split>/metrics.json`` and a sheet (real | 3D-VAE | anatomy +
motion at ED and ES for 6 cines of 6 patients). The realism figures (classifier two-sample test, anatomy
checks) come from the evaluator: ``python -m evaluation.evaluate --generator recon ...``. Then it rewrites the
evaluation section of ``weights/motion`` (``extra["evaluation"]`` and the card) from every split's reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from cardiosynth.cine import Cine
from cardiosynth.data.dataset import PreparedDataset, load_prepared
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.measure.metrics import bootstrap_ci
from cardiosynth.measure.timing import time_callable
from cardiosynth.models.anatomy_motion import AnatomyMotionCodec
from cardiosynth.models.cards.motion import model_card
from cardiosynth.models.motion import MotionConfig
from cardiosynth.models.vae3d import VAE3D, decode_cines, encode_cines, masked_metrics
from cardiosynth.paths import REPO_ROOT
from cardiosynth.weights import read_config, resolve
from evaluation.report_command import run_report_command
from training.common import one_cine_per_patient

REPORT_DIR = REPO_ROOT / "reports" / "anatomy_motion"


def per_patient_mean(values: np.ndarray, subjects: np.ndarray) -> dict:
    unique = np.unique(subjects)
    per_patient = np.array([np.nanmean(values[subjects == s]) for s in unique])
    low, high = bootstrap_ci(lambda idx: per_patient[idx].mean(), len(per_patient), n_boot=2000, seed=0)
    return {"mean": float(per_patient.mean()), "ci95": [low, high], "n_patients": int(len(unique))}


def lvef_readings(measurer: CineMeasurer, frames: np.ndarray, part: PreparedDataset) -> np.ndarray:
    cines = [Cine(f, (part.config.spacing_mm,) * 2, float(p), part.valid[i])
             for i, (f, p) in enumerate(zip(frames, part.table["slice_position"]))]
    return measurer.measure(cines)[0]["est_LVEF"].to_numpy(float)


def report(split: str, dataset_name: str = "default", report_dir: Path = REPORT_DIR) -> dict:
    """Round trip of one held-out split: PSNR / SSIM, LVEF read off real vs reconstructed, speed, sheet."""
    codec, vae = AnatomyMotionCodec.from_pretrained(), VAE3D.from_pretrained()
    part = load_prepared(dataset_name).split(split)
    real = part.cines.astype(np.float32) / 255.0
    recon = codec.reconstruct(real).numpy()
    vae_recon = decode_cines(vae, encode_cines(vae, real)).numpy()
    measurer = CineMeasurer()
    subjects, truth = part.table["subject"].to_numpy(), part.table["LVEF"].to_numpy(float)
    read = {name: lvef_readings(measurer, frames, part) for name, frames in
            (("real", real), ("recon", recon), ("vae-recon", vae_recon))}
    result = {"split": split, "n_cines": len(part), "dataset": dataset_name,
              "frame_ae_sha256": read_config("frame_ae")["sha256"], "motion_sha256": read_config("motion")["sha256"]}
    for name, frames in (("recon", recon), ("vae-recon", vae_recon)):
        quality = masked_metrics(torch.from_numpy(frames), torch.from_numpy(real), torch.from_numpy(part.valid))
        difference = read[name] - read["real"]
        result[name] = {"psnr_db": per_patient_mean(quality["psnr"].numpy(), subjects),
                        "ssim": per_patient_mean(quality["ssim"].numpy(), subjects),
                        "lvef_read_minus_real_read_abs": per_patient_mean(np.abs(difference), subjects),
                        "lvef_read_minus_real_read_bias": float(np.nanmean(difference)),
                        "lvef_mae_vs_truth": per_patient_mean(np.abs(read[name] - truth), subjects)}
    result["real"] = {"lvef_mae_vs_truth": per_patient_mean(np.abs(read["real"] - truth), subjects)}
    result["speed"] = bench(codec)
    out = report_dir / split
    out.mkdir(parents=True, exist_ok=True)
    result["sheet"] = sheet(part, real, vae_recon, recon, out / "reconstructions.png", measurer)
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    refresh_card(report_dir)
    return result


def refresh_card(report_dir: Path = REPORT_DIR, folder: str = "motion") -> None:
    """Rewrite the motion model card's evaluation section from the measured reports of every split that has
    them (this command's metrics.json, the evaluator's report.json), so the card never states a figure by hand."""
    lines = ["", "## Measured on held-out patients (the whole representation: frame autoencoder + motion)", ""]
    for split in ("val", "test"):
        metrics_path, evaluator_path = report_dir / split / "metrics.json", report_dir / split / "report.json"
        if not metrics_path.is_file():
            continue
        m = json.loads(metrics_path.read_text())
        r = m["recon"]
        lines.append(f"- {split} ({m['n_cines']} cines, {r['psnr_db']['n_patients']} patients): PSNR "
                     f"{r['psnr_db']['mean']:.2f} dB [{r['psnr_db']['ci95'][0]:.2f}, {r['psnr_db']['ci95'][1]:.2f}] "
                     f"(3D-VAE {m['vae-recon']['psnr_db']['mean']:.2f}); LVEF read off the reconstruction differs from "
                     f"the real cine's reading by {r['lvef_read_minus_real_read_abs']['mean']:.2f} points on average "
                     f"(bias {r['lvef_read_minus_real_read_bias']:+.2f}); LVEF MAE against the ground truth "
                     f"{r['lvef_mae_vs_truth']['mean']:.2f} beside the real cines' {m['real']['lvef_mae_vs_truth']['mean']:.2f}.")
        if evaluator_path.is_file():
            e = json.loads(evaluator_path.read_text())
            recon = next((g for g in e["generators"] if g["generator"].startswith("recon")), None)
            control = e.get("turing_control_real_train_vs_heldout") or {}
            if recon and "cnn" in recon.get("turing", {}) and "cnn" in control:
                t, a, real = recon["turing"], recon["anatomy"], e["anatomy_real_heldout"]
                lines.append(f"  Automated Turing test (C2ST AUC, CNN / segmenter features): {t['cnn']['auc']:.2f} / "
                             f"{t['features']['auc']:.2f} against the real-vs-real control {control['cnn']['auc']:.2f} / "
                             f"{control['features']['auc']:.2f}; frames passing every anatomy check "
                             f"{100 * a['all']['share']:.1f} % (real {100 * real['all']['share']:.1f} %). "
                             f"`{e['command']}`")
    speed = json.loads((report_dir / "val" / "metrics.json").read_text())["speed"] if \
        (report_dir / "val" / "metrics.json").is_file() else None
    if speed:
        lines.append(f"- Speed (batch 1, {speed['threads']} threads): encode {speed['encode_s_per_cine']} s, decode "
                     f"{speed['decode_s_per_cine']} s per cine (`python -m evaluation.motion_report --bench`).")
    lines += ["- Sheets (real | 3D-VAE | anatomy + motion, ED and ES): `reports/anatomy_motion/<split>/reconstructions.png`;"
              " how the settings were chosen: `reports/anatomy_motion/README.md`.", "",
              "![validation cines: real, 3D-VAE, anatomy + motion](../../reports/anatomy_motion/val/reconstructions.png)", ""]
    folder_path = resolve(folder)
    payload = json.loads((folder_path / "config.json").read_text())
    payload["extra"]["evaluation"] = "\n".join(lines)
    (folder_path / "config.json").write_text(json.dumps(payload, indent=2))
    config = MotionConfig.from_dict(payload["config"])
    (folder_path / "README.md").write_text(model_card(config, payload["extra"]))


def bench(codec: AnatomyMotionCodec, repeats: int = 10, warmup: int = 2) -> dict:
    """Encode + decode seconds per cine at batch 1 (median after warm-up), with the current thread count."""
    c = codec.motion.config
    x = torch.rand(1, c.frames, c.size, c.size, generator=torch.Generator().manual_seed(0))
    anatomy, motion = codec.encode(x)
    encode = time_callable(lambda: codec.encode(x), 1, warmup, repeats)
    decode = time_callable(lambda: codec.decode(anatomy, motion), 1, warmup, repeats)
    return {"encode_s_per_cine": encode["seconds_per_cine"], "decode_s_per_cine": decode["seconds_per_cine"],
            "encode_plus_decode_s_per_cine": round(encode["seconds_per_cine"] + decode["seconds_per_cine"], 4),
            "batch": 1, "repeats": repeats, "threads": torch.get_num_threads(),
            "anatomy_shape": list(anatomy.shape[1:]), "motion_code_shape": list(motion.shape[1:])}


def sheet(part: PreparedDataset, real: np.ndarray, vae_recon: np.ndarray, recon: np.ndarray, path: Path,
          measurer: CineMeasurer, n_cines: int = 6) -> dict:
    """Rows: cines of different patients (nearest mid-ventricle first); columns: real | 3D-VAE | anatomy +
    motion, at ED (frame 0) and ES (the real cine's smallest LV, read by the measurer)."""
    table = part.table
    chosen = one_cine_per_patient(table, n_cines)
    es_frames = [curve.es_frame for curve in measurer.curves([part.cine(i) for i in chosen])]
    columns = [("real", real), ("3D-VAE", vae_recon), ("anatomy+motion", recon)]
    fig = Figure(figsize=(6 * 1.45, len(chosen) * 1.5))
    axes = fig.subplots(len(chosen), 6)
    for r, (i, es) in enumerate(zip(chosen, es_frames)):
        for c, (phase, t) in enumerate((("ED", 0), ("ES", es))):
            for k, (label, frames) in enumerate(columns):
                ax = axes[r, 3 * c + k]
                ax.imshow(frames[i, t], cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"{label}\n{phase}", fontsize=7)
        axes[r, 0].set_ylabel(f"{table['subject'].iloc[i]} {table['group'].iloc[i]}\ns={table['slice_position'].iloc[i]:.2f}",
                              fontsize=6)
    fig.suptitle(f"Held-out {table['split'].iloc[0]} cines: real, 3D-VAE reconstruction, anatomy + motion "
                 "reconstruction", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return {"path": str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path),
            "rows": [f"{table['subject'].iloc[i]}/slice{int(table['slice'].iloc[i])}" for i in chosen],
            "es_frames": es_frames}


def main(argv: list[str] | None = None) -> None:
    run_report_command(__doc__, argv, {"--split": {"choices": ["val", "test"], "default": "val"}},
                       lambda args: report(args.split, args.dataset),
                       lambda args: bench(AnatomyMotionCodec.from_pretrained()),
                       "encode + decode seconds per cine, batch 1 (JSON)")

if __name__ == "__main__":
    main()
