"""``python -m fuzz TARGET [libFuzzer flags] [CORPUS ...]``: one atheris harness.

The input is handed to the target (see :mod:`fuzz.targets`); an :class:`EcgError` is the expected way for a
reader to refuse it, so it is swallowed; every other exception propagates, and atheris saves the input as a
crash. Hangs and runaway memory are caught by libFuzzer's ``-timeout`` and ``-rss_limit_mb``. Without
corpus folders, or with an empty one, the target's seeds (:mod:`fuzz.seeds`) start it.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import atheris

# Heavy libraries are imported before instrumentation: instrumenting numpy / pandas / scipy would only slow
# every input down without guiding the fuzzer through our parsers.
with atheris.instrument_imports(include=["cardiosynth.ecg", "pydicom", "defusedxml", "wfdb"]):
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import scipy.signal  # noqa: F401

    from cardiosynth.ecg.types import EcgError
    from fuzz.seeds import seeds
    from fuzz.targets import TARGETS, make_target


def seeded_corpus(target: str, folder: Path | None = None) -> str:
    """``folder`` (a fresh temporary one if None), with the target's seeds written in if it is empty."""
    folder = folder or Path(tempfile.mkdtemp(prefix=f"cardiosynth-fuzz-{target}-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.iterdir()):
        for k, content in enumerate(seeds(target)):
            (folder / f"seed{k}").write_bytes(content)
    return str(folder)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz TARGET [libFuzzer flags] [CORPUS ...]; TARGET one of {', '.join(TARGETS)}")
    target_name, rest = argv[1], argv[2:]
    target = make_target(target_name)

    prefix = next((a.split("=", 1)[1] for a in rest if a.startswith("-artifact_prefix=")), "./")

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except EcgError:
            pass
        except Exception:
            # libFuzzer keeps the input of a crash or a hang, but not of a Python exception: keep it here
            Path(f"{prefix}exception-{hashlib.sha1(data).hexdigest()}").write_bytes(data)
            raise

    corpora = [a for a in rest if not a.startswith("-")]
    flags = [a for a in rest if a.startswith("-")]
    corpora = [seeded_corpus(target_name, Path(c)) for c in corpora] or [seeded_corpus(target_name)]
    rest = [*flags, *corpora]
    atheris.Setup([argv[0], *rest], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
