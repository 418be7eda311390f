"""Train the phenotype VAE (CPGG stage 1) on the ACDC phenotype table, measure it, write the bundled weights.

    python -m training.train_phenotype_vae [--out weights/phenotype_vae] [--search] [--threads 1]

Data: ``phenotypes.csv`` of the ACDC subset (85 patients), committed split: train (60 patients) fits the
network and the coordinate scaler, val (13) chooses the step (early stopping on the importance-weighted
NLL) and, with ``--search``, the architecture; test (12) is reported once. The plausibility percentile is
calibrated on train + val patients (the patients the model has seen); test patients show how held-out real
hearts score.

Measured and written to the model card and ``config.json`` (``extra.metrics``):
- Fréchet distance (standardised log of the five independent phenotypes; also all nine phenotypes
  standardised) between real val (and test) patients and sampled sets at temperature 1, against the floor
  real-train vs real-val, and against a multivariate Gaussian fitted to the training coordinates; bootstrap
  95 % intervals resample the real reference patients (paired across the compared sets).
- Reconstruction MAE per phenotype (encode -> decode means) on val and test, in schema units.
- Completion: lock a few phenotypes at the truth of each val / test patient, complete the rest
  (temperature 0 = posterior mean), MAE of the completed phenotypes against the truth, versus the training
  mean and a least-squares regression on the locked values (same coordinates, same consistency).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cardiosynth import phenotypes as ph
from cardiosynth.data.acdc import read_phenotype_csv
from cardiosynth.data.splits import load_split
from cardiosynth.measure.metrics import bootstrap_ci, frechet_distance
from cardiosynth.models.cards.phenotype_vae import model_card
from cardiosynth.models.phenotype_vae import (
    SIDES,
    CoordinateScaler,
    PhenotypeVAE,
    PhenotypeVAEConfig,
    PlausibilityCalibration,
)
from cardiosynth.paths import REPO_ROOT, cache_dir, require_dataset
from cardiosynth.phenotype_prior import PhenotypePrior, from_coordinates, to_coordinates
from training.common import JsonlLog, seed_everything, with_epochs
from training.recipes import PHENOTYPE_VAE_RECIPES, PhenotypeVAERecipe

N_BOOT = 1000
N_SAMPLES = 2000
LOCK_SETS = (  # which phenotypes a clinician locks; the rest is completed
    ("LVEDV", "LVEF"),
    ("LVEDV",),
    ("LVEF",),
    ("LVESV",),
    ("LVEDV", "LVESV", "LVM"),
    ("RVEDV", "RVEF"),
)
SEARCH_GRID = {"latent_dim": (2, 3, 4), "hidden": (32, 64), "min_sigma": (0.05, 0.2)}  # architecture fields


# --------------------------------------------------------------------------------------------- data
def load_tables(root=None) -> dict[str, pd.DataFrame]:
    root = require_dataset("acdc", root)
    table = read_phenotype_csv(root)
    if table is None:
        raise FileNotFoundError(f"{root}/phenotypes.csv is missing")
    split = load_split()
    table = table[table["patient"].isin(split)].copy()
    table["split"] = table["patient"].map(split)
    cols = ["patient", "group", *ph.NAMES]
    return {name: table.loc[table["split"] == name, cols].reset_index(drop=True) for name in ("train", "val", "test")}


# --------------------------------------------------------------------------------------------- training
def fit(config: PhenotypeVAEConfig, recipe: PhenotypeVAERecipe, u_train: np.ndarray, u_val: np.ndarray,
        log: JsonlLog | None = None, verbose: bool = False) -> tuple[PhenotypeVAE, dict]:
    """Full-batch training (as the recipe says, on coordinates standardised by ``config.scaler``) with KL
    warm-up, AdamW and early stopping on the val IWAE NLL."""
    seed_everything(recipe.seed)
    model = PhenotypeVAE(config)
    mean, std = np.asarray(config.scaler.mean), np.asarray(config.scaler.std)
    s_train = torch.tensor((u_train - mean) / std, dtype=torch.float32)
    s_val = torch.tensor((u_val - mean) / std, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    g = torch.Generator().manual_seed(recipe.seed)
    best = {"val_nll": math.inf, "step": 0, "state": None}
    for step in range(1, recipe.epochs + 1):
        model.train()
        beta = recipe.beta * min(1.0, step / max(1, recipe.kl_warmup))
        x = s_train
        if recipe.input_noise > 0:
            x = x + recipe.input_noise * torch.randn(x.shape, generator=g)
        out = model.loss(x, beta, samples=recipe.train_samples, generator=g)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        if step % recipe.eval_every == 0 or step == recipe.epochs:
            model.eval()
            with torch.no_grad():
                ge = torch.Generator().manual_seed(1234)  # the same importance samples every evaluation
                val_nll = -model.log_density_tensor(s_val, recipe.eval_importance_samples, ge).mean().item()
                ge = torch.Generator().manual_seed(1234)
                train_nll = -model.log_density_tensor(s_train, recipe.eval_importance_samples, ge).mean().item()
            record = {"step": step, "loss": out["loss"].item(), "recon": out["recon"].item(), "kl": out["kl"].item(),
                      "beta": beta, "train_nll": train_nll, "val_nll": val_nll}
            if log is not None:
                log.write(**record)
            if verbose and step % (10 * recipe.eval_every) == 0:
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
            # only select once the KL weight has reached its final value
            if step >= recipe.kl_warmup and val_nll < best["val_nll"]:
                best = {"val_nll": val_nll, "train_nll": train_nll, "step": step,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            elif step - best["step"] > recipe.patience and best["state"] is not None:
                break
    model.load_state_dict(best["state"])
    model.eval()
    return model, {"selected_step": best["step"], "val_nll": best["val_nll"], "train_nll": best["train_nll"],
                   "stopped_at": step}


# --------------------------------------------------------------------------------------------- evaluation
def features_log5(table: pd.DataFrame, ref: pd.DataFrame) -> np.ndarray:
    """Standardised log of the five independent phenotypes (mean / SD of the training patients)."""
    x, r = np.log(table[list(ph.INDEPENDENT)].to_numpy(float)), np.log(ref[list(ph.INDEPENDENT)].to_numpy(float))
    return (x - r.mean(0)) / r.std(0)


def features_all9(table: pd.DataFrame, ref: pd.DataFrame) -> np.ndarray:
    x, r = table[list(ph.NAMES)].to_numpy(float), ref[list(ph.NAMES)].to_numpy(float)
    return (x - r.mean(0)) / r.std(0)


def frechet_report(sets: dict[str, pd.DataFrame], real: pd.DataFrame, train: pd.DataFrame, featurize) -> dict:
    """FD of each set to the real reference, with paired bootstrap over the reference patients."""
    ref = featurize(real, train)
    feats = {name: featurize(t, train) for name, t in sets.items()}
    out = {}
    for name, f in feats.items():
        value = frechet_distance(f, ref)
        ci = bootstrap_ci(lambda idx: frechet_distance(f, ref[idx]), len(ref), n_boot=N_BOOT, seed=0)
        out[name] = {"fd": value, "ci95": list(ci), "n": len(f)}
    floor = feats["real_train"]
    for name, f in feats.items():
        if name == "real_train":
            continue
        ci = bootstrap_ci(lambda idx: frechet_distance(f, ref[idx]) - frechet_distance(floor, ref[idx]),
                          len(ref), n_boot=N_BOOT, seed=0)
        out[name]["minus_floor_ci95"] = list(ci)
    return out


def matched_size_fd(prior: PhenotypePrior, real: pd.DataFrame, train: pd.DataFrame, featurize, draws: int = 200) -> dict:
    """FD of sample sets the size of the training split (60) to the reference: the like-for-like floor
    comparison (FD is biased upwards for small sets)."""
    ref = featurize(real, train)
    values = [frechet_distance(featurize(prior.sample(len(train), 1.0, seed=10_000 + k), train), ref)
              for k in range(draws)]
    return {"mean": float(np.mean(values)), "p2.5": float(np.percentile(values, 2.5)),
            "p97.5": float(np.percentile(values, 97.5)), "draws": draws, "set_size": len(train)}


def gaussian_baseline(u_train: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    """A multivariate Gaussian fitted to the training coordinates (same consistency by construction)."""
    rng = np.random.default_rng(seed)
    return from_coordinates(rng.multivariate_normal(u_train.mean(0), np.cov(u_train, rowvar=False), size=n))


def reconstruction_mae(prior: PhenotypePrior, table: pd.DataFrame, train: pd.DataFrame) -> dict:
    rec = prior.reconstruct(table[list(ph.NAMES)])
    out = {}
    for name in ph.NAMES:
        err = np.abs(rec[name].to_numpy() - table[name].to_numpy())
        base = np.abs(train[name].mean() - table[name].to_numpy())
        ci = bootstrap_ci(lambda idx: err[idx].mean(), len(err), n_boot=N_BOOT, seed=0)
        out[name] = {"mae": float(err.mean()), "ci95": list(ci), "train_mean_mae": float(base.mean()),
                     "unit": ph.BY_NAME[name].unit}
    return out


def _free_parameters(locks: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """For a lock set: the regression features (transformed locked values) and the free parameters, named as
    coordinates, in the same parametrisation the VAE's completion uses."""
    features = []
    free = []
    for side, (i, j) in SIDES.items():
        have = [k for k in ("EDV", "ESV", "SV", "EF") if f"{side}{k}" in locks]
        if len(have) >= 2:
            features += [f"u{i}", f"u{j}"]
        elif have == ["EDV"]:
            features.append(f"u{i}"); free.append(f"u{j}")
        elif have == ["EF"]:
            features.append(f"u{j}"); free.append(f"u{i}")
        elif have in (["ESV"], ["SV"]):
            features.append(f"log{side}{have[0]}"); free.append(f"u{j}")
        else:
            free += [f"u{i}", f"u{j}"]
    (features if "LVM" in locks else free).append("u2")
    return features, free


def _param_table(table: pd.DataFrame) -> pd.DataFrame:
    u = to_coordinates(table)
    out = pd.DataFrame(u, columns=[f"u{i}" for i in range(5)])
    for side in SIDES:
        out[f"log{side}ESV"] = np.log(table[f"{side}ESV"].to_numpy(float))
        out[f"log{side}SV"] = np.log(table[f"{side}SV"].to_numpy(float))
    return out


def _assemble(locks: dict[str, float], params: dict[str, float]) -> np.ndarray:
    """Coordinates from locked values and free parameters (the same algebra as the model's completion)."""
    u = np.full(5, np.nan)
    for k, v in params.items():
        if k.startswith("u"):
            u[int(k[1:])] = v
    for side, (i, j) in SIDES.items():
        given = {k: locks[f"{side}{k}"] for k in ("EDV", "ESV", "SV", "EF") if f"{side}{k}" in locks}
        if "EDV" in given and "ESV" in given:
            u[i], u[j] = math.log(given["EDV"]), math.log(given["ESV"] / (given["EDV"] - given["ESV"]))
        elif "EDV" in given and "EF" in given:
            r = 1 - given["EF"] / 100
            u[i], u[j] = math.log(given["EDV"]), math.log(r / (1 - r))
        elif "EDV" in given:
            u[i] = math.log(given["EDV"])
        elif "EF" in given:
            r = 1 - given["EF"] / 100
            u[j] = math.log(r / (1 - r))
        elif "ESV" in given:
            u[i] = math.log(given["ESV"]) + math.log1p(math.exp(-u[j]))
        elif "SV" in given:
            u[i] = math.log(given["SV"]) + math.log1p(math.exp(u[j]))
    if "LVM" in locks:
        u[2] = math.log(locks["LVM"])
    return u


def baseline_completion(locks_names: tuple[str, ...], train: pd.DataFrame, table: pd.DataFrame, kind: str) -> pd.DataFrame:
    features, free = _free_parameters(locks_names)
    p_train, p_eval = _param_table(train), _param_table(table)
    if kind == "mean":
        pred = np.tile(p_train[free].mean(0).to_numpy(), (len(table), 1))
    else:  # least squares on the transformed locked values
        x = np.column_stack([np.ones(len(train)), p_train[features].to_numpy()])
        coef, *_ = np.linalg.lstsq(x, p_train[free].to_numpy(), rcond=None)
        pred = np.column_stack([np.ones(len(table)), p_eval[features].to_numpy()]) @ coef
    rows = []
    for r in range(len(table)):
        locks = {n: float(table.iloc[r][n]) for n in locks_names}
        u = _assemble(locks, dict(zip(free, pred[r])))
        rows.append(from_coordinates(u[None]).iloc[0])
    return pd.DataFrame(rows).reset_index(drop=True)


def completion_report(prior: PhenotypePrior, train: pd.DataFrame, table: pd.DataFrame) -> dict:
    out = {}
    sd = train[list(ph.NAMES)].std()
    for locks_names in LOCK_SETS:
        locked = table[list(ph.NAMES)].copy()
        locked.loc[:, [n for n in ph.NAMES if n not in locks_names]] = np.nan
        preds = {"vae": prior.complete(locked).reset_index(drop=True),
                 "train_mean": baseline_completion(locks_names, train, table, "mean"),
                 "regression": baseline_completion(locks_names, train, table, "regression")}
        # phenotypes the locks do not determine
        determined = set(locks_names)
        for side in SIDES:
            if sum(f"{side}{k}" in locks_names for k in ("EDV", "ESV", "SV", "EF")) >= 2:
                determined |= {f"{side}{k}" for k in ("EDV", "ESV", "SV", "EF")}
        free = [n for n in ph.NAMES if n not in determined]
        truth = table[free].to_numpy(float)
        errs = {k: np.abs(p[free].to_numpy(float) - truth) for k, p in preds.items()}
        lock_err = max(float(np.max(np.abs(preds["vae"][n].to_numpy() - table[n].to_numpy()))) for n in locks_names)
        norm = {k: (e / sd[free].to_numpy()).mean(1) for k, e in errs.items()}  # per patient, in training SDs
        entry = {"locked": list(locks_names), "completed": free, "max_lock_error": lock_err,
                 "mae": {k: dict(zip(free, e.mean(0).round(3).tolist())) for k, e in errs.items()},
                 "normalised_mae": {k: float(v.mean()) for k, v in norm.items()}}
        for other in ("train_mean", "regression"):
            diff = norm["vae"] - norm[other]
            entry[f"vae_minus_{other}_ci95"] = list(bootstrap_ci(lambda idx: diff[idx].mean(), len(diff),
                                                                 n_boot=N_BOOT, seed=0))
        out["+".join(locks_names)] = entry
    return out


def plausibility_report(prior: PhenotypePrior, tables: dict[str, pd.DataFrame]) -> dict:
    out = {}
    for split in ("train", "val", "test"):
        res = prior.plausibility(tables[split][list(ph.NAMES)])
        out[split] = {"median_percentile": float(res["percentile"].median()),
                      "mean_log_density": float(res["log_density"].mean()),
                      "status_counts": {s: int((res["status"] == s).sum()) for s in ("green", "amber", "red")}}
        out[split]["flagged"] = {tables[split]["patient"][i] + f" ({tables[split]['group'][i]})": res["reasons"][i]
                                 for i in range(len(res)) if res["status"][i] != "green"}
    samples = prior.sample(500, 1.0, seed=7)
    res = prior.plausibility(samples)
    out["samples_T1"] = {"status_counts": {s: int((res["status"] == s).sum()) for s in ("green", "amber", "red")},
                         "median_percentile": float(res["percentile"].median())}
    absurd = {
        "LVM huge for small LV": {"LVEDV": 90, "LVESV": 40, "LVM": 420, "RVEDV": 100, "RVESV": 45},
        "RV tiny, LV huge": {"LVEDV": 330, "LVESV": 110, "LVM": 110, "RVEDV": 40, "RVESV": 10},
        "EF inconsistent with volumes": {"LVEDV": 150, "LVESV": 60, "LVEF": 30, "LVM": 120, "RVEDV": 150, "RVESV": 70},
        "hyperdynamic dilated LV": {"LVEDV": 280, "LVESV": 40, "LVM": 130, "RVEDV": 160, "RVESV": 70},
    }
    out["absurd"] = {}
    for label, values in absurd.items():
        p = prior.plausibility(values)
        out["absurd"][label] = {"status": p.status, "percentile": p.percentile, "reasons": p.reasons}
    return out


def sample_sanity(prior: PhenotypePrior, train: pd.DataFrame) -> dict:
    s = prior.sample(N_SAMPLES, 1.0, seed=3)
    outside = sum(bool(ph.out_of_range(row)) for row in s.to_dict("records"))
    lo, hi = train[list(ph.NAMES)].min(), train[list(ph.NAMES)].max()
    beyond = ((s < lo) | (s > hi)).any(axis=1).mean()
    return {"n": N_SAMPLES, "outside_plausible_range": int(outside), "share_beyond_training_range": float(beyond),
            "sample_mean": s.mean().round(2).to_dict(), "train_mean": train[list(ph.NAMES)].mean().round(2).to_dict(),
            "sample_sd": s.std().round(2).to_dict(), "train_sd": train[list(ph.NAMES)].std().round(2).to_dict()}


def evaluate(prior: PhenotypePrior, tables: dict[str, pd.DataFrame], u_train: np.ndarray) -> dict:
    train = tables["train"]
    metrics = {}
    samples = prior.sample(N_SAMPLES, 1.0, seed=1)
    gauss = gaussian_baseline(u_train, N_SAMPLES, seed=1)
    for split in ("val", "test"):
        real = tables[split]
        sets = {"real_train": train, "vae_T1": samples, "gaussian_baseline": gauss}
        metrics[f"frechet_{split}"] = {
            "log5_standardised": frechet_report(sets, real, train, features_log5),
            "all9_standardised": frechet_report(sets, real, train, features_all9),
            "vae_matched_size_log5": matched_size_fd(prior, real, train, features_log5),
        }
        metrics[f"reconstruction_{split}"] = reconstruction_mae(prior, real, train)
        metrics[f"completion_{split}"] = completion_report(prior, train, real)
    metrics["plausibility"] = plausibility_report(prior, tables)
    metrics["samples"] = sample_sanity(prior, train)
    return metrics


# --------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "weights" / "phenotype_vae"))
    parser.add_argument("--data", default=None, help="ACDC folder (default: $CARDIOSYNTH_DATA/acdc)")
    parser.add_argument("--search", action="store_true", help="choose latent size, width and decoder noise floor on val first")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--run-dir", default=str(cache_dir() / "runs" / "phenotype_vae"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    tables = load_tables(args.data)
    u = {k: to_coordinates(t) for k, t in tables.items()}
    base = PhenotypeVAEConfig(scaler=CoordinateScaler(mean=tuple(u["train"].mean(0).tolist()),
                                                      std=tuple(u["train"].std(0).tolist())))
    recipe = PHENOTYPE_VAE_RECIPES["default"]
    if args.epochs:
        recipe = with_epochs(recipe, args.epochs)
    search = []
    if args.search:
        for values in itertools.product(*SEARCH_GRID.values()):
            cfg = dataclasses.replace(base, **dict(zip(SEARCH_GRID, values)))
            _, info = fit(cfg, recipe, u["train"], u["val"])
            search.append({**dict(zip(SEARCH_GRID, values)), **info})
            print(json.dumps(search[-1]))
        best = min(search, key=lambda r: r["val_nll"])
        base = dataclasses.replace(base, **{k: best[k] for k in SEARCH_GRID})
    log = JsonlLog(Path(args.run_dir) / "log.jsonl")
    t0 = time.perf_counter()
    model, info = fit(base, recipe, u["train"], u["val"], log=log, verbose=True)
    train_seconds = time.perf_counter() - t0
    print(json.dumps(info))
    # calibrate the plausibility percentile on the real patients the model has seen (train + val), with the
    # estimator (inference.importance_samples) the prior scores with; the training range on the training split
    reference = pd.concat([tables["train"], tables["val"]], ignore_index=True)
    lo, hi = tables["train"][list(ph.NAMES)].min(), tables["train"][list(ph.NAMES)].max()
    model = model.double().eval()
    with torch.no_grad():
        ref_lp = PhenotypePrior(model).log_density(reference[list(ph.NAMES)])
    config = dataclasses.replace(base, calibration=PlausibilityCalibration(
        log_density=tuple(float(x) for x in ref_lp), source="train + val",
        training_range=tuple((float(lo[n]), float(hi[n])) for n in ph.NAMES)))
    model.config = config
    metrics = evaluate(PhenotypePrior(model), tables, u["train"])
    metrics.update({"fit": info, "search": search, "train_seconds": train_seconds, "threads": args.threads,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "n_patients": {k: len(t) for k, t in tables.items()},
                    "platform": f"{platform.machine()}, torch {torch.__version__}",
                    "total_seconds": time.perf_counter() - started})
    metrics = json.loads(json.dumps(metrics, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    command = "python -m training.train_phenotype_vae " + " ".join(sys.argv[1:] if argv is None else argv)
    card = model_card(config, dataclasses.asdict(recipe), metrics, command.strip(), n_boot=N_BOOT, n_samples=N_SAMPLES)
    folder = model.float().save_pretrained(args.out, card, extra={"metrics": metrics}, recipe=recipe)
    print(f"wrote {folder} in {metrics['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
