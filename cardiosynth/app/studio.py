"""What the app's two cine generators have in common (no Gradio here): the base of :class:`.cine_studio.CineStudio`
(phenotypes -> cine) and :class:`.ecg_cine_studio.EcgCineStudio` (ECG -> cine), and the helpers both use.

Both hold a pipeline that may be missing (then ``available`` is False and ``unavailable_reason`` says why, and
their panel shows that instead of failing), give every result a fresh file-name stem, write its files on demand
and offer them as downloads. Their settings are checked once, by the pipeline's request
(:mod:`cardiosynth.pipelines.requests`), not here.
What differs (the pipeline, its defaults, what a file holds, the figure) stays in each studio.
"""

from __future__ import annotations

import base64
import io
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cardiosynth.cine import Cine
from cardiosynth.export import display_frames

log = logging.getLogger("cardiosynth.app")


class GeneratorStudio:
    """A cine generator behind one of the app's "Generate cine" panels. A subclass sets ``pipeline``,
    ``unavailable_reason`` and ``folder``, the class attributes below, ``defaults`` and :meth:`write`."""

    missing: str  # the error when generating without a pipeline (and no reason known)
    formats: tuple[str, ...]  # the downloads, in order
    stem_kind = ""  # in each result's file names: cardiosynth_<kind>seed<seed>_<random>

    pipeline = None
    unavailable_reason = ""
    folder: Path
    device: str  # where the pipeline runs: the constructor's argument (app.py's --device)

    @property
    def available(self) -> bool:
        return self.pipeline is not None

    @property
    def defaults(self) -> dict:
        """The generator's own "steps" and "cfg", which the panel starts from, and its "max_steps"."""
        raise NotImplementedError

    def load_pipeline(self, load: Callable[[str], object], weights: str) -> None:
        """``pipeline = load(self.device)``; when that fails, the reason names the ``weights`` and the app goes on."""
        try:
            self.pipeline = load(self.device)
        except Exception as error:  # noqa: BLE001 - the rest of the app works without it
            self.unavailable_reason = f"The {weights} weights could not be loaded: {error}"
            log.warning(self.unavailable_reason)

    def require_pipeline(self) -> None:
        if not self.available:
            raise RuntimeError(self.unavailable_reason or self.missing)

    def name_files(self, result, seed: int) -> None:
        """A fresh file-name stem for ``result`` (users generating at the same time never overwrite each other's
        files), and the folder swept of old results."""
        result.files["stem"] = fresh_stem(seed, self.stem_kind)
        sweep(self.folder)

    def file(self, result, fmt: str) -> str:
        """Path of the result as ``fmt`` (one of ``formats``), written once."""
        if fmt not in result.files:
            path = self.folder / f"{result.files['stem']}.{fmt}"
            self.write(result, fmt, path)
            result.files[fmt] = str(path)
        return result.files[fmt]

    def write(self, result, fmt: str, path: Path) -> None:
        raise NotImplementedError

    def downloads(self, result) -> list[str]:
        return [self.file(result, fmt) for fmt in self.formats]


def fresh_stem(seed: int, kind: str = "") -> str:
    """A file-name stem no other result has: the seed for the reader, random characters for uniqueness."""
    return f"cardiosynth_{kind}seed{seed}_{uuid.uuid4().hex[:10]}"


def sweep(folder: Path, max_age_s: float = 3600.0) -> None:
    """Delete this app's result files older than an hour (Gradio keeps its own copies of shown files)."""
    now = time.time()
    for path in folder.glob("cardiosynth_*"):
        try:
            if now - path.stat().st_mtime > max_age_s:
                path.unlink()
        except OSError:
            pass


def png_uris(cine: Cine) -> list[str]:
    """Every frame as a PNG data URI, for plotly Image traces (the figure then needs no file server)."""
    import imageio.v3 as iio

    uris = []
    for pixels in display_frames(cine, scale=2):
        buffer = io.BytesIO()
        iio.imwrite(buffer, pixels, extension=".png")
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return uris
