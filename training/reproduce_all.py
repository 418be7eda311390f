"""Reproduce every bundled weight from the data, in dependency order.

    python -m training.reproduce_all [--config default|paper] [--from STEP] [--only STEP]

Steps (each is also its own command): prepare the ACDC cines -> segmenter -> cine encoder -> phenotype
estimator (needs the segmenter) -> phenotype VAE -> the app's reference population (its training patients'
phenotypes) -> frame autoencoder (anatomy; needs the segmenter for its
perceptual loss) -> motion model (registration + PCA) -> anatomy bank (the renderer's real exemplars:
the training slices and their registrations) -> re-identification network (the privacy test) -> 3D-VAE -> MAR (de novo, on 3D-VAE latents) -> editor MAR (needs the
frame autoencoder and the motion model) -> ECG MAE (LUDB) ->
ECG flow (needs the frame autoencoder, the motion model and the ECG MAE; pseudo-pairs). Stops at the first failure; rerun with ``--from`` to go on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

STEPS = {
    "prepare": ["-m", "cardiosynth.data", "prepare", "--config", "{config}"],
    "segmenter": ["-m", "training.train_segmenter", "--config", "{config}", "--out", "weights/segmenter{suffix}"],
    "cine_encoder": ["-m", "training.train_cine_encoder", "--config", "{config}", "--out", "weights/cine_encoder{suffix}"],
    "phenotype_estimator": ["-m", "training.fit_phenotype_estimator", "--dataset", "{config}",
                            "--segmenter", "weights/segmenter{suffix}", "--out", "weights/phenotype_estimator{suffix}"],
    "phenotype_vae": ["-m", "training.train_phenotype_vae", "--out", "weights/phenotype_vae"],
    "reference_population": ["-m", "training.export_reference_population"],
    "frame_ae": ["-m", "training.train_frame_ae", "--config", "{config}", "--out", "weights/frame_ae{suffix}"],
    "motion": ["-m", "training.fit_motion", "--config", "{config}", "--out", "weights/motion{suffix}"],
    "anatomy_bank": ["-m", "training.build_anatomy_bank", "--config", "{config}", "--out", "weights/anatomy_bank{suffix}"],
    "reid": ["-m", "training.train_reid", "--out", "weights/reid"],
    "vae3d": ["-m", "training.train_vae3d", "--config", "{config}", "--out", "weights/vae3d{suffix}"],
    "mar": ["-m", "training.train_mar", "--config", "{mar_config}", "--vae", "weights/vae3d{suffix}",
            "--out", "weights/mar{suffix}"],
    "mar_motion": ["-m", "training.train_mar", "--config", "{config}", "--frame-ae", "weights/frame_ae{suffix}",
                   "--motion", "weights/motion{suffix}", "--out", "weights/mar_motion{suffix}"],
    "ecg_mae": ["-m", "training.train_ecg_mae", "--config", "{config}", "--out", "weights/ecg_mae{suffix}"],
    "ecg_flow": ["-m", "training.train_ecg_flow", "--config", "{config}", "--frame-ae", "weights/frame_ae{suffix}",
                 "--motion", "weights/motion{suffix}",
                 "--ecg-mae", "weights/ecg_mae{suffix}", "--out", "weights/ecg_flow{suffix}"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["default", "paper"], default="default")
    parser.add_argument("--from", dest="start", choices=list(STEPS), default="prepare")
    parser.add_argument("--only", choices=list(STEPS))
    args = parser.parse_args()
    names = [args.only] if args.only else list(STEPS)[list(STEPS).index(args.start):]
    for name in names:
        if name == "mar_motion" and args.config == "paper":
            print("==> mar_motion: the paper MAR (step mar) already works in the anatomy + motion space", flush=True)
            continue
        suffix = "" if args.config == "default" else f"_{args.config}"  # paper weights never overwrite the bundled ones
        mar_config = "vae3d" if args.config == "default" else args.config  # the de novo MAR; paper: anatomy + motion
        command = [sys.executable] + [part.format(config=args.config, suffix=suffix, mar_config=mar_config)
                                      for part in STEPS[name]]
        print(f"==> {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        if subprocess.run(command).returncode != 0:
            print(f"step {name} failed; fix it and rerun with --from {name}", file=sys.stderr)
            return 1
        print(f"<== {name} done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
