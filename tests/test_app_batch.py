"""Several cines at once in the phenotype tab: a grid of seeds and a CSV batch give exactly the single
generation's cines, a ZIP with every file and a conditions table, and one clear refusal for each bad request."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from request_counting import count_parsing

from cardiosynth.app.batches import MAX_CINES, BatchError, csv_batch, seed_grid
from cardiosynth.app.cine_studio import CineStudio
from cardiosynth.app.phenotype_explorer import PhenotypeExplorer


@pytest.fixture(scope="module")
def studio():
    return CineStudio()


@pytest.fixture(scope="module")
def start():
    return PhenotypeExplorer(population_size=50).start


def _zip_names(batch) -> list[str]:
    with zipfile.ZipFile(batch.zip_path) as archive:
        return sorted(archive.namelist())


def test_a_seed_grid_is_the_single_generations_side_by_side_with_everything_in_one_zip(studio, start):
    heard = []
    batch = seed_grid(studio, start, 7, 3, 4, 3.0, 0.5, progress=lambda stage, f: heard.append((stage, f)))
    assert [r.conditions["seed"] for r in batch.results] == [7, 8, 9]
    single = studio.generate(start, 8, 4, 3.0, 0.5)
    assert np.array_equal(batch.results[1].cine.frames, single.cine.frames)
    assert not np.array_equal(batch.results[0].cine.frames, batch.results[1].cine.frames)
    assert _zip_names(batch) == sorted(["conditions.csv"] + [f"cine_{k:02d}.{fmt}" for k in (1, 2, 3)
                                                             for fmt in ("gif", "nii.gz", "dcm", "json")])
    with zipfile.ZipFile(batch.zip_path) as archive:
        table = pd.read_csv(archive.open("conditions.csv"))
    assert table["seed"].tolist() == [7, 8, 9] and table["file"].tolist() == ["cine_01", "cine_02", "cine_03"]
    assert [caption for _, caption in batch.gallery][0].startswith("seed 7: LVEDV")
    assert heard[0][0].startswith("Cine 1 of 3: Choosing real exemplars") and heard[-1][0] == "Writing the ZIP"


def test_a_batch_parses_each_set_once_not_each_cine(studio, start, tmp_path, monkeypatch):
    counts = count_parsing(monkeypatch)
    seed_grid(studio, start, 0, 4, 4, 3.0, 0.5)
    assert counts["phenotypes parsed"] == 1 and counts["settings checked"] == 1  # one set, four seeds
    counts.clear()
    path = tmp_path / "sets.csv"
    path.write_text("LVEDV,LVEF\n150,60\n200,35\n")
    csv_batch(studio, path, 0, 3, 4, 3.0, 0.5)
    assert counts["phenotypes parsed"] == 1 + 2  # the table once, then each of its 2 sets once (not 6 cines)


def test_a_csv_batch_completes_each_row_and_honours_its_columns(studio, tmp_path):
    path = tmp_path / "sets.csv"
    path.write_text("eid,LVEDV,lvef,slice_position\n1001,150,60,0.3\n1002,200,35,0.7\n")  # eid: an id, ignored
    batch = csv_batch(studio, path, 0, 2, 4, 3.0, 0.5)
    conditions = [r.conditions for r in batch.results]
    assert [(c["set"], c["seed"]) for c in conditions] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert [c["slice_position"] for c in conditions] == [0.3, 0.3, 0.7, 0.7]
    assert conditions[0]["LVEDV"] == pytest.approx(150, abs=0.01) and conditions[2]["LVEF"] == pytest.approx(35, abs=0.5)
    assert conditions[0]["LVM"] > 0  # completed by the phenotype VAE
    assert batch.table["set"].tolist() == [1, 1, 2, 2] and len(_zip_names(batch)) == 4 * 4 + 1


@pytest.mark.parametrize("content, message", [
    ("LVEDV,LVEF\n", "no rows"),
    ("LVEDV,heart_size\n150,3\n", "Unknown column(s) 'heart_size'"),
    ("eid,age\n1,50\n", "Unknown column(s) 'age'"),
    ("\x00\x01\x02binary", "cannot be read as a CSV"),
    ("LVEDV\n" + "150\n" * (MAX_CINES + 1), f"up to {MAX_CINES} at a time"),
    ("LVEDV,LVEF\n150,\n", "Missing (empty or NaN) phenotype values: LVEF in set 1"),
    ("LVEDV,LVEF\n9000,60\n", "LVEDV"),
])
def test_bad_csv_batches_get_one_clear_message(studio, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        csv_batch(studio, path, 0, 1, 4, 3.0, 0.5)


def test_a_batch_larger_than_the_app_makes_points_to_the_bulk_command(studio, tmp_path, start):
    path = tmp_path / "sets.csv"
    path.write_text("LVEDV\n150\n160\n170\n")
    with pytest.raises(BatchError, match="cardiosynth.pipelines.synthesize"):
        csv_batch(studio, path, 0, 9, 4, 3.0, 0.5)  # 27 cines
    with pytest.raises(ValueError, match="Number of seeds must be a whole number between 2 and 24"):
        seed_grid(studio, start, 0, 30, 4, 3.0, 0.5)
    big = tmp_path / "big.csv"
    big.write_text("LVEDV\n" + "150\n" * 300_000)
    with pytest.raises(BatchError, match="up to 1 MB"):
        csv_batch(studio, big, 0, 1, 4, 3.0, 0.5)


def test_a_seed_column_that_runs_past_the_last_seed_is_refused(studio, tmp_path):
    path = tmp_path / "sets.csv"
    path.write_text("LVEDV,LVEF,seed\n150,60,2147483647\n")
    with pytest.raises(ValueError, match="Seed must be a whole number between 0 and 2147483647, got 2147483648"):
        csv_batch(studio, path, 0, 2, 4, 3.0, 0.5)
