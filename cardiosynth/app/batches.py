"""Several cines at once in the phenotype tab (no Gradio here): a grid of seeds for one phenotype set, and a
batch from an uploaded CSV (one phenotype set per row), each with a ZIP of the results.

Why a seed grid: one cine is one draw; the panel advises comparing a few seeds before trusting what a set
looks like, and a grid shows them side by side. Why a CSV batch: a study needs the same sets again (e.g. a
cohort's phenotypes) without moving sliders row by row. Both go through :meth:`CineStudio.request` and
:meth:`CineStudio.run`, so each cine is exactly the one the single *Generate cine* gives for the same values and
seed; a set is parsed and checked once (a seed grid's once for all its seeds; a CSV's once as a table, then each
row once as the single Generate parses it). The app caps a batch at
:data:`MAX_CINES`; more is the bulk command's job (``python -m cardiosynth.pipelines.synthesize``, resumable).
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from cardiosynth import phenotypes as ph
from cardiosynth.pipelines.requests import SEED_RANGE, checked_whole

from .cine_studio import CineResult, CineStudio, PanelRequest
from .compute import on_compute_thread

MAX_CINES = 24  # ~1 s each on 2 cores: a batch answers within half a minute
MAX_CSV_BYTES = 1_000_000
ZIP_FORMATS = ("gif", "nii.gz", "dcm", "json")
BULK_HINT = ("For more, use the bulk command: python -m cardiosynth.pipelines.synthesize --phenotypes sets.csv "
             "--out synthetic/ (resumable, any size).")


class BatchError(ValueError):
    """A batch request the app cannot run; the message says what to change."""


@dataclass
class Batch:
    results: list[CineResult]
    zip_path: str
    table: pd.DataFrame  # one row per cine: its conditions and file names in the ZIP

    @property
    def gallery(self) -> list[tuple[str, str]]:
        """(GIF path, caption) per cine, for a gallery that animates them."""
        return [(r.files["gif"], caption(r)) for r in self.results]


def caption(result: CineResult) -> str:
    c = result.conditions
    row = f"set {c['set']}, " if "set" in c else ""
    return f"{row}seed {c['seed']}: LVEDV {c['LVEDV']:.0f} mL, LVEF {c['LVEF']:.0f} %"


def seed_grid(studio: CineStudio, values: dict, first_seed, count, steps, cfg, slice_position,
              progress: Callable[[str, float], None] | None = None) -> Batch:
    """``count`` cines of one phenotype set, seeds ``first_seed`` .. ``first_seed + count - 1``."""
    first_seed = checked_whole(first_seed, "First seed", 0, 2 ** 31 - MAX_CINES)
    count = checked_whole(count, "Number of seeds", 2, MAX_CINES)
    request = studio.request(values, first_seed, steps, cfg, slice_position)  # the set parsed and checked once
    requests = [with_seed(request, first_seed + k) for k in range(count)]
    return _run(studio, requests, progress, sets=None)


def with_seed(request: PanelRequest, seed: int) -> PanelRequest:
    """The same checked request drawn with another seed (the set is not parsed again; the seed, made here, is
    checked)."""
    checked = request.checked
    seed = checked_whole(seed, "Seed", *SEED_RANGE)
    return replace(request, checked=replace(checked, sampling=replace(checked.sampling, seed=seed)))


def _delimiter(path: Path) -> str:
    """Comma, semicolon (European spreadsheets) or tab, from the first lines; a comma when it cannot tell."""
    try:
        sample = path.read_bytes()[:4096].decode("utf-8-sig")
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except (csv.Error, UnicodeDecodeError):
        return ","


def read_phenotype_csv(path: str | os.PathLike) -> pd.DataFrame:
    """The uploaded table, refused with a clear message when it is not one a batch can use."""
    path = Path(path)
    if path.stat().st_size > MAX_CSV_BYTES:
        raise BatchError(f"This CSV is {path.stat().st_size / 1e6:.1f} MB; the app reads phenotype tables up to "
                         f"{MAX_CSV_BYTES / 1e6:.0f} MB. {BULK_HINT}")
    try:
        table = pd.read_csv(path, sep=_delimiter(path), encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise BatchError(f"This file cannot be read as a CSV table of phenotype sets ({err}): give one set per "
                         "row under a header row naming the phenotypes, e.g. LVEDV,LVEF,LVM.") from None
    head = path.read_bytes()[:4096]
    if b"\x00" in head or not all(str(c).isprintable() for c in table.columns):
        raise BatchError("This file is not plain text, so it cannot be read as a CSV table of phenotype sets: give "
                         "one set per row under a header row naming the phenotypes, e.g. LVEDV,LVEF,LVM.")
    if table.empty:
        raise BatchError("This CSV has a header but no rows: give one phenotype set per row.")
    known = {"slice_position", "seed"}
    mapping, unknown = ph.map_columns([str(c) for c in table.columns if str(c) not in known])
    if unknown:
        raise BatchError(f"Unknown column(s) {', '.join(map(repr, unknown))}. Columns are phenotypes "
                         f"({', '.join(ph.NAMES)}, their aliases or UK Biobank fields), slice_position and seed.")
    if not mapping:
        raise BatchError("This CSV names no phenotype column: give at least one of " + ", ".join(ph.NAMES) + ".")
    return table


def csv_batch(studio: CineStudio, path, seed, seeds_per_set, steps, cfg, slice_position,
              progress: Callable[[str, float], None] | None = None) -> Batch:
    """A cine per row (``seeds_per_set`` each, seeds ``seed`` ...; a ``seed`` column wins), the rows completed
    by the phenotype VAE as the single generation completes them; a ``slice_position`` column wins too."""
    table = read_phenotype_csv(path)
    seed = checked_whole(seed, "Seed", 0, 2 ** 31 - MAX_CINES)
    seeds_per_set = checked_whole(seeds_per_set, "Seeds per set", 1, MAX_CINES)
    if len(table) * seeds_per_set > MAX_CINES:
        raise BatchError(f"{len(table)} sets x {seeds_per_set} seeds = {len(table) * seeds_per_set} cines; the app "
                         f"makes up to {MAX_CINES} at a time. Use fewer rows or seeds. {BULK_HINT}")
    full = on_compute_thread(studio.pipeline.resolve_conditions, table, slice_position)
    requests = []
    for i, row in full.iterrows():  # each set as the single Generate parses it: its values as shown
        first = int(table["seed"].iloc[i]) if "seed" in table else seed
        request = studio.request({n: float(row[n]) for n in ph.NAMES}, first, steps, cfg, float(row["slice_position"]))
        requests += [with_seed(request, first + k) for k in range(seeds_per_set)]
    return _run(studio, requests, progress, sets=[i + 1 for i in full.index for _ in range(seeds_per_set)])


def _run(studio: CineStudio, requests: list[PanelRequest], progress: Callable[[str, float], None] | None,
         sets: list[int] | None) -> Batch:
    tell = progress or (lambda stage, fraction: None)
    results = []
    for k, request in enumerate(requests):
        def step(stage: str, fraction: float, k: int = k) -> None:
            tell(f"Cine {k + 1} of {len(requests)}: {stage}", (k + fraction) / len(requests) * 0.95)

        result = studio.run(request, progress=step)
        if sets is not None:
            result.conditions["set"] = sets[k]
        studio.file(result, "gif")
        results.append(result)
    tell("Writing the ZIP", 0.96)
    zip_path, table = write_zip(studio, results)
    return Batch(results, zip_path, table)


def write_zip(studio: CineStudio, results: list[CineResult]) -> tuple[str, pd.DataFrame]:
    """Every cine as GIF, NIfTI, DICOM and conditions JSON, plus ``conditions.csv`` (one row per cine, with its
    file names), in one ZIP written atomically beside the single results."""
    rows, digits = [], max(2, int(math.log10(len(results))) + 1)
    handle, tmp = tempfile.mkstemp(suffix=".zip.part", dir=studio.folder)
    os.close(handle)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for k, result in enumerate(results, start=1):
                stem = f"cine_{k:0{digits}d}"
                for fmt in ZIP_FORMATS:
                    archive.write(studio.file(result, fmt), f"{stem}.{fmt}")
                measured = {f"measured_{key[4:]}": v for key, v in result.measured.items() if key.startswith("est_")}
                rows.append({"file": stem, **result.conditions, **measured})
            table = pd.DataFrame(rows)
            buffer = io.StringIO()
            table.to_csv(buffer, index=False)
            archive.writestr("conditions.csv", buffer.getvalue())
        final = studio.folder / f"cardiosynth_batch_{uuid.uuid4().hex[:10]}.zip"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(final), table
