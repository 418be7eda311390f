"""Where data and caches live. One place, so every module and test agrees.

``CARDIOSYNTH_DATA`` points at the shared data folder (default ``../shared/data`` beside the repository);
``CARDIOSYNTH_CACHE`` at the git-ignored cache for prepared datasets (default ``<repo>/.cache``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class DataNotFoundError(FileNotFoundError):
    """A data folder is missing; the message says where we looked and how to point elsewhere."""


def data_root() -> Path:
    """The shared data folder (may not exist; callers that need it use :func:`require_dataset`)."""
    env = os.environ.get("CARDIOSYNTH_DATA")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "data").resolve()


def require_dataset(name: str, override: str | os.PathLike | None = None) -> Path:
    """Return the folder of dataset ``name`` (e.g. ``"acdc"``) or raise one clear error."""
    folder = Path(override).expanduser().resolve() if override else data_root() / name
    if not folder.is_dir():
        raise DataNotFoundError(
            f"The {name} data folder was not found at {folder}. "
            f"Set CARDIOSYNTH_DATA to the folder that contains '{name}/' "
            f"(e.g. export CARDIOSYNTH_DATA=/path/to/shared/data) or pass the folder explicitly."
        )
    return folder


def cache_dir() -> Path:
    """The folder for prepared data and other regenerable artefacts (created on demand)."""
    env = os.environ.get("CARDIOSYNTH_CACHE")
    folder = Path(env).expanduser().resolve() if env else REPO_ROOT / ".cache"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def private_folder(path: str | os.PathLike) -> Path:
    """``path``, created if needed and closed to other users (mode 0700): for files that hold secrets or the
    truth of a reader study."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder
