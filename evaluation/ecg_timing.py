"""Does the generated cine follow the ECG? Timing, a shuffled-ECG control, and realism of the ECG -> cine model.

    python -m evaluation.ecg_timing [--split test|val|heldout|simulated] [--weights weights]
                                    [--out reports/ecg_flow/test]

For every held-out LUDB record (not paced, with a QT/RR from neurokit2), or for ``--split simulated`` every
ECGSYN ECG of :func:`simulated_records` (45-120 bpm, a wider QT/RR range), one cine is generated (``--seed``,
default 0, mid-ventricle). The bundled segmenter reads its LV area curve; the end-systolic time is the curve's
minimum refined to sub-frame resolution, as a fraction of the cycle (frame 0 = R peak). Reported:

- ``timing``: Pearson r (bootstrap 95 % CI) between the generated ES fraction and the input ECG's QT/RR, and the
  mean absolute difference; ``shuffled_control``: the same r with the ECGs' QT/RR shuffled over the cines
  (2,000 permutations: mean, 95 % range, and the share at least as large as the observed r = p-value). The
  correlation must drop under shuffling for the ECG to be said to control timing.
- ``timing_ceiling_real_cines``: the same ES measurement on real held-out ACDC cines vs their expert ES frame
  (how precisely the instrument reads timing at all).
- ``timing_ceiling_retimed_real_cines`` (flows that re-time): what a perfect re-timed generator would show. Real
  held-out cines are re-timed to the flow's canonical end-systole, as its training cines were, then to QT/RR
  values drawn from the held-out ECGs, as sampling does; r between the measured ES and that target.
- ``frames_without_lv`` (generated and real): how many cines have frames where the segmenter finds no LV at all.
  There the area curve's minimum is the first empty frame, so ES reads where the LV is lost, not where it is
  smallest.
- ``heart_rate``: the cycle the model used vs neurokit2's median RR (the cycle finding itself).
- ``realism``: Fréchet distance of the generated cines' features (bundled cine encoder) to the real training
  cines, and its ratio to the real floor (real held-out cines of the ACDC ``--acdc-split`` to train).
- ``turing`` / ``anatomy``: the automated Turing test (classifier two-sample test against the real held-out
  ACDC cines of ``--acdc-split``, each generated cine its own group) and the per-frame anatomy checks, beside
  the real-vs-real control and the real cines' anatomy shares (``cardiosynth.measure.turing``, ``anatomy``).
  At one seed every ECG gets the same heart (the seed draws the anatomy), so ``turing_a_heart_per_ecg`` and
  ``anatomy_a_heart_per_ecg`` repeat both with seed + 1 + k for the k-th ECG: a heart per ECG, as patients are.
- ``not_controlled``: what the ECG cannot set, measured: spread of generated LV end-diastolic area across ECGs vs
  across seeds for one ECG.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cardiosynth.data.dataset import load_prepared
from cardiosynth.data.ludb import load_arrays, timing_columns
from cardiosynth.ecg import process_ecg
from cardiosynth.ecg.types import FS, LEADS, N_SAMPLES, Ecg
from cardiosynth.measure import metrics
from cardiosynth.measure.anatomy import check_anatomy, summarize_anatomy
from cardiosynth.measure.measurer import CineMeasurer
from cardiosynth.models.cine_encoder import CineEncoder, embed_cines
from cardiosynth.pipelines.ecg_to_cine import DEFAULT_MOTION, MOTIONS, EcgToCine
from cardiosynth.retime import ES_FRACTION_RANGE, retime, retimed_dataset
from cardiosynth.weights import WEIGHTS_DIR
from evaluation.evaluate import Reference, TuringReference

PERMUTATIONS = 2000


def heldout_records(table: pd.DataFrame, split: str) -> pd.DataFrame:
    splits = ("val", "test") if split == "heldout" else (split,)
    keep = table["split"].isin(splits) & (table["paced"] == 0) & np.isfinite(table["qt_rr"].to_numpy(float))
    return table[keep].reset_index(drop=True)


def simulated_records(n: int, heart_rates: tuple[float, float] = (45.0, 120.0), seed: int = 0) -> pd.DataFrame:
    """``n`` 12-lead ECGs from neurokit2's ECGSYN (``method="multileads"``, 10 s at 500 Hz) at heart rates evenly
    spread over ``heart_rates``, as held-out-like records whose ``path`` is the :class:`Ecg` itself. ECGSYN
    shortens QT less than RR as the rate rises (QT/RR ~0.40 at 45 bpm, ~0.58 at 120), a wider and evenly spread
    range than LUDB's held-out records give: a dose-response check of the timing with as many ECGs as wanted.
    QT/RR and RR are read by neurokit2 exactly as for LUDB."""
    import warnings

    import neurokit2 as nk

    rows = []
    for i, rate in enumerate(np.linspace(*heart_rates, n)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # neurokit2 warns about its own resampling choices
            leads = nk.ecg_simulate(duration=N_SAMPLES / FS, sampling_rate=FS, heart_rate=float(rate),
                                    method="multileads", random_state=seed + i)
        signal = leads[list(LEADS)].to_numpy().T[:, :N_SAMPLES].astype(np.float32)
        ecg = Ecg(signal=signal, source_format="simulated",
                  metadata={"simulator": "neurokit2 ecg_simulate multileads (ECGSYN)", "heart_rate_bpm": float(rate)})
        timing = timing_columns(process_ecg(ecg))
        rows.append({"record": f"ecgsyn_{i:03d}_{rate:.0f}bpm", "path": ecg, "family_text": "simulated (ECGSYN)",
                     "qt_rr": timing["qt_rr"], "rr_s": timing["rr_s"]})
    table = pd.DataFrame(rows)
    return table[np.isfinite(table["qt_rr"].to_numpy(float))].reset_index(drop=True)


def shuffled_control(x: np.ndarray, y: np.ndarray, observed: float, n: int = PERMUTATIONS, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    null = np.array([np.corrcoef(x, rng.permutation(y))[0, 1] for _ in range(n)])
    return {"permutations": n, "r_mean": round(float(null.mean()), 4),
            "r_95_range": [round(float(v), 4) for v in np.percentile(null, [2.5, 97.5])],
            "p_value_one_sided": round(float((1 + np.sum(null >= observed)) / (n + 1)), 4)}


def run(split: str, weights: Path, out: Path, acdc_split: str = "val", seeds_for_spread: int = 5,
        command: str = "", n_simulated: int = 60, seed: int = 0, motion: str = DEFAULT_MOTION) -> dict:
    loaded = EcgToCine.from_pretrained(weights)

    def pipe(path, seed):  # the heart a phenotype VAE draw for the seed, as measured (the default before issue 39)
        return loaded(path, seed=seed, motion=motion, phenotype_seed=seed)
    pipe.flow, pipe.sha = loaded.flow, loaded.sha
    measurer = CineMeasurer()
    records = (simulated_records(n_simulated) if split == "simulated"
               else heldout_records(load_arrays(progress=False).table, split))
    rows, cines, seconds = [], [], []
    for record in records.itertuples(index=False):
        started = time.perf_counter()
        try:
            result = pipe(record.path, seed=seed)
        except ValueError as error:  # EcgError: no complete cycle found
            rows.append({"record": record.record, "error": str(error)[:80]})
            continue
        seconds.append(time.perf_counter() - started)
        cines.append(result.cine)
        rows.append({"record": record.record, "family": record.family_text, "qt_rr": record.qt_rr,
                     "rr_s_neurokit": record.rr_s, "rr_s_used": result.cycle["rr_s"]})
    table = pd.DataFrame(rows)
    ok = table["error"].isna() if "error" in table else pd.Series(True, index=table.index)
    measured, curves, labels = measurer.measure_with_labels(cines)
    frames = cines[0].n_frames
    table.loc[ok, "es_fraction_generated"] = [c.es_frame_subframe / frames for c in curves]
    table.loc[ok, "lv_area_ed_mm2"] = measured["lv_area_ed_mm2"].to_numpy()
    good = table[ok & np.isfinite(table["es_fraction_generated"].astype(float))]
    x, y = good["es_fraction_generated"].to_numpy(float), good["qt_rr"].to_numpy(float)
    r = float(np.corrcoef(x, y)[0, 1])
    timing = {**agreement(x, y),
              "es_fraction_generated_mean_sd": [round(float(x.mean()), 4), round(float(x.std()), 4)],
              "qt_rr_mean_sd": [round(float(y.mean()), 4), round(float(y.std()), 4)],
              "frames_without_lv": frames_without_lv(curves)}
    used, neurokit = good["rr_s_used"].to_numpy(float), good["rr_s_neurokit"].to_numpy(float)
    heart_rate = {"cycle_found": int(ok.sum()), "records": len(table),
                  "rr_used_vs_neurokit_median_abs_ms": round(float(np.median(np.abs(used - neurokit))) * 1000, 1)}
    # realism against the real floor
    dataset = load_prepared(str(pipe.flow.metrics.get("dataset", "default")))
    reference = Reference(dataset.split("train"), dataset.split(acdc_split), CineEncoder.from_pretrained())
    generated = embed_cines(reference.encoder, np.stack([c.frames for c in cines]))
    fid = metrics.frechet_with_ci(generated, reference.train_features)
    floor = reference.floor
    real = TuringReference(reference, measurer)
    names = np.array([f"ecg:{r}" for r in table.loc[ok, "record"]])  # every generated cine its own group
    turing_result = real.test("ecg_flow", np.stack([c.frames for c in cines]), names)
    anatomy = summarize_anatomy(check_anatomy(np.stack(labels), [c.slice_position for c in cines]), names)
    # one seed gives every ECG the same heart; the fairer Turing test draws a heart per ECG (seed + 1 + k)
    paths = records["path"][ok.to_numpy()].tolist()
    varied = [pipe(path, seed=seed + 1 + k).cine for k, path in enumerate(paths)]
    varied_labels = np.stack(measurer.segment(varied))
    turing_varied = real.test("ecg_flow", np.stack([c.frames for c in varied]), names)
    anatomy_varied = summarize_anatomy(check_anatomy(varied_labels, [c.slice_position for c in varied]), names)
    ceiling = timing_ceiling(reference.heldout, measurer)
    canonical = pipe.flow.config.canonical_es_fraction
    retimed = None if canonical is None else retiming_ceiling(reference.heldout, measurer, canonical, y)
    # what the ECG does not set: LV size across ECGs vs across seeds of one ECG
    first = records["path"].iloc[0]
    seed_cines = [pipe(first, seed=s).cine for s in range(seeds_for_spread)]
    seed_areas = measurer.measure(seed_cines)[0]["lv_area_ed_mm2"].to_numpy()
    report = {
        "command": command, "split": split, "seed": seed, "weights": str(weights), "model": pipe.sha[:12],
        "motion": motion if loaded.anatomy.rendering is not None else "decoded",
        "timing": timing, "shuffled_control": shuffled_control(x, y, r), "timing_ceiling_real_cines": ceiling,
        "timing_ceiling_retimed_real_cines": retimed,
        "heart_rate": heart_rate,
        "realism": {"frechet_to_train": fid, "real_floor": floor, "acdc_split_for_floor": acdc_split,
                    "ratio_to_floor": round(fid["value"] / floor["value"], 3)},
        "turing": turing_result, "turing_control_real_train_vs_heldout": real.control,
        "anatomy": anatomy, "anatomy_real_heldout": real.anatomy,
        "turing_a_heart_per_ecg": turing_varied, "anatomy_a_heart_per_ecg": anatomy_varied,
        "not_controlled": {"lv_area_ed_sd_across_ecgs_mm2": round(float(good["lv_area_ed_mm2"].std()), 1),
                           f"lv_area_ed_sd_across_{seeds_for_spread}_seeds_one_ecg_mm2": round(float(seed_areas.std()), 1)},
        "seconds_per_cine_in_loop_median": round(float(np.median(seconds)), 3),
    }
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "per_record.csv", index=False)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    plot_timing(good, out / "timing.png", r)
    plot_examples(table, cines, curves, ok.to_numpy(), out / "examples.png",
                  source="simulated" if split == "simulated" else "held-out LUDB", seed=seed)
    return report


def timing_ceiling(real, measurer) -> dict:
    """How well the same ES measurement reads real cines' timing: measured ES fraction (LV area minimum) vs the
    expert ES frame of ACDC (``es_frame_float``), over the held-out real cines. A generator cannot show timing
    more precisely than this instrument reads it."""
    frames = real.cines.shape[1]
    _, curves = measurer.measure([real.cine(i) for i in range(len(real))])
    measured = np.array([c.es_frame_subframe / frames for c in curves])
    truth = real.table["es_frame_float"].to_numpy(float) / frames
    r = float(np.corrcoef(measured, truth)[0, 1])
    return {"n": len(truth), "pearson_r": round(r, 4), "mean_abs_difference": round(float(np.mean(np.abs(measured - truth))), 4),
            "es_fraction_expert_mean_sd": [round(float(truth.mean()), 4), round(float(truth.std()), 4)],
            "frames_without_lv": frames_without_lv(curves)}


def retiming_ceiling(real, measurer, canonical: float, qt_rr: np.ndarray, seed: int = 0) -> dict:
    """Real cines re-timed to ``canonical`` and then to QT/RR values drawn (seeded) from ``qt_rr``: how well the
    ES measurement follows re-timing when the cines themselves are perfect."""
    import dataclasses

    import torch


    target = np.clip(np.random.default_rng(seed).choice(qt_rr, len(real)), *ES_FRACTION_RANGE)
    canon = retimed_dataset(real, canonical)
    cines = [dataclasses.replace(canon.cine(i), frames=retime(torch.from_numpy(canon.frames(i)), float(t), canonical)
                                 .numpy()) for i, t in enumerate(target)]
    _, curves = measurer.measure(cines)
    return agreement(np.array([c.es_frame_subframe / real.cines.shape[1] for c in curves]), target)


def agreement(measured: np.ndarray, target: np.ndarray) -> dict:
    """n, Pearson r with its bootstrap 95 % CI, and the mean absolute difference of two timing series."""
    return {"n": len(target), "pearson_r": round(float(np.corrcoef(measured, target)[0, 1]), 4),
            "pearson_r_ci95": [round(v, 4) for v in metrics.bootstrap_ci(
                lambda idx: np.corrcoef(measured[idx], target[idx])[0, 1], len(target))],
            "mean_abs_difference": round(float(np.mean(np.abs(measured - target))), 4)}


def frames_without_lv(curves) -> dict:
    """Cines with at least one frame in which the segmenter finds no LV, and the median number of such frames."""
    empty = np.array([int(np.sum(c.lv_area_mm2 <= 0)) for c in curves])
    return {"cines_with_any": int(np.sum(empty > 0)), "cines": len(empty), "median_frames": float(np.median(empty))}


def plot_timing(good: pd.DataFrame, path: Path, r: float) -> None:
    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    ax.scatter(good["qt_rr"], good["es_fraction_generated"], s=14)
    lo, hi = 0.25, 0.75
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="identity")
    ax.set_xlabel("input ECG QT / RR (neurokit2)")
    ax.set_ylabel("generated cine ES / cycle (LV area minimum)")
    ax.set_title(f"Timing follows the ECG? r = {r:.2f} (n = {len(good)})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_examples(table: pd.DataFrame, cines: list, curves: list, ok: np.ndarray, path: Path,
                  source: str = "held-out LUDB", seed: int = 0) -> None:
    """Three generated cines, for the held-out ECGs at the 10th, 50th and 90th percentile of QT/RR (chosen by
    rank, not by look): every other frame, and the LV area curve with the measured ES and the ECG's QT/RR."""
    rows = table[ok].reset_index(drop=True)
    order = np.argsort(rows["qt_rr"].to_numpy(float))
    picks = [int(order[int(round(q * (len(order) - 1)))]) for q in (0.1, 0.5, 0.9)]
    frames = cines[0].n_frames
    fig = Figure(figsize=(1.3 * (frames // 2 + 1) + 1.5, 1.6 * len(picks)))
    axes = fig.subplots(len(picks), frames // 2 + 1,
                        gridspec_kw={"width_ratios": [1] * (frames // 2) + [2.2]})
    for row, i in enumerate(picks):
        for k in range(frames // 2):
            ax = axes[row, k]
            ax.imshow(cines[i].frames[2 * k], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(f"frame {2 * k}", fontsize=7)
        ax = axes[row, -1]
        ax.plot(curves[i].lv_area_mm2, "o-", ms=2, lw=1)
        ax.axvline(curves[i].es_frame_subframe, color="tab:red", lw=1, label="ES (cine)")
        ax.axvline(rows["qt_rr"].iloc[i] * frames, color="k", ls="--", lw=1, label="QT/RR x frames (ECG)")
        ax.set_title(f"{rows['record'].iloc[i]}: QT/RR {rows['qt_rr'].iloc[i]:.2f}", fontsize=7)
        ax.tick_params(labelsize=6)
        if row == 0:
            ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(f"ECG -> cine, {source} ECGs at the 10th / 50th / 90th percentile of QT/RR "
                 f"(seed {seed}, mid-ventricle)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["val", "test", "heldout", "simulated"], default="test",
                        help="LUDB records to use (heldout = val + test), or ECGSYN ECGs over 45-120 bpm")
    parser.add_argument("--n-simulated", type=int, default=60, help="ECGs for --split simulated")
    parser.add_argument("--seed", type=int, default=0, help="generation seed of every cine (default 0)")
    parser.add_argument("--weights", type=Path, default=None, help="folder with ecg_mae/, ecg_flow/ and the phenotype -> cine components")
    parser.add_argument("--acdc-split", choices=["val", "test"], default="test", help="real cines for the floor")
    parser.add_argument("--out", type=Path, default=Path("reports/ecg_flow/test"))
    parser.add_argument("--motion", choices=MOTIONS, default=DEFAULT_MOTION,
                        help="rendered cines' motion: the flow's draw or the exemplar's own, re-timed")
    args = parser.parse_args(argv)

    command = "python -m evaluation.ecg_timing " + " ".join(argv if argv is not None else sys.argv[1:])
    report = run(args.split, args.weights or WEIGHTS_DIR, args.out, args.acdc_split, command=command,
                 n_simulated=args.n_simulated, seed=args.seed, motion=args.motion)
    print(json.dumps({k: report[k] for k in ("timing", "shuffled_control", "heart_rate", "realism")}, indent=2))
    for key in ("turing", "turing_a_heart_per_ecg"):
        print(key, {k: report[key].get(k, {}).get("auc") for k in ("cnn", "features")})


if __name__ == "__main__":
    main()
