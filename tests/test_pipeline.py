"""PhenotypeToCine on a tiny random-weight chain (the logic), the Hub round trip offline, bulk synthesis with
resume and sharding, and the bundled weights generating a real-size cine."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch

from cardiosynth import phenotype_prior
from cardiosynth import phenotypes as ph
from cardiosynth.cine import Cine
from cardiosynth.export import load_npz_cine
from cardiosynth.models.frame_ae import FrameAEConfig, FrameAutoencoder
from cardiosynth.models.mar import MAR, MARConfig, MARSampler, PhenotypeScaler
from cardiosynth.models.motion import MotionConfig, MotionEncoding, MotionModel
from cardiosynth.pipelines import PhenotypeToCine, phenotype_to_cine, rendering, requests
from cardiosynth.pipelines.synthesize import CONDITIONS_FILE, SynthesisError, synthesize
from cardiosynth.weights import WEIGHTS_DIR, WeightsError

pytestmark = pytest.mark.usefixtures("one_thread")

HEALTHY = {"LVEDV": 150.0, "LVESV": 60.0, "LVM": 120.0, "RVEDV": 160.0, "RVESV": 75.0}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """weights-like folder: the bundled phenotype VAE + random tiny frame autoencoder and motion model (8 x 16 x 16
    cines; packed code 2 + 2 x 2 channels on an 8 x 8 grid) and MAR."""
    folder = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    ae_config = FrameAEConfig(size=16, channels=(8, 16), latent_channels=2, norm_groups=4)
    FrameAutoencoder(ae_config).save_pretrained(folder / "frame_ae", "tiny test frame autoencoder")
    motion_config = MotionConfig(frames=8, size=16, grid=8, temporal_components=2, encoder=MotionEncoding(iterations=3))
    motion = MotionModel(motion_config)
    motion.temporal_basis.normal_(0, 0.3)
    motion.temporal_basis[:, 0] = 0.0  # frame 0 (ED) never moves, as in a fitted model
    motion.code_std.fill_(0.05)
    motion.save_pretrained(folder / "motion", "tiny test motion model")
    typical = ph.complete_derived(pd.DataFrame([HEALTHY])).iloc[0]
    mar_config = MARConfig(spacing_mm=2.2, latent_channels=6, latent_frames=1, latent_size=8, patch_t=1, width=64,
                           encoder_depth=1, decoder_depth=1, heads=2, buffer_size=2, dropout=0.0, denoiser_width=64,
                           denoiser_blocks=2,
                           sampler=MARSampler(sampling_steps=5, num_iter=4),
                           scaler=PhenotypeScaler(mean=tuple(float(typical[n]) for n in ph.NAMES), std=(40.0,) * 9))
    mar = MAR(mar_config)
    with torch.no_grad():  # zero-initialised output layers would make every condition look alike
        for parameter in mar.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    mar.save_pretrained(folder / "mar", "tiny test MAR", extra={"dataset": "default"},
                        depends_on={"frame_ae": folder / "frame_ae", "motion": folder / "motion"})
    shutil.copytree(WEIGHTS_DIR / "phenotype_vae", folder / "phenotype_vae")
    return folder


@pytest.fixture(scope="module")
def tiny(tiny_folder):
    return PhenotypeToCine.from_pretrained(tiny_folder)


@pytest.fixture(scope="module")
def tiny_two(tiny_folder, tiny, tmp_path_factory):
    """The bundled layout: a 3D-VAE MAR as ``mar`` (de novo) and the anatomy + motion MAR as ``mar_motion``."""
    from cardiosynth.models.vae3d import VAE3D, VAE3DConfig

    folder = tmp_path_factory.mktemp("two") / "weights"
    shutil.copytree(tiny_folder, folder)
    (folder / "mar").rename(folder / "mar_motion")
    torch.manual_seed(1)
    vae_config = VAE3DConfig(frames=8, size=16, latent_channels=4, f_t=2, f_s=4, channels=(8, 16, 16), groups=4)
    VAE3D(vae_config).save_pretrained(folder / "vae3d", "tiny test 3D-VAE")
    mar_config = dataclasses.replace(tiny.mar.config, representation="vae3d", latent_channels=4, latent_frames=4,
                                     latent_size=4, patch_t=4)
    MAR(mar_config).save_pretrained(folder / "mar", "tiny 3D-VAE MAR", extra={"dataset": "default"},
                                    depends_on={"vae3d": folder / "vae3d"})
    return PhenotypeToCine.from_pretrained(folder)


def test_a_3d_vae_generator_edits_through_its_anatomy_motion_editor(tiny_two, tiny):
    from cardiosynth.pipelines.phenotype_to_cine import Vae3dDecoder

    assert isinstance(tiny_two.decoder, Vae3dDecoder) and tiny_two.editor is not tiny_two
    assert tiny_two.codec is tiny_two.editor.decoder
    made = tiny_two(HEALTHY, seed=0).cines[0]
    assert made.frames.shape == (8, 16, 16)
    cine = _real_like_cine(tiny)
    edited = tiny_two.edit(cine, {"LVEF": 40}, phenotypes={"LVEDV": 150.0}, seed=0)
    direct = tiny.edit(cine, {"LVEF": 40}, phenotypes={"LVEDV": 150.0}, seed=0)  # the same MAR, bundled as "mar"
    assert np.array_equal(edited.cines[0].frames, direct.cines[0].frames)


def test_a_pipeline_without_an_anatomy_motion_model_says_it_cannot_edit(tiny_two, tiny):
    bare = PhenotypeToCine(tiny_two.phenotype_prior, tiny_two.mar, tiny_two.decoder, 2.2)
    with pytest.raises(WeightsError, match="cannot edit real hearts"):
        bare.edit(_real_like_cine(tiny), {"LVEF": 40})


def test_generates_cines_and_reports_the_exact_conditions(tiny):
    result = tiny(HEALTHY, n=3, seed=1, slice_position=0.3)
    assert len(result.cines) == 3 and len(result.conditions) == 3
    for cine in result.cines:
        assert cine.frames.shape == (8, 16, 16) and cine.frames.dtype == np.float32
        assert 0 <= cine.frames.min() and cine.frames.max() <= 1
        assert cine.spacing_mm == (2.2, 2.2) and cine.slice_position == 0.3
        assert cine.source.startswith("synthetic:cpgg@") and len(cine.source) > len("synthetic:cpgg@")
    row = result.conditions.iloc[0]
    assert row["LVEF"] == pytest.approx(60.0) and row["LVSV"] == pytest.approx(90.0)  # derived exactly
    assert row["LVEDV"] == 150.0 and row["completed"] == "LVSV, LVEF, RVSV, RVEF"
    assert list(result.conditions["sample"]) == [0, 1, 2] and set(result.conditions["seed"]) == {1}
    assert not np.array_equal(result.cines[0].frames, result.cines[1].frames)  # n samples differ


def test_partial_sets_are_completed_and_tables_give_one_set_per_row(tiny):
    table = pd.DataFrame({"LVEDV": [110.0, 250.0], "LVEF": [60.0, 25.0], "slice_position": [0.2, 0.8]})
    result = tiny(table, n=2, seed=0)
    conditions = result.conditions
    assert len(result.cines) == 4 and list(conditions["LVEDV"]) == [110.0, 110.0, 250.0, 250.0]
    np.testing.assert_allclose(conditions["LVEF"], [60, 60, 25, 25])
    assert list(conditions["slice_position"]) == [0.2, 0.2, 0.8, 0.8]
    assert conditions[list(ph.NAMES)].notna().all().all()
    np.testing.assert_allclose(conditions["LVSV"], conditions["LVEDV"] - conditions["LVESV"])
    assert "LVM" in conditions["completed"].iloc[0] and "LVEDV" not in conditions["completed"].iloc[0]


def test_same_seed_same_cines_other_seed_or_cfg_other_cines(tiny):
    a = tiny(HEALTHY, n=2, seed=7).cines
    b = tiny(HEALTHY, n=2, seed=7).cines
    c = tiny(HEALTHY, n=2, seed=8).cines
    d = tiny(HEALTHY, n=2, seed=7, cfg=1.0).cines
    assert all(np.array_equal(x.frames, y.frames) for x, y in zip(a, b))
    assert not np.array_equal(a[0].frames, c[0].frames)
    assert not np.array_equal(a[0].frames, d[0].frames)


@pytest.mark.parametrize("request_, message", [
    ({**HEALTHY, "LVEDV": 900.0}, "LVEDV = 900 mL is outside the plausible range 20-600 mL"),
    ({**HEALTHY, "LVM": float("nan")}, "LVM"),
    ({**HEALTHY, "LVEF": 20.0}, "disagree"),
    ({**HEALTHY, "Heart rate": 60.0}, "Unknown phenotype columns: Heart rate"),
    ({**HEALTHY, "LVEDV": "big"}, "LVEDV must be a number"),
    ("LVEDV=150", "must be a dict"),
])
def test_bad_phenotypes_are_one_clear_error(tiny, request_, message):
    with pytest.raises(ph.PhenotypeError, match=message):
        tiny(request_)


def test_nan_in_a_table_names_the_set(tiny):
    with pytest.raises(ph.PhenotypeError, match="LVEDV in set 2"):
        tiny(pd.DataFrame({"LVEDV": [150.0, np.nan], "LVEF": [55.0, 55.0]}))


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n must be"), ({"seed": -1}, "Seed must be a whole number"), ({"steps": 0}, "Decoding steps"),
    ({"cfg": 0.5}, "Guidance scale must be between 1 and 10"), ({"temperature": 0.0}, "Temperature"),
    ({"slice_position": 1.5}, "Slice position"),
])
def test_bad_settings_are_clear_errors(tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(HEALTHY, **kwargs)


def test_clamp_moves_values_into_range_with_a_warning(tiny):
    with pytest.warns(UserWarning, match="LVEDV clamped to its plausible range 20-600"):
        result = tiny({**HEALTHY, "LVEDV": 700.0, "LVESV": 400.0}, clamp=True)
    assert result.conditions["LVEDV"].iloc[0] == 600.0


def test_requests_far_from_the_training_data_warn(tiny):
    with pytest.warns(UserWarning, match="LVEDV.*SD from the training data"):
        tiny({**HEALTHY, "LVEDV": 400.0, "LVESV": 250.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny(HEALTHY)  # typical values: no warning


def _real_like_cine(pipe, seed: int = 0) -> Cine:
    frames = pipe(HEALTHY, seed=seed).cines[0].frames
    valid = np.ones(frames.shape[1:], bool)
    valid[:, :2] = False  # padding at the edge, as a real crop can have
    return Cine(frames, (pipe.spacing_mm,) * 2, 0.4, valid, source="real:test")


def test_edit_keeps_the_ed_frame_of_the_input_heart_and_draws_new_motion(tiny):
    cine = _real_like_cine(tiny)
    known = {"LVEDV": 150.0, "LVM": 120.0, "RVEDV": 160.0}
    edit = tiny.edit(cine, {"LVEF": 35}, phenotypes=known, seed=0)
    other = tiny.edit(cine, {"LVEF": 70}, phenotypes=known, seed=0)
    ed = tiny.codec.decode_codes(tiny.codec.encode_codes(torch.from_numpy(cine.frames[None])))[0, 0].numpy()
    ed[:, :2] = 0.0
    for result in (edit, other):
        out = result.cines[0]
        assert out.shape == cine.shape and np.allclose(out.frames[0], ed, atol=1e-4)  # same heart at ED
        assert not out.valid[:, :2].any() and out.metadata["edited_from"] == "real:test"
    row = edit.conditions.iloc[0]
    assert row.LVEF == pytest.approx(35) and row.LVEDV == pytest.approx(150) and row.slice_position == pytest.approx(0.4)
    assert row.LVESV == pytest.approx(150 * 0.65, rel=1e-3)  # the VAE completes the set consistently
    assert not np.allclose(edit.cines[0].frames[1:], other.cines[0].frames[1:])  # the motion follows the value
    again = tiny.edit(cine, {"LVEF": 35}, phenotypes=known, seed=0)
    assert np.array_equal(again.cines[0].frames, edit.cines[0].frames)


@pytest.mark.parametrize("changes, message", [({}, "Say what to change"), ({"LVEDV": 120}, "ED anatomy"),
                                              ({"heart_rate": 60}, "Unknown phenotype")])
def test_edit_refuses_what_it_cannot_change(tiny, changes, message):
    with pytest.raises(ph.PhenotypeError, match=message):
        tiny.edit(_real_like_cine(tiny), changes)


def test_edit_refuses_a_cine_of_another_format(tiny):
    with pytest.raises(ValueError, match="prepare it"):
        tiny.edit(Cine(np.zeros((4, 16, 16), np.float32), (2.2, 2.2)), {"LVEF": 40})


def test_tampered_or_mismatched_components_are_refused(tiny_folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_folder, copy)
    (copy / "mar" / "model.safetensors").write_bytes((copy / "mar" / "model.safetensors").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(WeightsError, match="sha256"):
        PhenotypeToCine.from_pretrained(copy)
    shutil.rmtree(copy / "mar")
    with pytest.raises(WeightsError, match="lacks the trained components mar"):
        PhenotypeToCine.from_pretrained(copy)


def _fake_hub_cache(cache, repo_id: str, source) -> None:
    """The layout huggingface_hub keeps in HF_HUB_CACHE after a download: refs/main -> snapshots/<commit>/."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(source, repo / "snapshots" / commit)


def test_hub_repo_id_loads_through_huggingface_hub_offline(tiny_folder, tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    _fake_hub_cache(tmp_path, "cardiosynth/tiny-test", tiny_folder)
    from_hub = PhenotypeToCine.from_pretrained("cardiosynth/tiny-test", local_files_only=True)
    assert from_hub.sha == tiny.sha
    assert np.array_equal(from_hub(HEALTHY, seed=3).cines[0].frames, tiny(HEALTHY, seed=3).cines[0].frames)
    with pytest.raises(WeightsError, match="Hugging Face Hub"):
        PhenotypeToCine.from_pretrained("cardiosynth/not-there", local_files_only=True)


def test_push_to_hub_uploads_the_components_through_hfapi(tiny, tiny_folder, monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder",
                        lambda self, **kw: calls.append(("upload", kw)) or "https://hub/commit/1")
    assert tiny.push_to_hub("me/cardiosynth-test", folder=tiny_folder) == "https://hub/commit/1"
    (_, repo_id, create), (_, upload) = calls
    assert repo_id == "me/cardiosynth-test" and create["private"] and create["exist_ok"]
    assert upload["folder_path"] == str(tiny_folder)
    assert sorted(upload["allow_patterns"]) == ["frame_ae/*", "mar/*", "motion/*", "phenotype_vae/*"]


def _read_all(folder) -> dict[str, np.ndarray]:
    return {p.name: load_npz_cine(p)[0].frames for p in sorted(folder.glob("cine_*.npz"))}


def test_bulk_synthesis_resumes_and_shards_to_the_same_files(tiny, tmp_path):
    whole = synthesize(tmp_path / "whole", n=5, seed=2, chunk_size=2, pipe=tiny, progress=False)
    assert whole["complete"] and whole["made_now"] == 5
    conditions = pd.read_csv(tmp_path / "whole" / CONDITIONS_FILE)
    assert list(conditions["file"]) == [f"cine_{i:07d}.npz" for i in range(5)]
    assert conditions[list(ph.NAMES)].notna().all().all() and conditions["slice_position"].between(0, 1).all()
    cine, metadata = load_npz_cine(tmp_path / "whole" / "cine_0003.npz".replace("0003", "0000003"))
    assert metadata["LVEDV"] == pytest.approx(conditions["LVEDV"][3]) and cine.frames.shape == (8, 16, 16)
    # two "processes" of a torchrun job, the second interrupted and re-run
    shard = tmp_path / "sharded"
    first = synthesize(shard, n=5, seed=2, chunk_size=2, pipe=tiny, rank=0, world_size=2, progress=False)
    assert not first["complete"] and not (shard / CONDITIONS_FILE).exists() and first["made_now"] == 3
    synthesize(shard, n=5, seed=2, chunk_size=2, pipe=tiny, rank=1, world_size=2, progress=False)
    (shard / "cine_0000002.npz").unlink()
    (shard / CONDITIONS_FILE).unlink()
    resumed = synthesize(shard, n=5, seed=2, chunk_size=2, pipe=tiny, rank=1, world_size=2, progress=False)
    assert resumed["made_now"] == 2 and resumed["complete"]  # only the broken chunk was redone
    whole_files, shard_files = _read_all(tmp_path / "whole"), _read_all(shard)
    assert whole_files.keys() == shard_files.keys()
    assert all(np.array_equal(whole_files[k], shard_files[k]) for k in whole_files)
    assert not list(shard.glob(".*partial*"))
    with pytest.raises(SynthesisError, match="different synthesis run.*seed"):
        synthesize(shard, n=5, seed=3, chunk_size=2, pipe=tiny, progress=False)


def test_bulk_synthesis_from_a_csv_of_partial_sets(tiny, tmp_path):
    csv = tmp_path / "sets.csv"
    pd.DataFrame({"LVEDV": [120.0, 200.0, 90.0], "LVEF": [62.0, 30.0, 70.0], "slice_position": [0.1, 0.5, 0.9]}).to_csv(csv, index=False)
    summary = synthesize(tmp_path / "out", phenotypes_csv=str(csv), fmt="nii.gz", pipe=tiny, progress=False)
    assert summary["complete"] and summary["planned"] == 3
    conditions = pd.read_csv(tmp_path / "out" / CONDITIONS_FILE)
    assert list(conditions["LVEDV"]) == [120.0, 200.0, 90.0] and list(conditions["slice_position"]) == [0.1, 0.5, 0.9]
    import nibabel as nib

    image = nib.load(tmp_path / "out" / conditions["file"][1])
    assert image.shape == (16, 16, 1, 8) and image.header.get_zooms()[:2] == (2.2, 2.2)
    assert json.loads(image.header.extensions[0].get_content())["LVEDV"] == 200.0


def test_bulk_synthesis_writes_dicom_that_pydicom_reads(tiny, tmp_path):
    import pydicom

    summary = synthesize(tmp_path / "out", n=3, seed=4, fmt="dcm", chunk_size=2, pipe=tiny, progress=False)
    assert summary["complete"] and summary["made_now"] == 3
    conditions = pd.read_csv(tmp_path / "out" / CONDITIONS_FILE)
    assert list(conditions["file"]) == [f"cine_{i:07d}.dcm" for i in range(3)]
    for row in conditions.itertuples():
        ds = pydicom.dcmread(tmp_path / "out" / row.file)
        assert ds.NumberOfFrames == 8 and ds.pixel_array.shape == (8, 16, 16)
        assert [float(v) for v in ds.PixelSpacing] == [2.2, 2.2] and ds.SyntheticData == "YES"
        assert f"seed {row.seed}" in ds.DerivationDescription and tiny.name in ds.DerivationDescription
        assert json.loads(ds.ImageComments)["LVEDV"] == pytest.approx(row.LVEDV)
    assert not list((tmp_path / "out").glob(".*partial*"))
    with pytest.raises(SynthesisError, match="npz, nii.gz, dcm"):
        synthesize(tmp_path / "gif", n=1, fmt="gif", pipe=tiny, progress=False)


def test_bulk_synthesis_refuses_bad_requests(tiny, tmp_path):
    with pytest.raises(SynthesisError, match="Give --n"):
        synthesize(tmp_path / "a", pipe=tiny, progress=False)
    with pytest.raises(SynthesisError, match="Could not read the phenotype CSV"):
        synthesize(tmp_path / "b", phenotypes_csv=str(tmp_path / "missing.csv"), pipe=tiny, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_bundled_weights_generate_a_real_size_cine():
    """The committed weights/ (phenotype VAE, 3D-VAE + MAR, frame autoencoder + motion model + editor MAR) load
    with no network, sha256 checked, and generate one 16 x 64 x 64 cine in [0, 1] that is a picture (not
    constant), the same for the same seed; the editor edits a cine of that size."""
    pipe = PhenotypeToCine.from_pretrained()
    first = pipe(HEALTHY, seed=0, steps=4)
    cine = first.cines[0]
    assert cine.frames.shape == (16, 64, 64) and cine.spacing_mm == (2.2, 2.2)
    assert 0 <= cine.frames.min() and cine.frames.max() <= 1 and cine.frames.std() > 0.05
    assert np.array_equal(cine.frames, pipe(HEALTHY, seed=0, steps=4).cines[0].frames)
    sha = {name: json.loads((WEIGHTS_DIR / name / "config.json").read_text())["sha256"]
           for name in ("vae3d", "frame_ae", "motion")}
    assert pipe.mar.depends_on["vae3d"] == sha["vae3d"]  # de novo: the 3D-VAE MAR
    assert pipe.editor.mar.depends_on == {"frame_ae": sha["frame_ae"], "motion": sha["motion"]}  # the editor
    real = Cine(cine.frames, cine.spacing_mm, 0.5)
    edited = pipe.edit(real, {"LVEF": 30}, phenotypes={"LVEDV": 150.0}, seed=0).cines[0]
    assert edited.shape == cine.shape and 0 <= edited.frames.min() and edited.frames.max() <= 1


def test_generate_draws_the_rows_of_one_seed_as_one_call(tiny):
    """The seed contract: rows sharing a seed are one call (in table order); another seed is another call."""
    table = ph.complete_derived(pd.DataFrame([HEALTHY] * 3)).assign(slice_position=[0.3, 0.5, 0.7], seed=[5, 9, 5])
    cines = tiny.generate(table)
    together = tiny(table.iloc[[0, 2]][list(ph.NAMES) + ["slice_position"]].reset_index(drop=True), n=1, seed=5).cines
    alone = tiny(table.iloc[[1]][list(ph.NAMES) + ["slice_position"]].reset_index(drop=True), n=1, seed=9).cines
    assert np.array_equal(cines[0].frames, together[0].frames) and np.array_equal(cines[2].frames, together[1].frames)
    assert np.array_equal(cines[1].frames, alone[0].frames)
    assert [c.slice_position for c in cines] == [0.3, 0.5, 0.7]


def test_the_pixel_spacing_is_recorded_in_the_config_of_the_weights(tiny_folder, tmp_path):
    """The pixel size of a generator's cines is part of its config (set by its trainer from the prepared dataset);
    weights that do not record it are refused, not given a pixel size looked up elsewhere."""
    for name in ("mar", "mar_motion", "ecg_flow"):  # every bundled generator records it
        payload = json.loads((WEIGHTS_DIR / name / "config.json").read_text())
        assert payload["config"]["spacing_mm"] == 2.2 and "spacing_mm" not in payload["extra"]
    assert PhenotypeToCine.from_pretrained(tiny_folder, decoded=True).spacing_mm == 2.2
    unrecorded = tmp_path / "mar"
    shutil.copytree(tiny_folder / "mar", unrecorded)
    payload = json.loads((unrecorded / "config.json").read_text())
    del payload["config"]["spacing_mm"]
    (unrecorded / "config.json").write_text(json.dumps(payload))
    with pytest.raises(WeightsError, match="pixel size"):
        MAR.from_pretrained(unrecorded)


def test_bundled_default_renders_every_frame_from_a_real_exemplar():
    """The default path: no pixel decoded. Each cine is one anatomy-bank exemplar's real ED frame, deformed and
    moved, on the 8-bit levels of the source, zero outside the exemplar's field of view, named in its provenance;
    the published path stays one argument away."""
    pipe = PhenotypeToCine.from_pretrained(device="cpu")
    out = pipe(HEALTHY, n=2, seed=3)
    bank = pipe.rendering.bank
    for cine, (_, row) in zip(out.cines, out.conditions.iterrows()):
        index = bank.ids.index(cine.metadata["exemplar"])
        assert row["exemplar"] == cine.metadata["exemplar"] and f"exemplar {row['exemplar']}" in cine.source
        assert np.array_equal(cine.valid, bank.valid_mask(index)) and not cine.frames[:, ~cine.valid].any()
        assert np.allclose(cine.frames * 255, np.round(cine.frames * 255), atol=1e-3)  # real pixel levels
        assert "CC BY-NC-SA" in cine.metadata["derived_from"] and row["motion"] == "exemplar"
    assert np.array_equal(out.cines[1].frames, pipe(HEALTHY, n=2, seed=3).cines[1].frames)
    assert not np.array_equal(out.cines[0].frames, pipe(HEALTHY, n=2, seed=4).cines[0].frames)
    assert PhenotypeToCine.from_pretrained(device="cpu", decoded=True).rendering is None
    with pytest.raises(ValueError, match="motion must be"):
        pipe(HEALTHY, motion="decoded")


@pytest.mark.parametrize("motion", ["mar", "own"])
def test_bundled_edit_renders_the_hearts_own_ed_frame(motion):
    pipe = PhenotypeToCine.from_pretrained(device="cpu")
    heart = pipe(HEALTHY, seed=1).cines[0]
    real = Cine(heart.frames, heart.spacing_mm, 0.5, heart.valid, source="real:test")
    known = {"LVEDV": 150.0, "LVM": 120.0, "RVEDV": 160.0, "LVEF": 60.0}
    low = pipe.edit(real, {"LVEF": 30}, phenotypes=known, seed=0, steps=4, motion=motion).cines[0]
    high = pipe.edit(real, {"LVEF": 70}, phenotypes=known, seed=0, steps=4, motion=motion).cines[0]
    assert np.array_equal(low.frames[0], real.frames[0]) and np.array_equal(high.frames[0], real.frames[0])
    assert not np.array_equal(low.frames[1:], high.frames[1:]) and low.metadata["edited_from"] == "real:test"


def test_privacy_filter_redraws_hearts_matched_to_a_training_patient():
    pipe = PhenotypeToCine.from_pretrained(device="cpu")
    privacy = pipe.rendering.privacy
    out = pipe(HEALTHY, n=4, seed=0, privacy_filter=True)
    scores, redraws = out.conditions["reid_score"].to_numpy(), out.conditions["privacy_redraws"].to_numpy()
    assert ((scores <= privacy.threshold + 1e-3) | (redraws == 10)).all()
    assert np.array_equal(out.cines[3].frames, pipe(HEALTHY, n=4, seed=0, privacy_filter=True).cines[3].frames)


def _request_state(pipe: PhenotypeToCine) -> dict:
    """What a pipeline and its parts hold (names -> type and identity), and the containers of the modules a
    request passes through (names -> contents): a request may change neither."""
    parts = {"pipeline": pipe, "rendering": pipe.rendering, "bank": pipe.rendering.bank,
             "renderer": pipe.rendering.renderer, "prior": pipe.phenotype_prior, "editor": pipe.editor}
    held = {f"{part}.{name}": (type(value), id(value)) for part, obj in parts.items()
            for name, value in vars(obj).items()}
    modules = (phenotype_to_cine, requests, rendering, phenotype_prior)
    kept = {f"{module.__name__}.{name}": repr(value) for module in modules for name, value in vars(module).items()
            if not name.startswith("__") and isinstance(value, (list, dict, set))}
    return {**held, **kept}


def test_the_rendered_pipeline_keeps_nothing_of_a_request_and_concurrent_requests_do_not_cross():
    """Issue 40: no pipeline-level or module-level state between requests. Requests made at once, interleaved in
    threads, each get the cines they get alone."""
    pipe = PhenotypeToCine.from_pretrained(device="cpu")
    asks = [({"LVEDV": 120.0, "LVEF": 65.0}, 0), ({"LVEDV": 230.0, "LVEF": 30.0}, 1), ({"LVEDV": 160.0}, 2)]
    before = _request_state(pipe)
    alone = [pipe(values, seed=seed, slice_position=0.4).cines[0].frames for values, seed in asks]
    pipe({"LVEDV": 150.0, "LVEF": 50.0}, seed=4, motion="mar", steps=2)
    assert _request_state(pipe) == before
    jobs = list(range(len(asks))) * 3
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(lambda k: (k, pipe(asks[k][0], seed=asks[k][1], slice_position=0.4)), jobs))
    assert all(np.array_equal(out.cines[0].frames, alone[k]) for k, out in together)
    assert all(out.conditions["LVEDV"].iloc[0] == asks[k][0]["LVEDV"] for k, out in together)
