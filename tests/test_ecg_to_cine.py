"""ECG -> cine (ECGFlowCMR): the phase-aware ECG MAE, cycle finding and resampling, pseudo-pairing, the flow DiT,
the EcgToCine pipeline, the training loops (tiny overfits) and the paper configs (one step)."""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
from ecg_cine_fixture import TINY_FLOW, TINY_MAE, short_run, tiny_ecg_to_cine
from fixtures_ecg import synthetic_ecg
from torchrun_check import run_two_ranks

from cardiosynth import phenotypes as ph
from cardiosynth.data.ludb import FAMILIES, families_of, make_split
from cardiosynth.data.pairing import (
    pairing_statistics,
    pseudo_pairs,
    subjects_from_cines,
)
from cardiosynth.ecg import Ecg, EcgError, process_ecg, read_ecg
from cardiosynth.models import ecg_flow as flow_module
from cardiosynth.models import ecg_mae as mae_module
from cardiosynth.models.ecg_flow import EcgFlow, EcgFlowSampler
from cardiosynth.models.ecg_mae import (
    EcgMAE,
    find_cycles,
    normalise_leads,
    resample_cycle,
    select_cycle,
    shift_batch,
    token_phase,
)
from cardiosynth.paths import REPO_ROOT
from cardiosynth.phenotype_prior import TYPICAL_HEART
from cardiosynth.pipelines import ecg_to_cine
from cardiosynth.pipelines.ecg_to_cine import AnalysedEcg, EncodedEcg, analyse_ecg
from cardiosynth.weights import WEIGHTS_DIR
from training.recipes import EcgFlowRecipe, EcgMAERecipe

LUDB_2 = REPO_ROOT / "assets" / "ecg" / "ludb" / "2.hea"
LUDB_AF = REPO_ROOT / "assets" / "ecg" / "ludb" / "88.hea"  # atrial fibrillation: another heart rate and cycle
BUNDLED = all((WEIGHTS_DIR / name / "config.json").is_file() for name in ("ecg_mae", "ecg_flow", "frame_ae", "motion", "mar"))


def sawtooth(n_tokens: int, period: float, offset: float = 0.0) -> np.ndarray:
    return np.mod(2 * math.pi * (np.arange(n_tokens) - offset) / period, 2 * math.pi)


# ------------------------------------------------------------------------------------------ ECG MAE
def test_normalise_leads_centres_scales_and_keeps_padding_and_flat_leads_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 5.0, (12, 5000)).astype(np.float32)
    x[4] = 2.5  # flat lead
    out = normalise_leads(x, valid_samples=4000).numpy()
    assert np.allclose(np.median(out[0, :4000]), 0, atol=0.05) and np.isclose(out[0, :4000].std(), 1, atol=0.02)
    assert (out[4] == 0).all() and (out[:, 4000:] == 0).all()
    assert normalise_leads(torch.from_numpy(x[None])).shape == (1, 12, 5000)


def test_mae_shapes_and_loss(one_thread):
    model = EcgMAE(TINY_MAE)
    x = torch.randn(2, 12, 5000)
    features, recon, phase = model(x)
    assert features.shape == (2, 625, 32) and recon.shape == (2, 625, 96) and phase.shape == (2, 625, 2)
    assert model.patches(x).shape == recon.shape
    target = torch.from_numpy(sawtooth(625, 50.0)).float().expand(2, -1)
    out = model.loss(x, target, torch.ones(2, 625, dtype=torch.bool), torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "recon", "phase"} and all(torch.isfinite(v) for v in out.values())
    _, predicted = model.encode(x)
    assert predicted.shape == (2, 625) and float(predicted.min()) >= 0 and float(predicted.max()) < 2 * math.pi


def test_mae_learns_the_phase_of_a_simulated_ecg(one_thread):
    """A tiny MAE overfits the phase of one simulated ECG: the phase error falls well below chance (pi / 2)."""
    torch.manual_seed(0)
    ecg = read_ecg(synthetic_ecg(500, heart_rate=75.0), fs=500)
    analysis = process_ecg(ecg)
    phase, valid = token_phase(analysis.phase[None], analysis.phase_valid[None], 8)
    x = normalise_leads(ecg.signal)[None]
    model = EcgMAE(TINY_MAE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    target, mask = torch.from_numpy(phase).float(), torch.from_numpy(valid)
    for step in range(120):
        loss = model.loss(x, target, mask, torch.Generator().manual_seed(step), mask_ratio=0.25)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predicted = model.encode(x)[1][0].numpy()
    error = mae_module.phase_error(predicted, phase[0], valid[0])
    assert error < 0.6, error


def test_find_cycles_on_a_sawtooth_phase():
    phase = sawtooth(625, period=50.0, offset=10.0)  # 50 tokens = 0.8 s at 16 ms
    cycles = find_cycles(phase, token_seconds=0.016)
    assert cycles == [pytest.approx((10.0 + 50 * k, 60.0 + 50 * k)) for k in range(12)]  # wraps at 10, 60, ... 610
    assert select_cycle(cycles) == cycles[0]
    assert find_cycles(phase, valid_tokens=100, token_seconds=0.016) == cycles[:1]  # only inside valid tokens
    # too short to be a heartbeat (4 tokens = 64 ms), a flat phase, and a scrambled stretch give no cycles
    assert find_cycles(sawtooth(625, 4.0), token_seconds=0.016) == []
    assert find_cycles(np.zeros(625)) == [] and select_cycle([]) is None
    scrambled = phase.copy()
    scrambled[60:110] = np.random.default_rng(0).uniform(0, 2 * math.pi, 50)
    assert all(not (a < 85 < b) for a, b in find_cycles(scrambled, token_seconds=0.016))


def test_resample_cycle_interpolates_linearly_from_the_r_peak():
    features = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 3)
    out = resample_cycle(features, 10.5, 26.5, frames=16)
    assert out.shape == (16, 3)
    assert torch.allclose(out[:, 0], 10.5 + torch.arange(16, dtype=torch.float32))


def test_shift_batch_moves_signal_and_marks_padding_invalid():
    x = torch.arange(2 * 12 * 40, dtype=torch.float32).reshape(2, 12, 40)
    phase, valid = torch.rand(2, 5), torch.ones(2, 5, dtype=torch.bool)
    sx, sp, sv = shift_batch(x, phase, valid, torch.tensor([1, -2]), patch=8)
    assert torch.equal(sx[0, :, 8:], x[0, :, :32]) and (sx[0, :, :8] == 0).all()
    assert torch.equal(sx[1, :, :24], x[1, :, 16:]) and (sx[1, :, 24:] == 0).all()
    assert not sv[0, 0] and sv[0, 1:].all() and torch.equal(sp[0, 1:], phase[0, :4])
    assert sv[1, :3].all() and not sv[1, 3:].any()


# ------------------------------------------------------------------------------------------ pairing
def test_families_of_follows_the_documented_labels():
    assert families_of("", "Sinus rhythm", False) == ["normal"]
    assert families_of("Left atrial hypertrophy", "Sinus rhythm", False) == []  # not normal, no family
    assert families_of("STEMI: anterior wall; Left ventricular hypertrophy", "Sinus rhythm", False) == [
        "infarction", "hypertrophy"]
    assert families_of("Incomplete right bundle branch block", "Sinus rhythm", False) == ["right_heart"]
    assert families_of("", "Atrial fibrillation", False) == ["conduction"]
    assert families_of("Left ventricular hypertrophy", "Sinus rhythm", True) == []  # paced: in no pool
    assert set(FAMILIES) == {"normal", "infarction", "hypertrophy", "conduction", "right_heart"}


def test_make_split_is_deterministic_and_covers_every_record():
    table = pd.DataFrame({"record": range(1, 61), "rhythm": ["Sinus rhythm"] * 60,
                          "families": [["normal"]] * 30 + [["hypertrophy"]] * 30})
    a, b = make_split(table), make_split(table)
    assert a.equals(b) and sorted(a["record"]) == list(range(1, 61))
    counts = a["split"].value_counts()
    assert 6 <= counts["val"] <= 12 and 6 <= counts["test"] <= 12


def _ecg_table():
    rows = []
    for i, (family, qt_rr, split) in enumerate([("normal", 0.30, "train"), ("normal", 0.40, "train"),
                                                ("normal", 0.50, "train"), ("hypertrophy", 0.35, "train"),
                                                ("normal", 0.33, "val"), ("hypertrophy", 0.45, "val")]):
        rows.append({"record": i, "path": f"/ecg/{i}.hea", "families": [family], "split": split, "qt_rr": qt_rr})
    rows.append({"record": 99, "path": "/ecg/99.hea", "families": ["normal"], "split": "train", "qt_rr": np.nan})
    return pd.DataFrame(rows)


def test_pseudo_pairs_follow_family_timing_and_split():
    cines = pd.DataFrame({"subject": ["a", "a", "b", "c"], "split": ["train", "train", "train", "val"],
                          "group": ["NOR", "NOR", "HCM", "NOR"], "es_frame_float": [6.4, 6.4, 8.0, 5.0]})
    subjects = subjects_from_cines(cines, frames=16)
    assert subjects.set_index("subject").loc["a", "es_fraction"] == pytest.approx(0.4)
    pairs = pseudo_pairs(subjects, _ecg_table(), per_subject=2, seed=0)
    a = pairs[pairs["subject"] == "a"]
    assert a["ecg_record"].iloc[0] == "1" and len(a) == 2  # the closest timing first (0.40 for ES 0.40) ...
    assert a["ecg_record"].iloc[1] in {"0", "2"}  # ... then one of the two equally close (seeded tie-break)
    assert set(pairs.loc[pairs["subject"] == "b", "ecg_record"]) == {"3"}  # pool of one hypertrophy ECG
    assert set(pairs.loc[pairs["subject"] == "c", "ecg_record"]) == {"4"}  # val subject, val ECG only
    assert "99" not in set(pairs["ecg_record"])  # no QT/RR, never paired
    stats = pairing_statistics(pairs, _ecg_table())
    assert set(stats.columns) >= {"subjects", "pool", "pairs", "mean_abs_gap", "r_es_qtrr"}
    with pytest.raises(ValueError, match="No val ECGs in the 'hypertrophy'"):
        pseudo_pairs(pd.DataFrame({"subject": ["d"], "split": ["val"], "group": ["HCM"], "es_fraction": [0.4]}),
                     _ecg_table()[lambda t: t["record"] != 5])


def test_real_ludb_pairing_statistics(ecg_root, prepared_default):
    """The real pools are non-empty for every group and training pairs' timing agrees closely."""
    from cardiosynth.data.ludb import load_arrays

    table = load_arrays(progress=False).table
    pairs = pseudo_pairs(subjects_from_cines(prepared_default.table, 16), table)
    stats = pairing_statistics(pairs, table)
    train = stats[stats["split"] == "train"]
    assert set(train["group"]) == {"NOR", "MINF", "HCM", "DCM", "RV"} and (train["pool"] >= 5).all()
    assert (train["mean_abs_gap"] < 0.05).all()
    ecg_split = dict(zip(table["record"].astype(str), table["split"]))
    assert (pairs["ecg_record"].map(ecg_split) == pairs["split"]).all()  # splits never mix


# ------------------------------------------------------------------------------------------ flow
def test_flow_shapes_zero_init_and_patchify_round_trip(one_thread):
    model = EcgFlow(TINY_FLOW)
    z = torch.randn(2, *TINY_FLOW.latent_shape)
    assert torch.equal(model.unpatchify(model.patchify(z)), z)
    v = model(z, torch.rand(2), torch.randn(2, 16, 32), torch.rand(2))
    assert v.shape == z.shape and torch.count_nonzero(v) == 0  # AdaLN-Zero / zero output layer at init


def test_flow_overfits_and_guidance_uses_the_ecg(one_thread):
    torch.manual_seed(0)
    model = EcgFlow(TINY_FLOW)
    z1 = torch.randn(2, *TINY_FLOW.latent_shape)
    model.template.copy_(z1.mean(0))
    ecg, position = torch.randn(2, 16, 32), torch.tensor([0.3, 0.7])
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):  # one fixed draw of noise and times: a plain regression the model must fit
        loss = model.loss(z1, ecg, position, torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.75 * losses[0]
    model.eval()
    a = model.sample(ecg, position, steps=4, cfg=2.0, generator=torch.Generator().manual_seed(3), known=z1)
    b = model.sample(ecg, position, steps=4, cfg=2.0, generator=torch.Generator().manual_seed(3), known=z1)
    assert torch.equal(a, b) and a.shape == z1.shape
    k = TINY_FLOW.known_channels
    assert torch.equal(a[:, :k], z1[:, :k])  # the anatomy is given, not drawn
    with pytest.raises(ValueError, match="given anatomy"):
        model.sample(ecg, position, steps=1)
    # the guided velocity is v_null + cfg (v_ecg - v_null), computed in one batch
    t = torch.full((2,), 0.5)
    v_ecg, v_null = model.velocity(z1, t, ecg, position), model.velocity(z1, t, None, position)
    guided = model.sample(ecg, position, steps=1, cfg=2.0, generator=torch.Generator().manual_seed(5), known=z1)
    start = model.hold_known(model.template + TINY_FLOW.alpha * torch.randn(
        (2, *TINY_FLOW.latent_shape), generator=torch.Generator().manual_seed(5)), z1)
    zero = torch.zeros(2)
    v0 = model.velocity(start, zero, None, position) + 2.0 * (model.velocity(start, zero, ecg, position)
                                                             - model.velocity(start, zero, None, position))
    assert torch.allclose(guided, model.hold_known(start + v0, z1), atol=1e-5)
    assert not torch.allclose(v_ecg, v_null)


# ------------------------------------------------------------------------------------------ pipeline
@pytest.fixture()
def tiny_pipeline():
    return tiny_ecg_to_cine()  # tiny random MAE (with neurokit2's phase as its "prediction") and flow, bundled anatomy


def test_pipeline_output_cycle_and_determinism(tiny_pipeline, one_thread):
    ecg = read_ecg(LUDB_2)
    torch.manual_seed(0)  # an output layer that is not zero (as at initialisation), so the noise reaches the cine
    torch.nn.init.normal_(tiny_pipeline.flow.patch_out.weight, std=0.5)
    torch.nn.init.normal_(tiny_pipeline.flow.ada_out[1].weight, std=0.5)
    out = tiny_pipeline(ecg, seed=1, steps=2)
    assert out.cine.frames.shape == (16, 64, 64) and out.cine.frames.dtype == np.float32
    assert 0 <= out.cine.frames.min() and out.cine.frames.max() <= 1
    cycle = out.cycle
    assert len(cycle["frame_times_s"]) == 16 and cycle["frame_times_s"][0] == cycle["start_s"]
    assert 0.4 < cycle["rr_s"] < 1.5 and cycle["end_s"] > cycle["frame_times_s"][-1]
    rr_neurokit = np.median(np.diff(process_ecg(ecg).r_peaks)) / 500
    assert cycle["rr_s"] == pytest.approx(rr_neurokit, abs=0.05)
    assert out.conditions["note"].startswith("trained on pseudo-pairs") and out.cine.source.startswith("synthetic:")
    # no phenotypes: the typical healthy heart (was a phenotype VAE sample for the cine seed), named in the cine
    assert out.conditions["anatomy"]["choice"] == "typical" and out.conditions["anatomy"]["LVEF"] == 62.0
    assert out.cine.metadata["heart"] == out.conditions["anatomy"]["source"] == TYPICAL_HEART
    again = tiny_pipeline(ecg, seed=1, steps=2)
    assert np.array_equal(out.cine.frames, again.cine.frames)
    other = tiny_pipeline(ecg, seed=2, steps=2)
    assert not np.array_equal(out.cine.frames, other.cine.frames)
    # rendered from real pixels: an exemplar of the anatomy bank, named in the cine's provenance
    assert out.conditions["anatomy"]["exemplar"] in tiny_pipeline.anatomy.rendering.bank.ids
    assert out.cine.metadata["exemplar"] == out.conditions["anatomy"]["exemplar"]
    # the anatomy of a requested phenotype set, or of a given heart: its own real ED frame, bit for bit
    asked = tiny_pipeline(ecg, seed=1, steps=2, phenotypes={"LVEDV": 220.0})
    assert asked.conditions["anatomy"]["LVEDV"] == pytest.approx(220.0)
    assert asked.conditions["anatomy"]["choice"] == "requested" and asked.cine.metadata["phenotypes"]["LVEDV"] == 220.0
    drawn = tiny_pipeline(ecg, seed=1, steps=2, phenotype_seed=0)  # a random heart: drawn, and said to be
    sampled = tiny_pipeline.anatomy.phenotype_prior.sample(1, temperature=1.0, seed=0).iloc[0]
    assert drawn.conditions["anatomy"]["LVEDV"] == pytest.approx(sampled["LVEDV"], abs=0.01)
    assert drawn.conditions["anatomy"]["choice"] == "random" and "random heart" in drawn.cine.metadata["heart"]
    with pytest.raises(ValueError, match="heart seed"):
        tiny_pipeline(ecg, seed=1, steps=2, phenotype_seed=-1)
    heart = out.cine
    given = tiny_pipeline(ecg, seed=3, steps=2, heart=heart)
    assert np.array_equal(given.cine.frames[0], np.where(heart.valid, heart.frames[0], 0))
    assert given.conditions["anatomy"]["source"] == heart.source and not np.array_equal(given.cine.frames[5],
                                                                                          given.cine.frames[0])


def test_pipeline_errors_are_readable(tiny_pipeline, one_thread):
    flat = Ecg(np.zeros((12, 5000), np.float32))
    with pytest.raises(EcgError, match="No complete heartbeat"):
        tiny_pipeline(flat)
    with pytest.raises(ValueError, match="Slice position"):
        tiny_pipeline(flat, slice_position=1.5)
    with pytest.raises(ValueError, match="Guidance scale"):
        tiny_pipeline(flat, cfg=float("nan"))
    with pytest.raises(EcgError, match="Expected an ECG"):
        tiny_pipeline(42)


def _made(out) -> tuple:
    """What a request's answer is, to compare: the frames' bytes, the cycle and what made the cine."""
    return out.cine.frames.tobytes(), out.cycle, out.conditions, out.cine.metadata


def test_an_analysed_ecg_is_the_request_and_gives_the_same_cine(tiny_pipeline, one_thread):
    """Issue 40: the ECG is read and analysed once per request (``analyse``), and the cine made from that request
    is the one made from the file or the Ecg; its cycle is the one the cine follows, chosen by the ECG MAE."""
    request = tiny_pipeline.analyse(LUDB_2)
    assert request.cycle_detector == "ecg_mae" and request.cycle == request.encoded.cycle_info(request.encoded.chosen)
    out = tiny_pipeline(request, seed=1, steps=2)
    assert _made(out) == _made(tiny_pipeline(LUDB_2, seed=1, steps=2)) == _made(tiny_pipeline(request.ecg, seed=1,
                                                                                                steps=2))
    assert {k: out.cycle[k] for k in request.cycle} == request.cycle
    alone = analyse_ecg(request.ecg)  # no model: neurokit2's typical beat, and the pipeline encodes it to generate
    fs = request.ecg.fs
    assert alone.cycle_detector == "neurokit2" and alone.encoded is None
    assert (alone.cycle["start_s"], alone.cycle["end_s"]) == tuple(c / fs for c in alone.analysis.cycle)
    assert _made(tiny_pipeline(alone, seed=1, steps=2)) == _made(out)


def test_the_pipeline_keeps_nothing_of_a_request(tiny_pipeline, one_thread):
    """Issue 40: no state on the pipeline between requests (it kept the last ECG's encoding, for every user)."""
    before = {name: (type(value), id(value)) for name, value in vars(tiny_pipeline).items()}
    tiny_pipeline(tiny_pipeline.analyse(LUDB_2), seed=0, steps=2)
    tiny_pipeline(LUDB_AF, seed=0, steps=2)
    assert {name: (type(value), id(value)) for name, value in vars(tiny_pipeline).items()} == before
    assert not [name for name, value in vars(ecg_to_cine).items()  # nor in its module
                if not name.startswith("__") and isinstance(value, (Ecg, AnalysedEcg, EncodedEcg, list, dict, set))]


def test_concurrent_requests_each_get_their_own_ecgs_cine(tiny_pipeline, one_thread):
    """Issue 40: two users' ECGs analysed and generated from at once, interleaved in threads, each get the cine
    they get alone."""
    ecgs = {"sinus": LUDB_2, "af": LUDB_AF}
    seeds = (0, 1)
    alone = {(name, seed): _made(tiny_pipeline(tiny_pipeline.analyse(path), seed=seed, steps=2))
             for name, path in ecgs.items() for seed in seeds}
    requests = {name: tiny_pipeline.analyse(path) for name, path in ecgs.items()}  # analyse A, analyse B
    assert requests["sinus"].cycle != requests["af"].cycle

    def generate(job):
        name, seed, fresh = job
        request = tiny_pipeline.analyse(ecgs[name]) if fresh else requests[name]
        return job, _made(tiny_pipeline(request, seed=seed, steps=2))

    jobs = [(name, seed, fresh) for fresh in (False, True) for seed in seeds for name in ecgs] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(generate, jobs))
    assert len(answers) == len(jobs)
    for (name, seed, _), made in answers:
        assert made == alone[(name, seed)], (name, seed)


@pytest.mark.skipif(not BUNDLED, reason="ECG -> cine weights not bundled")
def test_bundled_ecg_to_cine(one_thread):
    from cardiosynth.pipelines.ecg_to_cine import EcgToCine

    pipe = EcgToCine.from_pretrained()
    out = pipe(LUDB_2, seed=0)
    assert out.cine.frames.shape == (16, 64, 64) and 0 <= out.cine.frames.min() <= out.cine.frames.max() <= 1
    assert out.cycle["cycles_found"] >= 3 and 0.5 < out.cycle["rr_s"] < 1.2
    assert np.array_equal(out.cine.frames, pipe(LUDB_2, seed=0).cine.frames)
    sim = pipe(read_ecg(synthetic_ecg(500, heart_rate=60.0), fs=500), seed=0)  # phase head on a simulated ECG
    assert sim.cycle["rr_s"] == pytest.approx(1.0, abs=0.08)


@pytest.mark.skipif(not BUNDLED, reason="ECG -> cine weights not bundled")
def test_every_bundled_ecg_animates_a_typical_heart_by_default(one_thread):
    """Issue 39: with no phenotypes every ECG animated a phenotype VAE sample for the seed, at seed 0 LVEDV 282 mL,
    LVEF 19.9 %, RVEDV 90 mL (a failing heart). The default is now the typical healthy heart: the phenotype
    explorer's start, normal ejection fractions, plausible, the same for every ECG (the ECG does not set it)."""
    from cardiosynth.app.ecg_reading import EXAMPLE_DIR, EXAMPLES
    from cardiosynth.pipelines.ecg_to_cine import EcgToCine

    pipe = EcgToCine.from_pretrained()
    prior = pipe.anatomy.phenotype_prior
    typical = prior.typical_heart()
    for label, path in EXAMPLES.items():
        anatomy = pipe(EXAMPLE_DIR / path, seed=0).conditions["anatomy"]
        assert anatomy["choice"] == "typical" and anatomy["source"] == TYPICAL_HEART, label
        assert all(anatomy[n] == pytest.approx(typical[n], abs=0.01) for n in ph.NAMES), label
        assert 55 <= anatomy["LVEF"] <= 70 and 45 <= anatomy["RVEF"] <= 70, label  # normal ejection fractions
        assert 60 <= anatomy["LVEDV"] <= 200 and 60 <= anatomy["RVEDV"] <= 220, label  # not dilated
        plausibility = prior.plausibility({n: anatomy[n] for n in ph.INDEPENDENT})
        assert plausibility.status == "green" and plausibility.percentile > 50, (label, plausibility)


# ------------------------------------------------------------------------------------------ training
def test_mae_fit_runs_and_resumes(tmp_path, one_thread):
    from cardiosynth.data.ludb import LudbArrays
    from training.train_ecg_mae import fit

    ecg = read_ecg(synthetic_ecg(500, heart_rate=70.0), fs=500)
    analysis = process_ecg(ecg)
    table = pd.DataFrame({"record": [1, 2], "rr_s": [0.86, 0.86]})
    arrays = LudbArrays(table, np.stack([ecg.signal] * 2), np.stack([analysis.phase] * 2).astype(np.float32),
                        np.stack([analysis.phase_valid] * 2), np.array([5000, 5000]))
    recipe = short_run(EcgMAERecipe())
    model, best = fit(TINY_MAE, recipe, arrays, arrays, tmp_path / "run", progress=False)
    assert best["epoch"] in (0, 1) and np.isfinite(best["phase_error_rad"])
    again, _ = fit(TINY_MAE, dataclasses.replace(recipe, epochs=3), arrays, arrays, tmp_path / "run", resume=True,
                   progress=False)
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log) == 3  # two epochs, then one more after resuming


def test_flow_fit_runs_on_random_latents(tmp_path, one_thread):
    from training.train_ecg_flow import fit

    config = TINY_FLOW
    latents = torch.randn(2, 3, *config.latent_shape)  # versions x cines
    ecgs = [[[torch.randn(16, 32), torch.randn(16, 32)]] for _ in range(3)]
    model, best = fit(config, short_run(EcgFlowRecipe()), latents, ecgs, torch.rand(3), latents[0], ecgs, torch.rand(3),
                      tmp_path / "run", progress=False)
    assert torch.allclose(model.template, latents[0].mean(0)) and np.isfinite(best["val_loss"])


def test_flow_fit_runs_under_torchrun_ddp_on_cpu(tmp_path):
    """Two Gloo processes end with the same weights; 8 cines / 2 ranks / batch 2 = 2 steps an epoch."""
    log = run_two_ranks("""
from ecg_cine_fixture import TINY_FLOW, short_run
from training.recipes import EcgFlowRecipe
from training.train_ecg_flow import fit
g = torch.Generator().manual_seed(0)
config = TINY_FLOW
latents = torch.randn(1, 8, *config.latent_shape, generator=g)
ecgs = [[[torch.randn(16, 32, generator=g)]] for _ in range(8)]
ema, best = fit(config, short_run(EcgFlowRecipe()), latents, ecgs, torch.rand(8, generator=g), latents[0, :2], ecgs[:2],
                torch.rand(2, generator=g), RUN, device="cpu", progress=False)
""", tmp_path)
    assert len(log) == 2 and log[-1]["step"] == 4


def test_mae_fit_runs_under_torchrun_ddp_on_cpu(tmp_path):
    """Two Gloo processes end with the same weights; 4 records / 2 ranks / batch 2 = 1 step an epoch."""
    log = run_two_ranks("""
import numpy as np, pandas as pd
from ecg_cine_fixture import TINY_MAE, short_run
from fixtures_ecg import synthetic_ecg
from cardiosynth.data.ludb import LudbArrays
from cardiosynth.ecg import process_ecg, read_ecg
from training.recipes import EcgMAERecipe
from training.train_ecg_mae import fit
ecg = read_ecg(synthetic_ecg(500, heart_rate=70.0), fs=500)
analysis = process_ecg(ecg)
arrays = LudbArrays(pd.DataFrame({"record": [1, 2, 3, 4], "rr_s": [0.86] * 4}), np.stack([ecg.signal] * 4),
                    np.stack([analysis.phase] * 4).astype(np.float32), np.stack([analysis.phase_valid] * 4),
                    np.array([5000] * 4))
ema, best = fit(TINY_MAE, short_run(EcgMAERecipe()), arrays, arrays, RUN, device="cpu", progress=False)
""", tmp_path)
    assert len(log) == 2 and log[-1]["step"] == 2


@pytest.mark.parametrize("which", ["mae", "flow"])
def test_paper_configs_build_and_step(which, one_thread):
    """The paper configs build and take one optimisation step (shape check on CPU, tiny batch)."""
    if which == "mae":
        model = EcgMAE(mae_module.CONFIGS["paper"])
        x = torch.randn(1, 12, 5000)
        loss = model.loss(x, torch.rand(1, 625) * 6, torch.ones(1, 625, dtype=torch.bool))["loss"]
    else:
        config = flow_module.CONFIGS["paper"]
        model = EcgFlow(config)
        loss = model.loss(torch.randn(1, *config.latent_shape), torch.randn(1, config.ecg_frames, config.ecg_dim),
                          torch.rand(1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert flow_module.CONFIGS["paper"].ecg_dim == mae_module.CONFIGS["paper"].width


def test_real_pairs_table_goes_through_the_same_training_path(tmp_path):
    """A table of real pairs (subject, ecg_path) replaces the pseudo-pairs unchanged; subjects take their split."""
    from training.train_ecg_flow import cine_ecgs, make_pairs

    cines = pd.DataFrame({"subject": ["a", "a", "b"], "split": ["train", "train", "val"], "group": ["NOR"] * 3,
                          "es_frame_float": [6.0] * 3})
    (tmp_path / "pairs.csv").write_text("subject,ecg_path\na,/ecg/1.hea\nb,/ecg/2.hea\n")
    pairs = make_pairs(cines, 16, 4, 0, tmp_path / "pairs.csv")
    assert list(pairs["split"]) == ["train", "val"] and set(pairs["rule"]) == {"given"}
    features = {"/ecg/1.hea": [torch.zeros(16, 8)], "/ecg/2.hea": [torch.ones(16, 8)]}
    per_cine = cine_ecgs(cines, pairs, features)
    assert [len(e) for e in per_cine] == [1, 1, 1] and float(per_cine[2][0][0].mean()) == 1.0
    (tmp_path / "bad.csv").write_text("subject,ecg_path\nzzz,/ecg/1.hea\n")
    with pytest.raises(ValueError, match="subjects without cines"):
        make_pairs(cines, 16, 4, 0, tmp_path / "bad.csv")
    (tmp_path / "worse.csv").write_text("patient,file\na,/ecg/1.hea\n")
    with pytest.raises(ValueError, match="needs the columns subject and ecg_path"):
        make_pairs(cines, 16, 4, 0, tmp_path / "worse.csv")


def test_timing_control_statistics():
    """The shuffled-ECG control: a real association gives a small p-value and a null r near 0; none does not."""
    from evaluation.ecg_timing import heldout_records, shuffled_control

    rng = np.random.default_rng(0)
    y = rng.uniform(0.3, 0.6, 40)
    x = y + rng.normal(0, 0.03, 40)
    observed = float(np.corrcoef(x, y)[0, 1])
    control = shuffled_control(x, y, observed, n=500)
    assert control["p_value_one_sided"] < 0.01 and abs(control["r_mean"]) < 0.1
    unrelated = rng.uniform(0.3, 0.6, 40)
    weak = shuffled_control(unrelated, y, float(np.corrcoef(unrelated, y)[0, 1]), n=500)
    assert weak["p_value_one_sided"] > 0.01
    table = pd.DataFrame({"split": ["train", "val", "test", "test"], "paced": [0, 0, 0, 1],
                          "qt_rr": [0.4, 0.4, np.nan, 0.4]})
    assert len(heldout_records(table, "heldout")) == 1 and len(heldout_records(table, "test")) == 0


def test_simulated_ecgs_span_heart_rates_with_qt_rr_rising():
    """The simulated timing set: standard 12-lead ECGs whose QT/RR (read by neurokit2, as for LUDB) rises with the
    heart rate they were simulated at, so the timing check sees a wide range."""
    import neurokit2 as nk

    from cardiosynth.ecg.types import LEADS, N_SAMPLES
    from evaluation.ecg_timing import simulated_records

    records = simulated_records(3, heart_rates=(50.0, 110.0))
    assert len(records) == 3 and records["record"].is_unique
    assert all(r.signal.shape == (len(LEADS), N_SAMPLES) for r in records["path"])
    same = nk.ecg_simulate(duration=10, sampling_rate=500, heart_rate=50.0, method="multileads", random_state=0)
    for name in ("aVR", "V1"):  # each of neurokit2's named leads lands in its own row
        assert np.allclose(records["path"][0].signal[LEADS.index(name)], same[name].to_numpy()[:N_SAMPLES])
    assert np.allclose(records["rr_s"], 60.0 / np.array([50.0, 80.0, 110.0]), rtol=0.1)
    assert records["qt_rr"].is_monotonic_increasing and records["qt_rr"].iloc[-1] - records["qt_rr"].iloc[0] > 0.08


def test_retiming_ceiling_with_a_perfect_reader_and_empty_frame_counts():
    """Real cines through the flow's two re-timings, read by an exact ES reader, land on their targets; a reader
    that cannot see timing gives no correlation. Frames without an LV are counted per cine."""
    from types import SimpleNamespace

    from cardiosynth.data.dataset import PreparedDataset
    from cardiosynth.data.prepare import PrepareConfig
    from evaluation.ecg_timing import frames_without_lv, retiming_ceiling

    rng = np.random.default_rng(1)
    n = 30
    es_frames = rng.uniform(4.0, 9.0, n)
    cines = np.stack([np.broadcast_to(np.array([min(255, 25 * abs(k - e)) for k in range(16)], np.uint8)[:, None, None],
                                      (16, 8, 8)) for e in es_frames])
    masks = np.zeros((n, 8, 8), np.uint8)
    real = PreparedDataset(cines, np.ones((n, 8, 8), bool), masks, masks, masks,
                           pd.DataFrame({"es_frame_float": es_frames, "slice_position": 0.5, "subject": "p",
                                         "slice": 0}), PrepareConfig(frames=16, size=8))

    class Reader:
        def __init__(self, sees_timing: bool):
            self.sees_timing = sees_timing

        def measure(self, cines):
            curves = [SimpleNamespace(es_frame_subframe=float(np.argmin(c.frames.mean((1, 2)))) if self.sees_timing
                                      else float(rng.uniform(4, 9))) for c in cines]
            return None, curves

    qt_rr = rng.uniform(0.3, 0.55, 25)
    exact = retiming_ceiling(real, Reader(True), 0.38, qt_rr)
    assert exact["n"] == n and exact["pearson_r"] > 0.9 and exact["mean_abs_difference"] < 1.5 / 16
    assert abs(retiming_ceiling(real, Reader(False), 0.38, qt_rr)["pearson_r"]) < 0.5
    curves = [SimpleNamespace(lv_area_mm2=np.array(a, float)) for a in ([5, 0, 0, 5], [5, 4, 3, 5], [0, 1, 2, 3])]
    assert frames_without_lv(curves) == {"cines_with_any": 2, "cines": 3, "median_frames": 1.0}


@pytest.mark.parametrize("sampler", ["euler", "renoise"])
def test_samplers_land_on_the_clean_estimate(sampler, monkeypatch):
    """With x1 prediction both samplers end exactly on the network's last clean estimate: a network that always
    predicts the same latent generates that latent, whatever the noise or the guidance."""
    model = EcgFlow(dataclasses.replace(TINY_FLOW, sampler=EcgFlowSampler(sampling_steps=2, method=sampler))).eval()
    target = torch.randn(1, *TINY_FLOW.latent_shape)
    monkeypatch.setattr(model, "forward", lambda z, *args, **kwargs: target.expand(z.shape[0], -1, -1, -1, -1))
    anatomy = torch.randn(2, *TINY_FLOW.latent_shape)
    out = model.sample(torch.randn(2, 16, 32), torch.rand(2), steps=4, cfg=3.0, generator=torch.Generator().manual_seed(1),
                       known=anatomy)
    k = TINY_FLOW.known_channels
    assert torch.allclose(out[:, k:], target.expand(2, -1, -1, -1, -1)[:, k:], atol=1e-5)
    assert torch.equal(out[:, :k], anatomy[:, :k])
    with pytest.raises(ValueError, match="sampler method"):
        EcgFlowSampler(method="heun")


# ------------------------------------------------------------------------------------------ timing
def test_retime_moves_end_systole_and_keeps_the_r_peak():
    """What was at fraction b is shown at fraction a; frame 0 (the R peak) stays; a = b changes nothing."""
    from cardiosynth.retime import retime

    t = torch.arange(16, dtype=torch.float32)[:, None]
    assert torch.equal(retime(t, 0.4, 0.4), t)
    warped = retime(t, 0.25, 0.5)  # original frame 8 (fraction 0.5) now at frame 4 (fraction 0.25)
    assert warped[0, 0] == 0 and warped[4, 0] == pytest.approx(8.0) and torch.all(torch.diff(warped[:15, 0]) > 0)
    cine = torch.rand(16, 8, 8)
    assert torch.allclose(retime(cine, 0.25, 0.5)[4], cine[8])
    area = torch.tensor([abs(k - 6.0) for k in range(16)])  # an LV area curve with end-systole at frame 6
    assert int(torch.argmin(retime(area, 9 / 16, 6 / 16))) == 9
    with pytest.raises(ValueError, match="inside the cycle"):
        retime(t, 0.0, 0.4)


def test_systolic_fraction_measured_qt_else_bazett_and_kept_in_range():
    from cardiosynth.retime import ES_FRACTION_RANGE, systolic_fraction

    measured = systolic_fraction(0.36, 0.9)
    assert measured["fraction"] == pytest.approx(0.4) and "measured" in measured["source"]
    for missing in (None, float("nan")):
        estimated = systolic_fraction(missing, 1.0)
        assert estimated["fraction"] == pytest.approx(0.41) and "Bazett" in estimated["source"]
    fast = systolic_fraction(0.40, 0.45)  # QT/RR 0.89: beyond any cine's end-systole
    assert fast["fraction"] == ES_FRACTION_RANGE[1] and "limited" in fast["source"]
    with pytest.raises(ValueError, match="cycle length"):
        systolic_fraction(0.4, 0.0)
    # a doubted QT gives way to the device's own (a GE MUSE export: ours 474 ms, the device's 420 ms)
    doubted = systolic_fraction(0.474, 0.966, ["QT 474 ms measured here differs from the device's own 420 ms"], 0.420)
    assert doubted["fraction"] == pytest.approx(0.420 / 0.966) and "device" in doubted["source"]
    assert systolic_fraction(0.474, 0.966, [], 0.420)["qt_s"] == pytest.approx(0.474)  # not doubted: ours
    kept = systolic_fraction(0.474, 0.966, ["QT varies between beats"])
    assert kept["qt_s"] == pytest.approx(0.474) and "doubted" in kept["source"]


def test_retimed_dataset_puts_every_expert_end_systole_at_one_fraction():
    from cardiosynth.data.dataset import PreparedDataset
    from cardiosynth.data.prepare import PrepareConfig
    from cardiosynth.retime import retimed_dataset

    es_frames = np.array([4.0, 6.0, 7.5, 10.0])
    cines = np.stack([np.broadcast_to(np.array([20 * abs(k - e) for k in range(16)], np.uint8)[:, None, None],
                                      (16, 8, 8)) for e in es_frames])  # darkest at each cine's own end-systole
    masks = np.zeros((4, 8, 8), np.uint8)
    table = pd.DataFrame({"es_frame_float": es_frames, "split": "train"})
    dataset = PreparedDataset(cines, np.ones((4, 8, 8), bool), masks, masks, masks, table, PrepareConfig(frames=16, size=8))
    retimed = retimed_dataset(dataset, 0.375)
    assert retimed.cines.dtype == np.uint8 and retimed.cines.shape == cines.shape
    assert [int(np.argmin(c[:, 0, 0])) for c in retimed.cines] == [6, 6, 6, 6]
    assert np.allclose(retimed.table["es_frame_float"], 6.0) and np.array_equal(dataset.table["es_frame_float"], es_frames)


def test_pipeline_retimes_the_flow_output_to_the_ecgs_qt_rr(tiny_pipeline, monkeypatch, one_thread):
    """The flow's cine ends systole at its canonical fraction; the output ends it at the ECG's QT / RR (the
    published, decoded path here; the rendered path re-times the motion: the next test)."""
    monkeypatch.setattr(tiny_pipeline.anatomy, "rendering", None)
    canonical = tiny_pipeline.flow.config.canonical_es_fraction
    brightness = torch.tensor([abs(k - canonical * 16) / 16 for k in range(16)], dtype=torch.float32)
    monkeypatch.setattr(tiny_pipeline.anatomy.codec, "decode_codes",
                        lambda codes: brightness.view(1, 16, 1, 1).expand(1, 16, 64, 64))
    ecg = read_ecg(LUDB_2)
    out = tiny_pipeline(ecg, seed=0, steps=1)
    cycle = out.cycle
    assert cycle["es_fraction"] == pytest.approx(process_ecg(ecg).qt_s / cycle["rr_s"], abs=1e-3)
    assert "measured" in cycle["timing_source"] and cycle["es_s"] == pytest.approx(cycle["es_fraction"] * cycle["rr_s"], abs=1e-3)
    assert abs(int(np.argmin(out.cine.frames[:, 0, 0])) - cycle["es_fraction"] * 16) <= 1
    assert abs(cycle["es_fraction"] - canonical) > 0.05  # LUDB 2 is not at the canonical timing: the test can fail
    tiny_pipeline.flow.config = dataclasses.replace(tiny_pipeline.flow.config, canonical_es_fraction=None)
    plain = tiny_pipeline(ecg, seed=0, steps=1)
    assert "es_fraction" not in plain.cycle and np.allclose(plain.cine.frames[:, 0, 0], brightness.numpy())


def test_rendered_motion_is_retimed_to_the_ecgs_qt_rr(tiny_pipeline, monkeypatch, one_thread):
    """Rendered cines: the drawn motion (control grids) is re-timed, so the frame that moved most from ED falls at
    the ECG's QT / RR, for the flow's motion and for the exemplar's own."""
    canonical = tiny_pipeline.flow.config.canonical_es_fraction
    motion = tiny_pipeline.anatomy.codec.motion
    amplitude = torch.tensor([1 - abs(k - canonical * 16) / 16 for k in range(16)], dtype=torch.float64)
    amplitude[0] = 0
    monkeypatch.setattr(motion, "control", lambda code: (amplitude.view(1, 16, 1, 1, 1) * 0.05).expand(
        len(code), 16, 2, *motion.config.code_shape[-2:]).float())
    ecg = read_ecg(LUDB_2)
    out = tiny_pipeline(ecg, seed=0, steps=1, motion="flow")
    moved = np.abs(out.cine.frames - out.cine.frames[0]).mean(axis=(1, 2))
    assert abs(int(np.argmax(moved)) - out.cycle["es_fraction"] * 16) <= 1.5
    assert abs(out.cycle["es_fraction"] - canonical) > 0.05
    exemplar = tiny_pipeline(ecg, seed=0, motion="exemplar")
    assert exemplar.cycle["es_fraction"] == out.cycle["es_fraction"] and exemplar.conditions["motion"] == "exemplar"
    with pytest.raises(ValueError, match="motion must be"):
        tiny_pipeline(ecg, seed=0, motion="nope")


def test_a_heart_that_does_not_move_has_no_end_systole_to_retime():
    """A still control (every frame at ED) once gave end-systole at fraction 0, which re-timing refuses."""
    from cardiosynth.pipelines.rendering import strongest_motion_fraction

    still = torch.zeros(16, 2, 8, 8, dtype=torch.float64)
    assert strongest_motion_fraction(still) is None
    moving = still.clone()
    moving[6] = 1.0
    assert strongest_motion_fraction(moving) == 6 / 16
