"""Designing a reader study: held-out real cines only, a generator's cines, one rendering path, all or nothing."""

import numpy as np
import pandas as pd
import pytest

from cardiosynth import phenotypes as ph
from cardiosynth.cine import Cine
from cardiosynth.data.dataset import PreparedDataset
from cardiosynth.data.prepare import PrepareConfig
from cardiosynth.review import RenderSettings, ReviewError, ReviewService
from cardiosynth.review import study as study_module
from cardiosynth.review.study import choose_real, synthetic_conditions

SMALL = RenderSettings(size=64, frames_per_cycle=8, cycles=1)


def tiny_dataset() -> PreparedDataset:
    """Six patients x two slices of 8 x 16 x 16 noise; two patients in each split."""
    rng = np.random.default_rng(0)
    n = 12
    table = pd.DataFrame({"subject": [f"p{k // 2}" for k in range(n)], "slice": [k % 2 for k in range(n)],
                          "slice_position": [0.3 + 0.4 * (k % 2) for k in range(n)],
                          "group": "NOR", "split": [("train", "val", "test")[k // 4] for k in range(n)]})
    for name in ph.NAMES:
        table[name] = np.linspace(50, 150, n)
    masks = np.zeros((n, 16, 16), np.uint8)
    return PreparedDataset(rng.integers(0, 256, (n, 8, 16, 16), dtype=np.uint8), np.ones((n, 16, 16), bool),
                           masks, masks, masks, table, PrepareConfig(frames=8, size=16))


class FakeGenerator:
    """Flat cines whose brightness follows LVEDV: the contract, and nothing else."""

    name = "fake"

    def __init__(self, count_error: bool = False):
        self.count_error = count_error
        self.requests = None

    def generate(self, conditions: pd.DataFrame) -> list[Cine]:
        self.requests = conditions.copy()
        cines = [Cine(np.full((8, 16, 16), row.LVEDV / 300, np.float32), (2.2, 2.2), row.slice_position,
                      source="synthetic:fake") for row in conditions.itertuples()]
        return cines[:-1] if self.count_error else cines


@pytest.fixture()
def service(tmp_path):
    service = ReviewService(tmp_path / "review.sqlite", tmp_path / "studies")
    yield service
    service.close()


def test_a_study_renders_every_case_and_hides_the_truth(service, tmp_path):
    generator = FakeGenerator()
    created = service.create_study(generator, 3, 2, split="test", conditions="matched", seed=1, settings=SMALL,
                                   title="pilot", dataset=tiny_dataset())
    assert (created.n_real, created.n_synthetic) == (3, 2) and len(created.display_code) == 9
    files = sorted(created.folder.iterdir())
    assert len(files) == 5 and len({f.stat().st_size for f in files}) == 1
    assert list((tmp_path / "studies").iterdir()) == [created.folder]  # no partial folder left
    cases = service.store.cases(created.code)
    assert sorted(c["truth"] for c in cases) == ["real"] * 3 + ["synthetic"] * 2
    real_subjects = {c["provenance"]["subject"] for c in cases if c["truth"] == "real"}
    assert real_subjects <= {"p4", "p5"} and len(real_subjects) == 2  # test split, spread over patients
    # matched: the synthetic requests are the real cases' own phenotypes and slice positions
    real_rows = {(c["provenance"]["phenotypes"]["LVEDV"], c["provenance"]["slice_position"])
                 for c in cases if c["truth"] == "real"}
    assert set(zip(generator.requests.LVEDV, generator.requests.slice_position)) <= real_rows
    report = service.blinding_report(created.code, created.admin_token)
    assert report["blinded"] and report["warnings"] == []
    reader = service.join(created.display_code, "Reader")
    case = service.current_case(reader.token)
    assert case.path.is_file() and case.path.parent == created.folder
    results = service.results(created.code, created.admin_token, n_boot=10)
    assert results["title"] == "pilot" and results["settings"]["design"]["generator"] == "fake"
    assert results["settings"]["render"]["frame_bytes"] == SMALL.frame_bytes


def test_real_cases_come_only_from_held_out_splits():
    dataset = tiny_dataset()
    for split in ("train", "all", ""):
        with pytest.raises(ReviewError, match="held-out"):
            choose_real(dataset, split, 2)
    with pytest.raises(ReviewError, match="only 4 cines"):
        choose_real(dataset, "val", 5)
    for n in (0, -1, 2.5, "two", True):
        with pytest.raises(ReviewError, match="whole number"):
            choose_real(dataset, "val", n)
    cines, table = choose_real(dataset, "val", 2, seed=3)
    assert set(table.split) == {"val"} and table.subject.nunique() == 2  # one slice per patient first
    assert all(c.source.startswith("real:") for c in cines)


def test_vae_conditions_sample_phenotypes_and_reuse_real_slice_levels(one_thread):
    real_table = tiny_dataset().split("val").table
    conditions = synthetic_conditions("vae", 5, real_table, seed=2)
    assert list(conditions.columns) == [*ph.NAMES, "slice_position", "seed"] and len(conditions) == 5
    assert set(conditions.slice_position) <= set(real_table.slice_position)
    assert conditions.seed.is_unique and not conditions[list(ph.NAMES)].isna().any().any()
    with pytest.raises(ReviewError, match="'vae'"):
        synthetic_conditions("random", 5, real_table)


def test_a_failed_study_leaves_nothing_behind(service, tmp_path, monkeypatch):
    dataset = tiny_dataset()
    with pytest.raises(ReviewError, match="returned 1 cines for 2 requests"):
        service.create_study(FakeGenerator(count_error=True), 2, 2, conditions="matched", settings=SMALL,
                             dataset=dataset)
    with pytest.raises(ReviewError, match="not 'real'"):
        service.create_study("real", 2, 2, settings=SMALL, dataset=dataset)
    calls = []

    def failing_render(cine, folder, settings):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original(cine, folder, settings)

    original = study_module.render_case
    monkeypatch.setattr(study_module, "render_case", failing_render)
    with pytest.raises(RuntimeError, match="disk full"):
        service.create_study(FakeGenerator(), 2, 2, conditions="matched", settings=SMALL, dataset=dataset)
    root = tmp_path / "studies"
    assert not root.exists() or list(root.iterdir()) == []
    assert service.store._rows("SELECT COUNT(*) AS n FROM studies")[0]["n"] == 0


def test_real_data_study_with_the_group_mean_generator(prepared_default, tmp_path, one_thread):
    service = ReviewService(tmp_path / "review.sqlite", tmp_path / "studies")
    with pytest.raises(ReviewError, match="held-out"):
        service.create_study("group-mean", 2, 2, split="train", dataset=prepared_default)
    created = service.create_study("group-mean", 2, 2, split="val", conditions="vae", settings=SMALL,
                                   dataset=prepared_default)
    cases = service.store.cases(created.code)
    val_subjects = set(prepared_default.split("val").table.subject)
    assert all(c["provenance"]["subject"] in val_subjects for c in cases if c["truth"] == "real")
    assert {c["provenance"]["generator"] for c in cases if c["truth"] == "synthetic"} == {"group-mean"}
    report = service.blinding_report(created.code, created.admin_token)
    assert report["blinded"], report["exploitable"]
    service.close()


def test_two_studies_share_no_case_file_name_or_seed(service):
    """Issue 37.4: web studies always used seed 0, so the same real cines came back byte-identical under the
    same content-hashed URL (100 % accuracy without a pixel). Each study now draws its own seed, its cases
    get random ids, and no case file repeats; the blinding report counts real cines shown before."""
    dataset = tiny_dataset()
    first, second = (service.create_study(FakeGenerator(), 2, 2, split="val", conditions="matched", settings=SMALL,
                                          dataset=dataset) for _ in range(2))
    cases = [service.store.cases(study.code) for study in (first, second)]
    seeds = [service.store.study(study.code)["settings"]["design"]["seed"] for study in (first, second)]
    assert seeds[0] != seeds[1]
    assert not {c["case_id"] for c in cases[0]} & {c["case_id"] for c in cases[1]}
    # (the fake's synthetic cines are flat: the same picture at every point of the cycle; the real ones move)
    contents = [{(study.folder / c["file"]).read_bytes() for c in group if c["truth"] == "real"}
                for study, group in zip((first, second), cases)]
    assert len(contents[0]) == len(contents[1]) == 2 and not contents[0] & contents[1]
    # the val split has two patients x two slices: the second study's real cines were all seen in the first?
    repeated = ({c["provenance"]["source"] for c in cases[0] if c["truth"] == "real"}
                & {c["provenance"]["source"] for c in cases[1] if c["truth"] == "real"})
    report = service.blinding_report(second.code, second.admin_token)
    assert report["real_sources_shown_in_earlier_studies"] == len(repeated)
    assert any("earlier studies" in w for w in report["warnings"]) == bool(repeated)
    assert service.blinding_report(first.code, first.admin_token)["real_sources_shown_in_earlier_studies"] == 0


def test_the_blinding_report_names_pixel_statistics_that_give_the_class_away(service):
    """Flat synthetic cines vs noisy real ones: the containers are identical, the pixels are not."""
    created = service.create_study(FakeGenerator(), 4, 4, split="val", conditions="matched", seed=3, settings=SMALL,
                                   dataset=tiny_dataset())
    report = service.blinding_report(created.code, created.admin_token)
    assert report["blinded"]  # the files: nothing outside the pixels differs
    assert "level_std" in report["pixel_statistics_separating"]
    assert report["pixel_statistics"]["level_std"]["auc"] < 0.25
    assert any("level std" in w for w in report["warnings"])
